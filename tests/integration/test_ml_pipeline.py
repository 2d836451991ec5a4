"""The Spark ML stages in a user's own Pipeline: featurize real photos, index the labels,
standardise + PCA, classify; saved, then loaded by another process that predicts the same."""

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from pyspark.ml import Pipeline
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import StringIndexer
from pyspark.ml.linalg import Vectors
from pyspark.sql import functions as F

from fruits_p8 import EMBEDDED_SAMPLE, ImageFeaturizer, PcaReducer, PcaReducerModel, read_images
from fruits_p8.config import DEFAULT_K

pytestmark = [pytest.mark.spark, pytest.mark.parity]

# Look-alikes (apples, tomatoes, peppers) beside distinct fruit: the classifier has work to do.
LABELS = ("Apple Braeburn", "Apple Golden 1", "Banana", "Pepper Green", "Pepper Red",
          "Tomato 1")
PER_LABEL = 5


def _spread_sample(target) -> None:
    """PER_LABEL photos of each label, spread over its files (neighbours are near-copies)."""
    for label in LABELS:
        files = sorted((EMBEDDED_SAMPLE / label).glob("*.jpg"))
        step = len(files) // PER_LABEL
        (target / label).mkdir(parents=True)
        for path in files[::step][:PER_LABEL]:
            shutil.copy(path, target / label / path.name)


def _predictions(frame) -> dict[str, tuple[float, list[float]]]:
    return {r.path: (r.prediction, r.probability.toArray().tolist())
            for r in frame.select("path", "prediction", "probability").collect()}


# Runs in a new interpreter: its own SparkSession, the saved model, the same folder.
FRESH = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    from pyspark.ml import PipelineModel
    from fruits_p8 import build_session, read_images
    folder, model_dir, cache = sys.argv[1:4]
    spark = build_session("local[1]", os.environ, Path(cache))
    model = PipelineModel.load(model_dir)
    rows = model.transform(read_images(spark, folder).frame)
    found = {r.path: [r.prediction, r.probability.toArray().tolist()]
             for r in rows.select("path", "prediction", "probability").collect()}
    print(json.dumps({"stages": [type(s).__name__ for s in model.stages],
                      "predictions": found}))
    spark.stop()
""")


def test_a_pipeline_with_our_stages_fits_saves_and_predicts_the_same_in_a_new_process(
        spark, cache_dir, tmp_path):
    images_dir = tmp_path / "images"
    _spread_sample(images_dir)
    # One partition: fewer Python workers, each of which builds the CNN once.
    images = read_images(spark, str(images_dir)).frame.coalesce(1)
    pipeline = Pipeline(stages=[
        ImageFeaturizer(batchSize=8, cacheDir=str(cache_dir)),
        StringIndexer(inputCol="label", outputCol="y"),
        PcaReducer(k=8),
        LogisticRegression(featuresCol="pca", labelCol="y", regParam=0.01, maxIter=50),
    ])
    fitted = pipeline.fit(images)
    expected = _predictions(fitted.transform(images))
    assert len(expected) == len(LABELS) * PER_LABEL
    labels = fitted.stages[1].labels
    by_path = {r.path: r.label for r in images.select("path", "label").collect()}
    right = sum(labels[int(p)] == by_path[path] for path, (p, _) in expected.items())
    assert right >= 0.9 * len(expected)  # it learned the labels, not one guess for all

    fitted.write().save(str(tmp_path / "model"))
    done = subprocess.run(
        [sys.executable, "-c", FRESH, str(images_dir), str(tmp_path / "model"), str(cache_dir)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["stages"] == ["ImageFeaturizer", "StringIndexerModel", "PcaReducerModel",
                               "LogisticRegressionModel"]
    again = found["predictions"]
    assert sorted(again) == sorted(expected)
    for path, (prediction, probability) in expected.items():
        assert again[path][0] == prediction, path
        assert again[path][1] == pytest.approx(probability, abs=1e-6), path


def planar(spark, rows: int = 40):
    """Six features that vary along two directions only (and a little noise)."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(rows, 2)) @ rng.normal(size=(2, 6)) + rng.normal(0, 1e-3, (rows, 6))
    return spark.createDataFrame([([float(v) for v in row],) for row in x],
                                 "features array<float>")


def test_a_model_fitted_for_a_variance_says_how_many_components_it_kept(spark, tmp_path):
    model = PcaReducer(variance=0.95).fit(planar(spark))
    assert model.getK() == model.basis.k == 2 != DEFAULT_K  # fc8355e: k=200, 2 components
    assert model.getVariance() == 0.95
    model.write().overwrite().save(str(tmp_path / "model"))
    loaded = PcaReducerModel.load(str(tmp_path / "model"))
    assert loaded.getK() == 2 and np.array_equal(loaded.basis.axes, model.basis.axes)


def test_the_width_of_the_features_comes_from_their_metadata_not_a_first_row(spark,
                                                                            monkeypatch):
    frame = planar(spark).withMetadata("features", {"ml_attr": {"num_attrs": 6}})

    def no_first(self, *args):
        raise AssertionError("first() runs the stages above again (the CNN, in a Pipeline)")

    monkeypatch.setattr(type(frame), "first", no_first)
    assert PcaReducer(k=3).fit(frame).basis.feature_dim == 6


def test_the_model_leaves_a_users_own_vector_columns_alone(spark):
    frame = spark.createDataFrame(
        [(Vectors.dense([float(i), i % 3, i % 5]), Vectors.dense([7.0])) for i in range(9)],
        ["features", "features_vector"])
    out = PcaReducer(k=2).fit(frame).setOutputCol("reduced").transform(frame)
    assert out.columns == ["features", "features_vector", "reduced"]
    assert {r.features_vector[0] for r in out.collect()} == {7.0}


def test_the_featurizer_keeps_its_input_and_adds_only_the_columns_its_params_name(
        spark, cache_dir):
    files = spark.read.format("binaryFile").load(str(EMBEDDED_SAMPLE / "Banana")).limit(2)
    frame = (files.withColumnRenamed("content", "image")
             .withColumn("label", F.lit(None).cast("string"))  # unlabelled inference data
             .withColumn("features", F.lit("a column of the user's")))
    stage = ImageFeaturizer(inputCol="image", outputCol="cnn", digestCol="sha",
                            errorKindCol="why", errorCol="message", batchSize=2,
                            cacheDir=str(cache_dir))
    out = stage.transform(frame)
    assert out.columns == frame.columns + ["sha", "cnn", "why", "message"]
    assert out.schema["cnn"].metadata == {"ml_attr": {"num_attrs": 1280}}
    given = {r.path: bytes(r.image) for r in frame.collect()}
    rows = out.collect()
    stage.close()
    assert {r.path: bytes(r.image) for r in rows} == given
    assert all(r.why is None and len(r.cnn) == 1280 for r in rows)  # a null label: no error
    assert all(r.label is None and r.features == "a column of the user's" for r in rows)
    with pytest.raises(ValueError, match="already exist"):
        ImageFeaturizer(inputCol="image").transform(frame)  # outputCol features is taken

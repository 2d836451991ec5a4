"""The Spark ML stages in a user's own Pipeline: featurize real photos, index the labels,
standardise + PCA, classify; saved, then loaded by another process that predicts the same."""

import json
import shutil
import subprocess
import sys
import textwrap

import pytest
from pyspark.ml import Pipeline
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import StringIndexer

from fruits_p8 import EMBEDDED_SAMPLE, ImageFeaturizer, PcaReducer, read_images

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

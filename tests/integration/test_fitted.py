"""Fit once, apply everywhere: every output holds its fitted scaler + PCA as a plain Spark ML
PipelineModel; --fitted applies it to other images; --incremental keeps it."""

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow.parquet as pq
import pytest

from fruits_p8 import pipeline
from fruits_p8.cli import main
from fruits_p8.config import RunConfig
from fruits_p8.errors import FittedModelError, UsageError
from fruits_p8.io.models import read_fitted
from fruits_p8.io.paths import Location
from fruits_p8.io.s3 import S3Settings
from fruits_p8.io.upload import upload_tree
from fruits_p8.schema import MODEL_DIR
from tests.support.s3a import s3a_conf, s3a_jars

pytestmark = [pytest.mark.spark, pytest.mark.parity]


def config(input_dir, out, cache_dir, **changes) -> RunConfig:
    base = dict(input=str(input_dir), output=str(out), k=4, batch_size=8, cache_dir=cache_dir)
    return RunConfig(**{**base, **changes})


def by_path(table_dir) -> dict[str, dict]:
    return {r["path"]: r for r in pq.read_table(table_dir).to_pylist()}


@pytest.fixture(scope="module")
def trained(spark, sample_dir, cache_dir, tmp_path_factory):
    """A run on the Training folder: its output holds the fitted model."""
    out = tmp_path_factory.mktemp("fit") / "training"
    pipeline.run(config(sample_dir / "Training", out, cache_dir, precision="float32"),
                 spark=spark)
    return out


# Runs in a new interpreter with PySpark only: loads model/, reapplies it to the features.
PLAIN_PYSPARK = textwrap.dedent("""
    import json, sys
    import numpy as np
    from pyspark.sql import SparkSession
    from pyspark.ml import PipelineModel
    from pyspark.ml.functions import array_to_vector, vector_to_array
    conf, model_dir, features_dir = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    builder = SparkSession.builder.master("local[1]")
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    model = PipelineModel.load(model_dir)
    rows = spark.read.parquet(features_dir)
    out = model.transform(rows.withColumn("features_vector", array_to_vector("features")))
    got = out.select("pca", vector_to_array("pca_vector").alias("again")).collect()
    assert "fruits_p8" not in sys.modules
    print(json.dumps({"rows": len(got),
                      "stages": [type(s).__name__ for s in model.stages],
                      "gap": max(float(np.max(np.abs(np.subtract(r.pca, r.again))))
                                 for r in got)}))
""")


def load_with_plain_pyspark(model_dir: str, features_dir: str, cwd, conf=None) -> dict:
    """What PLAIN_PYSPARK found: rows, stage classes, largest gap to the stored pca."""
    done = subprocess.run([sys.executable, "-c", PLAIN_PYSPARK, json.dumps(conf or {}),
                           model_dir, features_dir],
                          capture_output=True, text=True, timeout=300, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_model_folder_is_a_pipeline_model_plain_pyspark_loads(trained, tmp_path):
    """No fruits_p8 import: a fresh interpreter with PySpark only reproduces the pca column."""
    found = load_with_plain_pyspark(str(trained / MODEL_DIR), str(trained / "features"),
                                    tmp_path)
    assert found["rows"] == 15
    assert found["stages"] == ["StandardScalerModel", "PCAModel"]
    assert found["gap"] < 1e-3


def test_plain_pyspark_loads_the_model_folder_from_s3_through_s3a(spark, s3, sample_dir,
                                                                   cache_dir, tmp_path):
    """An output written to S3 by a run (boto3 here) is read back by plain PySpark with
    Hadoop's S3A: `PipelineModel.load("s3a://...")`, no fruits_p8 import, no local copy."""
    jars = s3a_jars()
    settings, bucket = s3
    settings.client().create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": settings.region})
    pipeline.run(config(sample_dir / "Training", f"s3://{bucket}/train", cache_dir,
                        endpoint_url=settings.endpoint_url), spark=spark)
    found = load_with_plain_pyspark(f"s3a://{bucket}/train/{MODEL_DIR}",
                                    f"s3a://{bucket}/train/features", tmp_path,
                                    s3a_conf(jars, settings.endpoint_url))
    assert found["rows"] == 15
    assert found["stages"] == ["StandardScalerModel", "PCAModel"]
    assert found["gap"] < 1e-3


def test_fitted_projects_new_images_into_the_training_basis(spark, trained, sample_dir,
                                                            cache_dir, tmp_path):
    out = tmp_path / "test"
    result = pipeline.run(config(sample_dir / "Test", out, cache_dir, k=None,
                                 fitted=str(trained)), spark=spark)
    model = read_fitted(str(trained), S3Settings())
    rows = by_path(out / "features")
    assert len(rows) == result.rows == 9 and result.k == model.k == 4
    features = np.array([r["features"] for r in rows.values()])
    expected = model.project(features)
    assert np.allclose([r["pca"] for r in rows.values()], expected, atol=1e-5)
    # Not a basis of its own: a fit on these 9 images would give other components.
    refit = pipeline.run(config(sample_dir / "Test", tmp_path / "own", cache_dir), spark=spark)
    own = by_path(tmp_path / "own" / "features")
    assert not np.allclose([own[p]["pca"] for p in rows], expected, atol=1e-2)
    assert refit.k == 4
    report = json.loads((out / "run.json").read_text())
    assert report["pca"]["basis"] == f"--fitted {trained}"
    assert report["pca"]["fit_passes"] == 0
    assert report["config"]["fitted"] == str(trained)
    again = read_fitted(str(out), S3Settings())  # the output carries the model it applied
    assert np.array_equal(again.axes, model.axes) and np.array_equal(again.mean, model.mean)
    # The model/ folder itself is accepted too.
    assert np.array_equal(read_fitted(str(trained / MODEL_DIR), S3Settings()).axes, model.axes)


def test_a_flat_folder_of_new_photos_gets_the_training_basis_and_an_empty_label(
        spark, trained, sample_dir, cache_dir, tmp_path, caplog):
    flat = tmp_path / "new photos"  # no <Label>/ folders, as photos from a phone arrive
    flat.mkdir()
    for n, photo in enumerate(sorted((sample_dir / "Test").glob("*/*.jpg"))):
        shutil.copy(photo, flat / f"IMG_{n:04d}.jpg")
    out = tmp_path / "new"
    with caplog.at_level("WARNING", logger="fruits_p8"):
        result = pipeline.run(config(flat, out, cache_dir, k=None, fitted=str(trained)),
                              spark=spark)
    rows = by_path(out / "features")
    assert len(rows) == result.rows == 9 and result.errors == 0
    assert {r["label"] for r in rows.values()} == {""}
    assert result.report["counts"]["unlabelled"] == 9
    model = read_fitted(str(trained), S3Settings())
    features = np.array([r["features"] for r in rows.values()])
    assert np.allclose([r["pca"] for r in rows.values()], model.project(features), atol=1e-5)
    assert "the input has no <Label> folders" in caplog.text


def test_a_model_fitted_on_other_features_is_refused(spark, trained, sample_dir, cache_dir,
                                                     tmp_path):
    base = config(sample_dir / "Test", tmp_path / "x", cache_dir, k=None, fitted=str(trained))
    with pytest.raises(FittedModelError, match="weights_sha256"):
        pipeline.run(base.with_(weights="random"), spark=spark)
    with pytest.raises(FittedModelError, match="precision float32 .this run: bfloat16"):
        pipeline.preflight(base.with_(precision="bfloat16"))
    with pytest.raises(FittedModelError, match="backbone efficientnet_lite0 .this run: mob"):
        pipeline.preflight(base.with_(backbone="mobilenet_v2"))
    with pytest.raises(UsageError, match="keeps its k=4"):
        pipeline.preflight(base.with_(k=7))
    assert not (tmp_path / "x").exists()


def test_a_missing_or_broken_model_is_one_line(trained, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(trained, broken)
    part = next((broken / MODEL_DIR / "stages").glob("1_PCAModel_*/data/part-*.parquet"))
    part.write_bytes(b"not parquet")
    for where, message in [(tmp_path / "nowhere", "no fitted model at"),
                           (broken, "cannot read the fitted model at")]:
        code = main(["run", "--input", str(trained), "--output", str(tmp_path / "o"),
                     "--fitted", str(where)])
        err = capsys.readouterr().err
        assert code == FittedModelError.exit_code == 10
        assert err.startswith("fruits-p8: error: " + message) and err.count("\n") == 1
    code = main(["run", "--output", str(tmp_path / "o"), "--fitted", str(trained), "--k", "3"])
    assert code == 2 and "drop --k" in capsys.readouterr().err


def test_incremental_keeps_the_basis_unless_refit(spark, sample_dir, cache_dir, tmp_path):
    images = tmp_path / "images"
    shutil.copytree(sample_dir / "Training", images)
    added = sorted(images.rglob("*.jpg"))[:3]
    moved = tmp_path / "later"
    moved.mkdir()
    for i, path in enumerate(added):
        shutil.move(path, moved / f"{i}_{path.name}")
    out = tmp_path / "out"
    pipeline.run(config(images, out, cache_dir), spark=spark)
    first = by_path(out / "features")
    for i, path in enumerate(added):
        shutil.move(moved / f"{i}_{path.name}", path)

    second = pipeline.run(config(images, out, cache_dir, incremental=True), spark=spark)
    kept = by_path(out / "features")
    assert second.rows == len(first) + 3 and second.report["counts"]["reused"] == len(first)
    assert second.report["pca"]["basis"].startswith("kept from the previous output")
    for path, row in first.items():
        assert kept[path]["pca"] == row["pca"]  # stored vectors do not move

    third = pipeline.run(config(images, out, cache_dir, incremental=True, refit=True),
                         spark=spark)
    moved_rows = by_path(out / "features")
    assert third.report["pca"]["basis"] == "fitted on this run's images"
    assert any(not np.allclose(moved_rows[p]["pca"], kept[p]["pca"], atol=1e-3) for p in first)


def test_fitted_through_s3(spark, s3, trained, sample_dir, cache_dir, tmp_path):
    """An output in S3 (no Spark S3 filesystem here: written through boto3) holds the same
    model layout; --fitted reads it from S3, and Spark loads the files as they are."""
    from pyspark.ml import PipelineModel

    settings, bucket = s3
    upload_tree(sample_dir / "Training", Location.parse(f"s3://{bucket}/in"), settings, create=True)
    remote = f"s3://{bucket}/train"
    pipeline.run(config(f"s3://{bucket}/in", remote, cache_dir, precision="float32",
                        endpoint_url=settings.endpoint_url), spark=spark)
    model = read_fitted(remote, settings)
    local = read_fitted(str(trained), S3Settings())
    assert np.allclose(model.axes, local.axes, atol=1e-4)
    client = settings.client()
    copy = tmp_path / "copy"
    listing = client.list_objects_v2(Bucket=bucket, Prefix=f"train/{MODEL_DIR}/")["Contents"]
    for obj in listing:
        target = copy / obj["Key"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
    loaded = PipelineModel.load(str(copy / "train" / MODEL_DIR))
    assert np.allclose(loaded.stages[1].pc.toArray(), model.axes)
    applied = pipeline.run(config(sample_dir / "Test", tmp_path / "applied", cache_dir, k=None,
                                  fitted=remote, endpoint_url=settings.endpoint_url),
                           spark=spark)
    assert applied.report["pca"]["basis"] == f"--fitted {remote}"

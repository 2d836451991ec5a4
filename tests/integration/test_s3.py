"""S3 against a real moto server: upload, ls, and the pipeline s3 -> s3 equal to local."""

import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from fruits_p8 import pipeline
from fruits_p8.config import RunConfig
from fruits_p8.errors import InputError, OutputExistsError, StorageError
from fruits_p8.io.paths import Location
from fruits_p8.io.upload import summarise, upload_tree
from tests.conftest import TEST_SPLITS, TEST_STYLES, dictionary_encoded

pytestmark = pytest.mark.spark
N_IMAGES = sum(TEST_SPLITS.values()) * len(TEST_STYLES)


def keys(settings, bucket, prefix=""):
    client = settings.client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def test_upload_creates_a_private_encrypted_bucket_and_resumes(s3, sample_dir, tmp_path):
    settings, bucket = s3
    uri = f"s3://{bucket}/fruits"
    seen = []
    stats = upload_tree(sample_dir, Location.parse(uri), settings, create=True, workers=4,
                        on_progress=lambda s: seen.append(s.done))
    assert (stats.uploaded, stats.skipped) == (N_IMAGES, 0)
    assert seen[-1] == N_IMAGES and seen == sorted(seen)
    assert "fruits/Test/Apple Braeburn/0_100.jpg" in keys(settings, bucket)
    client = settings.client()
    assert client.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-west-3"
    rules = client.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = client.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())

    # A rerun sends nothing; after an "interruption" (objects lost) only the missing go, and
    # an object of ours whose local file changed is replaced.
    assert upload_tree(sample_dir, Location.parse(uri), settings, workers=4).uploaded == 0
    client.delete_object(Bucket=bucket, Key="fruits/Test/Banana/0_100.jpg")
    changed = tmp_path / "tree"
    shutil.copytree(sample_dir, changed)
    (changed / "Test" / "Banana" / "r_1_100.jpg").write_bytes(b"a newer photo")
    again = upload_tree(changed, Location.parse(uri), settings, workers=4)
    assert (again.uploaded, again.skipped) == (2, N_IMAGES - 2)
    body = client.get_object(Bucket=bucket, Key="fruits/Test/Banana/r_1_100.jpg")["Body"].read()
    assert body == b"a newer photo"

    # An object someone else put there is never replaced: nothing is sent at all.
    client.put_object(Bucket=bucket, Key="fruits/Test/Banana/r_1_100.jpg", Body=b"theirs")
    client.delete_object(Bucket=bucket, Key="fruits/Test/Banana/0_100.jpg")
    with pytest.raises(OutputExistsError, match="never replaced"):
        upload_tree(changed, Location.parse(uri), settings, workers=4)
    body = client.get_object(Bucket=bucket, Key="fruits/Test/Banana/r_1_100.jpg")["Body"].read()
    assert body == b"theirs"
    assert "fruits/Test/Banana/0_100.jpg" not in keys(settings, bucket)


def test_ls_summarises_per_label(s3, sample_dir):
    settings, bucket = s3
    upload_tree(sample_dir, Location.parse(f"s3://{bucket}/data"), settings, create=True)
    settings.client().put_object(Bucket=bucket, Key="data/readme.txt", Body=b"x")
    summary = summarise(Location.parse(f"s3://{bucket}/data"), settings)
    per_split = sum(TEST_SPLITS.values())
    assert summary.per_label == {s.label: per_split for s in sorted(TEST_STYLES,
                                                                    key=lambda s: s.label)}
    assert summary.total == N_IMAGES and summary.other_files == 1


def test_missing_bucket_and_missing_credentials_are_one_line(s3, sample_dir, monkeypatch):
    settings, bucket = s3
    with pytest.raises(StorageError, match=f"bucket {bucket} does not exist"):
        upload_tree(sample_dir, Location.parse(f"s3://{bucket}/x"), settings)
    with pytest.raises(StorageError, match="does not exist"):
        summarise(Location.parse(f"s3://{bucket}/x"), settings)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(StorageError, match="no AWS credentials"):
        upload_tree(sample_dir, Location.parse(f"s3://{bucket}/x"), settings, create=True)


@pytest.fixture(scope="module")
def local_run(spark, sample_dir, cache_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "out"
    pipeline.run(RunConfig(input=str(sample_dir), output=str(out), k=4, batch_size=8,
                           cache_dir=cache_dir), spark=spark)
    return pq.read_table(out / "features").to_pylist()


def read_s3_table(settings, bucket, prefix):
    client = settings.client()
    tables = []
    for key in keys(settings, bucket, prefix + "/"):
        if key.endswith(".parquet"):
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            tables.extend(pq.read_table(io.BytesIO(body)).to_pylist())
    return tables


def test_pipeline_s3_to_s3_equals_the_local_run(spark, s3, sample_dir, cache_dir, local_run):
    settings, bucket = s3
    upload_tree(sample_dir, Location.parse(f"s3://{bucket}/in"), settings, create=True)
    config = RunConfig(input=f"s3://{bucket}/in", output=f"s3://{bucket}/out", k=4,
                       batch_size=8, cache_dir=cache_dir, endpoint_url=settings.endpoint_url)
    result = pipeline.run(config, spark=spark)
    assert result.rows == N_IMAGES and result.errors == 0
    listing = keys(settings, bucket, "out")
    assert "out/_SUCCESS" in listing and "out/run.json" in listing
    assert "out/features/_SUCCESS" in listing and "out/errors/_SUCCESS" in listing
    assert not [k for k in keys(settings, bucket) if ".incomplete-" in k]
    report = json.loads(settings.client().get_object(Bucket=bucket, Key="out/run.json")
                        ["Body"].read())
    assert report["counts"]["files"] == N_IMAGES == report["counts"]["cnn_images"]

    remote = {r["path"].split("/in/", 1)[1]: r for r in read_s3_table(settings, bucket,
                                                                        "out/features")}
    local = {r["path"].split(str(sample_dir) + "/", 1)[1]: r for r in local_run}
    assert remote.keys() == local.keys()
    for name, row in remote.items():
        assert row["label"] == local[name]["label"]
        assert np.allclose(row["features"], local[name]["features"], atol=1e-5)
        assert np.allclose(row["pca"], local[name]["pca"], atol=1e-3)
    assert read_s3_table(settings, bucket, "out/errors") == []
    part = next(k for k in keys(settings, bucket, "out/features/") if k.endswith(".parquet"))
    encoded = dictionary_encoded(io.BytesIO(
        settings.client().get_object(Bucket=bucket, Key=part)["Body"].read()))
    assert not encoded["features.list.element"] and encoded["label"]

    with pytest.raises(OutputExistsError):
        pipeline.run(config, spark=spark)
    replaced = pipeline.run(config.with_(overwrite=True, limit=6), spark=spark)
    assert replaced.rows == 6
    assert len(read_s3_table(settings, bucket, "out/features")) == 6


def test_a_failed_write_leaves_the_old_output_complete(spark, s3, sample_dir, cache_dir,
                                                       monkeypatch):
    settings, bucket = s3
    upload_tree(sample_dir / "Test", Location.parse(f"s3://{bucket}/in"), settings, create=True)
    config = RunConfig(input=f"s3://{bucket}/in", output=f"s3://{bucket}/out", k=3,
                       batch_size=8, cache_dir=cache_dir, endpoint_url=settings.endpoint_url)
    pipeline.run(config, spark=spark)
    before = keys(settings, bucket, "out/")

    from fruits_p8.io import output as output_module

    def broken(self, name, df, projection=None):
        raise RuntimeError("disk full (injected)")

    monkeypatch.setattr(output_module.S3Output, "write_dataset", broken)
    with pytest.raises(RuntimeError, match="injected"):
        pipeline.run(config.with_(overwrite=True), spark=spark)
    assert keys(settings, bucket, "out/") == before  # untouched, still marked complete
    assert not [k for k in keys(settings, bucket) if ".incomplete-" in k]


def test_empty_prefix_and_missing_bucket_fail_before_featurizing(spark, s3, cache_dir):
    settings, bucket = s3
    base = dict(output=f"s3://{bucket}/out", k=2, cache_dir=cache_dir,
                endpoint_url=settings.endpoint_url)
    with pytest.raises(StorageError, match="does not exist"):
        pipeline.run(RunConfig(input=f"s3://{bucket}/in", **base), spark=spark)
    settings.client().create_bucket(Bucket=bucket, CreateBucketConfiguration={
        "LocationConstraint": "eu-west-3"})
    with pytest.raises(InputError, match="no file matching"):
        pipeline.run(RunConfig(input=f"s3://{bucket}/in", **base), spark=spark)


def test_cli_upload_ls_run(s3, sample_dir, cache_dir, tmp_path):
    settings, bucket = s3
    endpoint = ["--endpoint-url", settings.endpoint_url]

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "fruits_p8", *args], capture_output=True,
                              text=True, timeout=600)

    up = cli("upload", str(sample_dir / "Test"), f"s3://{bucket}/Test", "--create-bucket",
             *endpoint)
    assert up.returncode == 0, up.stderr
    assert "uploaded 9 files, 0 already there unchanged" in up.stdout
    ls = cli("ls", f"s3://{bucket}/Test", *endpoint)
    assert ls.returncode == 0 and "9 images in 3 labels" in ls.stdout
    run = cli("run", "--input", f"s3://{bucket}/Test", "--output", f"s3://{bucket}/features",
              "--k", "3", "--master", "local[2]", "--cache-dir", str(cache_dir), *endpoint)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"to s3://{bucket}/features" in run.stdout
    missing = cli("ls", "s3://no-such-bucket-here/x", *endpoint)
    assert missing.returncode == 7
    assert missing.stderr.strip() == ("fruits-p8: error: bucket no-such-bucket-here does not "
                                      "exist (use --create-bucket with upload, or check the name)")
    assert "testing" not in run.stderr + up.stderr  # credentials are never logged


def test_weights_from_s3_are_fetched_once_and_loaded(s3, tmp_path):
    from fruits_p8.features.backbones import WeightsContext, get_backbone, load_weights
    from fruits_p8.io.s3 import download

    settings, bucket = s3
    backbone = get_backbone("mobilenet_v2")
    source = load_weights(backbone, "random", WeightsContext(tmp_path, seed=5))
    model = backbone.build_features()
    model.set_weights(list(source.arrays))
    model.save_weights(str(tmp_path / "mobilenet.weights.h5"))
    client = settings.client()
    client.create_bucket(Bucket=bucket, CreateBucketConfiguration={
        "LocationConstraint": "eu-west-3"})
    client.upload_file(str(tmp_path / "mobilenet.weights.h5"), bucket, "w/mobilenet.weights.h5")
    ctx = WeightsContext(tmp_path / "cache", fetch=lambda uri, folder: download(
        settings, Location.parse(uri), folder))
    uri = f"s3://{bucket}/w/mobilenet.weights.h5"
    loaded = load_weights(backbone, uri, ctx)
    assert loaded.pretrained and loaded.source == uri
    assert all(np.array_equal(a, b) for a, b in zip(loaded.arrays, source.arrays, strict=True))
    cached = tmp_path / "cache" / "downloads" / bucket / "w" / "mobilenet.weights.h5"
    assert cached.is_file()
    with pytest.raises(StorageError):
        load_weights(backbone, f"s3://{bucket}/w/missing.h5", ctx)

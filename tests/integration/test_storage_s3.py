"""S3Storage against a real moto server: the tasks fetch the images, write the Parquet parts
and read them back; the driver only lists names."""

from datetime import UTC, datetime

import pytest

from fruits_p8.io.images import read_images
from fruits_p8.io.paths import Location
from fruits_p8.io.storage import S3Storage, storage_for
from fruits_p8.schema import ARROW_SCHEMAS, DEFAULT_REGION, ERRORS, FEATURES, IMAGE_COLUMNS

pytestmark = [pytest.mark.spark, pytest.mark.parity]


@pytest.fixture
def bucket(s3):
    settings, name = s3
    settings.client().create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": DEFAULT_REGION})
    return settings, name


def feature_rows(n: int) -> list[tuple]:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return [(f"s3://b/in/L{i % 3}/{i}.jpg", f"L{i % 3}", [float(i), i + 0.5], [float(-i)],
             100 + i, when, f"{i:064x}") for i in range(n)]


def test_a_local_session_has_no_s3_filesystem_so_auto_goes_through_boto3(spark, bucket):
    settings, name = bucket
    assert isinstance(storage_for(Location.parse(f"s3://{name}/out"), settings, spark), S3Storage)


def test_a_dataset_round_trips_through_the_tasks(spark, bucket):
    settings, name = bucket
    storage = storage_for(Location.parse(f"s3://{name}/out"), settings, spark, io="boto3")
    schema = ARROW_SCHEMAS[FEATURES]
    rows = feature_rows(23)
    df = spark.createDataFrame(rows, "path string, label string, features array<float>, "
                               "pca array<float>, length long, modificationTime timestamp, "
                               "digest string").repartition(5)
    storage.write_dataset(df, schema, Location.parse(f"s3://{name}/out/features"))
    keys = sorted(o["Key"] for o in settings.client().list_objects_v2(
        Bucket=name, Prefix="out/features/")["Contents"])
    parts = [k for k in keys if k.endswith(".parquet")]
    assert keys[0] == "out/features/_SUCCESS" and 1 < len(parts) <= 5

    back = storage.read_dataset(spark, Location.parse(f"s3://{name}/out/features"), schema)
    assert back.columns == schema.names
    assert back.rdd.getNumPartitions() == min(len(parts), spark.sparkContext.defaultParallelism)
    got = sorted(tuple(r) for r in back.collect())
    assert [(r[0], r[1], r[2], r[3], r[4], r[6]) for r in got] == sorted(
        (r[0], r[1], r[2], r[3], r[4], r[6]) for r in rows)
    assert {r[5].replace(tzinfo=None) for r in got} == {rows[0][5].replace(tzinfo=None)}


def test_an_empty_dataset_reads_back_with_its_columns(spark, bucket):
    settings, name = bucket
    storage = storage_for(Location.parse(f"s3://{name}/out"), settings, spark)
    storage.write_empty(ARROW_SCHEMAS[ERRORS], Location.parse(f"s3://{name}/out/errors"))
    back = storage.read_dataset(spark, Location.parse(f"s3://{name}/out/errors"),
                                ARROW_SCHEMAS[ERRORS])
    assert back.columns == ARROW_SCHEMAS[ERRORS].names and back.count() == 0


def test_images_are_listed_on_the_driver_and_fetched_by_the_tasks(spark, bucket):
    settings, name = bucket
    client = settings.client()
    objects = {"in/Apple/a_100.jpg": b"aa", "in/Apple/b_100.jpg": b"bbb",
               "in/Pear/c_100.jpg": b"c", "in/Pear/notes.txt": b"not an image"}
    for key, body in objects.items():
        client.put_object(Bucket=name, Key=key, Body=body)
    found = read_images(spark, f"s3://{name}/in", settings=settings)
    assert found.frame.columns == list(IMAGE_COLUMNS) and found.count == 3
    rows = {r.path: (r.label, bytes(r.content), r.length) for r in found.frame.collect()}
    assert rows == {f"s3://{name}/{k}": (k.split("/")[1], v, len(v))
                    for k, v in objects.items() if k.endswith(".jpg")}
    first = read_images(spark, f"s3://{name}/in", limit=2, settings=settings)
    assert sorted(r.path for r in first.frame.collect()) == [
        f"s3://{name}/in/Apple/a_100.jpg", f"s3://{name}/in/Apple/b_100.jpg"]


def test_an_incremental_s3_run_reuses_the_features_the_tasks_read_back(spark, s3, sample_dir,
                                                                        cache_dir):
    from fruits_p8 import pipeline
    from fruits_p8.config import RunConfig
    from fruits_p8.io.upload import upload_tree

    settings, name = s3
    upload_tree(sample_dir / "Test", Location.parse(f"s3://{name}/in"), settings, create=True)
    config = RunConfig(input=f"s3://{name}/in", output=f"s3://{name}/out", k=3, batch_size=8,
                       cache_dir=cache_dir, endpoint_url=settings.endpoint_url,
                       weights="random", io="boto3")
    first = pipeline.run(config, spark=spark)
    settings.client().put_object(Bucket=name, Key="in/Banana/new_100.jpg",
                                 Body=(sample_dir / "Test" / "Banana" / "0_100.jpg").read_bytes())
    again = pipeline.run(config.with_(incremental=True), spark=spark)
    assert again.rows == first.rows + 1
    assert again.report["counts"]["reused"] == first.rows
    assert again.report["counts"]["cnn_images"] == 1


def test_a_root_typed_with_escapes_is_parsed_once_for_listing_and_labels(spark, bucket):
    settings, name = bucket
    client = settings.client()
    for key in ("My Fruits/root_100.jpg", "My Fruits/Apple/a_100.jpg",
                "My Fruits/Apple/_DSC1.jpg", "My Fruits/_Pear/.b_100.jpg"):
        client.put_object(Bucket=name, Key=key, Body=b"x")
    root = f"s3://{name}/My%20Fruits"  # as a person types a space in a URI
    found = read_images(spark, root, settings=settings)
    labels = {r.path.rsplit("/My Fruits/", 1)[1]: r.label for r in found.frame.collect()}
    assert labels == {"root_100.jpg": "", "Apple/a_100.jpg": "Apple",
                      "Apple/_DSC1.jpg": "Apple", "_Pear/.b_100.jpg": "_Pear"}

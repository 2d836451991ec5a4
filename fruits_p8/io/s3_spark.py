"""Spark reading and writing S3 through boto3 on the executors.

For machines whose Spark has no S3 filesystem (the pyspark wheel lacks the S3A jars, which
come from Maven): the driver lists the objects, executors fetch them; executors put
Parquet parts (`io.parts` into an `S3Sink`), the driver puts the markers. On EMR, Spark's
own s3:// (EMRFS) is used instead.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from fruits_p8.io.paths import label_from_path, parse_location, split_s3
from fruits_p8.io.s3 import S3Settings, list_objects, storage_error

FETCH_THREADS = 16
LISTING_SCHEMA = "path string, label string, length long, modificationTime timestamp"
IMAGE_SCHEMA = (
    "path string, label string, content binary, length long, modificationTime timestamp"
)


def spark_has_filesystem(spark, uri: str) -> bool:
    """True when Spark's Hadoop layer can open this URI's scheme itself (EMRFS, S3A...)."""
    scheme = parse_location(uri).scheme
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    try:
        jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass(scheme, conf)
    except Exception:
        return False
    return True


def list_images(spark, root: str, glob: str, limit: int | None, settings: S3Settings):
    """(path, label, length, modificationTime) of every matching object, in path order."""
    bucket, _ = split_s3(root)
    scheme = parse_location(root).scheme
    try:
        objects = sorted(list_objects(settings.client(), root, glob), key=lambda o: o.key)
    except Exception as exc:
        raise storage_error(exc, root, settings) from None
    if limit is not None:
        objects = objects[:limit]
    rows = []
    for obj in objects:
        path = f"{scheme}://{bucket}/{obj.key}"
        rows.append((path, label_from_path(path, root), obj.size, obj.modified))
    return spark.createDataFrame(rows, LISTING_SCHEMA), len(rows)


def fetch_partition(settings: S3Settings, batches: Iterator[pa.RecordBatch]):
    """mapInArrow body: add each object's bytes (threads hide S3 latency)."""
    client = settings.client()

    def get(path: str) -> bytes:
        bucket, key = split_s3(path)
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()

    with ThreadPoolExecutor(FETCH_THREADS) as pool:
        for batch in batches:
            contents = list(pool.map(get, batch.column("path").to_pylist()))
            yield pa.RecordBatch.from_arrays(
                [batch.column("path"), batch.column("label"), pa.array(contents, pa.binary()),
                 batch.column("length"), batch.column("modificationTime")],
                names=["path", "label", "content", "length", "modificationTime"],
            )


def read_images_boto3(spark, root: str, glob: str, limit: int | None, settings: S3Settings):
    """Images under an s3:// root as IMAGE_SCHEMA rows, fetched by the executors."""
    listing, count = list_images(spark, root, glob, limit, settings)
    parts = max(1, min(spark.sparkContext.defaultParallelism * 4, count))
    frame = listing.repartition(parts).mapInArrow(
        functools.partial(fetch_partition, settings), IMAGE_SCHEMA
    )
    return frame, count


@dataclass(frozen=True)
class S3Sink:
    """Files under an s3:// prefix, put by whichever process holds the sink (executors too)."""

    settings: S3Settings
    uri: str

    def put(self, name: str, data: bytes) -> None:
        bucket, prefix = split_s3(self.uri)
        self.settings.client().put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=data)


def read_parquet_boto3(spark, uri: str, schema: pa.Schema, settings: S3Settings):
    """A Parquet dataset under uri/ read on the driver through boto3, as a DataFrame."""
    bucket, _ = split_s3(uri)
    client = settings.client()
    try:
        keys = [o.key for o in list_objects(client, uri, "*.parquet")]
        tables = [pq.read_table(io.BytesIO(client.get_object(Bucket=bucket, Key=k)["Body"]
                                           .read())).cast(schema) for k in keys]
    except Exception as exc:
        raise storage_error(exc, uri, settings) from None
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    key = "spark.sql.execution.arrow.pyspark.enabled"
    before = spark.conf.get(key, "false")
    spark.conf.set(key, "true")
    try:
        from pyspark.sql.pandas.types import from_arrow_schema

        return spark.createDataFrame(table.to_pandas(), schema=from_arrow_schema(schema))
    finally:
        spark.conf.set(key, before)

"""S3 through boto3 on the executors, for Spark without an S3 filesystem (storage.S3Storage).

The driver lists the objects; the tasks fetch the images and read the Parquet parts, so no
dataset passes through the driver. The tasks' parts are written by `io.parts`.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.parquet as pq

from fruits_p8.io.paths import label_from_path, parse_location, split_s3
from fruits_p8.io.storage import S3Files
from fruits_p8.schema import IMAGE_COLUMNS, IMAGE_DDL

FETCH_THREADS = 16
LISTING_SCHEMA = "path string, label string, length long, modificationTime timestamp"


def list_images(spark, root: str, glob: str, limit: int | None, files: S3Files):
    """(path, label, length, modificationTime) of every matching object, in path order."""
    bucket, _ = split_s3(root)
    scheme = parse_location(root).scheme
    objects = files.listing(root, glob)
    if limit is not None:
        objects = objects[:limit]
    rows = []
    for obj in objects:
        path = f"{scheme}://{bucket}/{obj.key}"
        rows.append((path, label_from_path(path, root), obj.size, obj.modified))
    return spark.createDataFrame(rows, LISTING_SCHEMA), len(rows)


def fetch_partition(files: S3Files, batches: Iterator[pa.RecordBatch]):
    """mapInArrow body: add each object's bytes (threads hide S3 latency)."""
    get = files.getter()
    with ThreadPoolExecutor(FETCH_THREADS) as pool:
        for batch in batches:
            contents = list(pool.map(get, batch.column("path").to_pylist()))
            columns = {name: batch.column(name) for name in batch.schema.names}
            columns["content"] = pa.array(contents, pa.binary())
            yield pa.RecordBatch.from_arrays([columns[name] for name in IMAGE_COLUMNS],
                                             names=list(IMAGE_COLUMNS))


def read_images_boto3(spark, root: str, glob: str, limit: int | None, files: S3Files):
    """Images under an s3:// root as IMAGE_COLUMNS rows, fetched by the executors."""
    listing, count = list_images(spark, root, glob, limit, files)
    parts = max(1, min(spark.sparkContext.defaultParallelism * 4, count))
    frame = listing.repartition(parts).mapInArrow(
        functools.partial(fetch_partition, files), IMAGE_DDL
    )
    return frame, count


def read_parts(files: S3Files, schema: pa.Schema, batches: Iterator[pa.RecordBatch]):
    """mapInArrow body: the rows of each Parquet part named in the `part` column."""
    get = files.getter()
    for batch in batches:
        for part in batch.column("part").to_pylist():
            table = pq.read_table(io.BytesIO(get(part))).select(schema.names).cast(schema)
            yield from table.to_batches()


def read_parquet_parts(spark, uri: str, schema: pa.Schema, files: S3Files):
    """The Parquet dataset under an s3:// `uri`, its parts read by the tasks: the driver
    only lists their names."""
    from pyspark.sql.pandas.types import from_arrow_schema

    bucket, _ = split_s3(uri)
    scheme = parse_location(uri).scheme
    parts = [f"{scheme}://{bucket}/{o.key}" for o in files.listing(uri, "*.parquet")]
    names = spark.createDataFrame([(p,) for p in parts], "part string")
    tasks = max(1, min(len(parts), spark.sparkContext.defaultParallelism))
    return names.repartition(tasks).mapInArrow(
        functools.partial(read_parts, files, schema), from_arrow_schema(schema))

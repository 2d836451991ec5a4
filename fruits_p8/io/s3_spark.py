"""S3 datasets read back by the executors through boto3, for Spark without an S3
filesystem (storage.S3Storage): the driver lists the parts, the tasks read them, so no
dataset passes through the driver. The tasks' parts are written by `io.parts`; images are
listed by io/listing.py and read by io/reading.py.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from fruits_p8.io.files import S3Files
from fruits_p8.io.paths import Location


def read_parts(files: S3Files, bucket: Location, schema: pa.Schema,
               batches: Iterator[pa.RecordBatch]):
    """mapInArrow body: the rows of each Parquet part whose key is in the `part` column."""
    get = files.getter()
    for batch in batches:
        for key in batch.column("part").to_pylist():
            data = get(bucket.child(key))
            table = pq.read_table(io.BytesIO(data)).select(schema.names).cast(schema)
            yield from table.to_batches()


def read_parquet_parts(spark, location: Location, schema: pa.Schema, files: S3Files):
    """The Parquet dataset at an s3:// `location`, its parts read by the tasks: the driver
    only lists their keys."""
    from pyspark.sql.pandas.types import from_arrow_schema

    parts = [o.key for o in files.listing(location, "*.parquet")]
    bucket = Location(location.scheme, location.bucket, ())
    names = spark.createDataFrame([(p,) for p in parts], "part string")
    tasks = max(1, min(len(parts), spark.sparkContext.defaultParallelism))
    return names.repartition(tasks).mapInArrow(
        functools.partial(read_parts, files, bucket, schema), from_arrow_schema(schema))

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

from fruits_p8.io.paths import parse_location, split_s3
from fruits_p8.io.storage import S3Files


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

"""Parquet written by the tasks themselves with pyarrow: one part file per partition.

For outputs that need no Hadoop filesystem (storage.LocalStorage, storage.S3Storage): rows
cross from the JVM to the Python workers once, as Arrow, get their last columns there
(`prepare`: the PCA projection) and are written by pyarrow into a Sink (storage.Folder),
faster than Spark ML's transform + Spark's Parquet writer (measured in docs/performance.md).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterator
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from fruits_p8.schema import SUCCESS

BatchFunction = Callable[[pa.RecordBatch], pa.RecordBatch]


class Sink(Protocol):
    """Where a dataset's files go: `put` stores one whole file under a name."""

    def put(self, name: str, data: bytes) -> None: ...


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """The columns worth Parquet's dictionary encoding: the scalar ones (labels, sizes repeat).
    Float arrays almost never repeat: their dictionary is built, then dropped, for nothing
    (time and larger files: docs/performance.md)."""
    return [f.name for f in schema if not pa.types.is_list(f.type)]


def encode(table: pa.Table) -> bytes:
    """`table` as the bytes of one Parquet file (snappy, dictionaries for scalar columns)."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer, use_dictionary=dictionary_columns(table.schema))
    return buffer.getvalue()


def part_name(partition: int) -> str:
    """One name per partition: a retried task replaces its own part, never adds one."""
    return f"part-{partition:05d}.parquet"


def write_part(sink: Sink, schema: pa.Schema, prepare: BatchFunction | None,
               batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: this partition's rows, prepared, cast to `schema`, as one part."""
    from pyspark import TaskContext

    tables = []
    for batch in batches:
        if batch.num_rows:
            batch = prepare(batch) if prepare is not None else batch
            tables.append(pa.Table.from_batches([batch]).select(schema.names).cast(schema))
    if tables:
        table = pa.concat_tables(tables)
        name = part_name(TaskContext.get().partitionId())
        sink.put(name, encode(table))
        yield pa.RecordBatch.from_pylist([{"name": name, "rows": table.num_rows}])


def write_empty(schema: pa.Schema, sink: Sink) -> None:
    """A dataset with no rows that readers still see with its columns: no Spark job."""
    sink.put(part_name(0), encode(schema.empty_table()))
    sink.put(SUCCESS, b"")


def write_parts(df, schema: pa.Schema, sink: Sink, prepare: BatchFunction | None = None) -> int:
    """Write `df` as the dataset `schema` (the columns of `df` it names, plus what `prepare`
    adds) into `sink`, then _SUCCESS; returns the number of rows written."""
    present = [name for name in schema.names if name in df.columns]
    written = df.select(*present).mapInArrow(
        functools.partial(write_part, sink, schema, prepare), "name string, rows long"
    ).collect()
    if not written:
        write_empty(schema, sink)
        return 0
    sink.put(SUCCESS, b"")
    return sum(r.rows for r in written)

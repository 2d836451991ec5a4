"""The tasks' side of the listing: a listed file's bytes, or why there are none.

A file deleted since it was listed is `missing`, one whose size or time moved is `changed`,
one this process may not open is `unreadable`: each becomes an error row, so that a run's
`files = rows_written + errors` holds whatever happens to the input meanwhile.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from fruits_p8.io.listing import CHANGED, MISSING, NOT_A_FILE, TOO_BIG, UNREADABLE, Listing

FETCH_THREADS = 16  # S3 requests in flight per task: hides the latency of small objects

# The listing as Spark rows; `source`, `read_error` and `read_detail` are the reader's (the
# featurizer consumes them: features/featurizer.CONSUMED).
LISTING_DDL = ("path string, label string, length long, modificationTime timestamp, "
               "source binary, read_error string, read_detail string")
# Problems the listing finds before reading: such a file is not read, its row is an error row.
UNREAD = frozenset({MISSING, NOT_A_FILE, TOO_BIG})


@dataclass(frozen=True)
class Fetched:
    """A file's bytes, or the error kind and message that replace them."""

    content: bytes | None
    error: str | None = None
    detail: str | None = None


def millis(moment: datetime) -> int:
    """A time at the millisecond, as Hadoop listings give it and the datasets store it."""
    return round(moment.timestamp() * 1000)


def read_local(source: bytes, length: int, modified: datetime) -> Fetched:
    """A local file's bytes, checked against what the listing saw."""
    try:
        with open(source, "rb") as handle:
            info = os.fstat(handle.fileno())
            if info.st_size != length or info.st_mtime_ns // 1_000_000 != millis(modified):
                return Fetched(None, CHANGED, "changed since it was listed (size or time)")
            data = handle.read(length + 1)
    except FileNotFoundError:
        return Fetched(None, MISSING, "deleted since it was listed")
    except PermissionError:
        return Fetched(None, UNREADABLE, "cannot be read by this process (permissions)")
    except OSError as exc:
        return Fetched(None, UNREADABLE, f"cannot be read: {exc.strerror or exc}")
    if len(data) != length:
        return Fetched(None, CHANGED, "changed while it was read")
    return Fetched(data)


def s3_reader(settings, bucket: str) -> Callable[[bytes, int, datetime], Fetched]:
    """A reader of objects in `bucket`, one boto3 client for a task's calls."""
    client = settings.client()

    def read(source: bytes, length: int, modified: datetime) -> Fetched:
        from botocore.exceptions import ClientError

        try:
            reply = client.get_object(Bucket=bucket, Key=source.decode("utf-8"))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return Fetched(None, MISSING, "deleted since it was listed")
            raise
        if reply["ContentLength"] != length or millis(reply["LastModified"]) != millis(modified):
            return Fetched(None, CHANGED, "changed since it was listed (size or time)")
        return Fetched(reply["Body"].read())
    return read


@dataclass(frozen=True)
class Reader:
    """How the tasks open listed files: picklable, a reader made once per task."""

    make: Callable[[], Callable[[bytes, int, datetime], Fetched]]
    threads: int = 1

    def batches(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """Listing batches -> the same rows with `content` (null where `read_error`)."""
        read = self.make()
        with ThreadPoolExecutor(self.threads) as pool:
            for batch in batches:
                yield with_content(batch, read, pool)


def local_reader() -> Reader:
    return Reader(lambda: read_local)


def s3_files_reader(settings, bucket: str) -> Reader:
    return Reader(functools.partial(s3_reader, settings, bucket), FETCH_THREADS)


def with_content(batch: pa.RecordBatch, read, pool: ThreadPoolExecutor) -> pa.RecordBatch:
    """One listing batch read: `source` replaced by `content` (the columns keep their order:
    a join may have moved them), `read_error`/`read_detail` filled in."""
    rows = batch.select(["source", "length", "modificationTime", "read_error"]).to_pylist()

    def fetch(row: dict) -> Fetched:
        if row["read_error"] in UNREAD:
            return Fetched(None)
        return read(row["source"], row["length"], row["modificationTime"])

    fetched = list(pool.map(fetch, rows))
    errors = [row["read_error"] or f.error for row, f in zip(rows, fetched, strict=True)]
    old = batch.column("read_detail").to_pylist()
    details = [d if d is not None else f.detail for d, f in zip(old, fetched, strict=True)]
    columns = {name: batch.column(name) for name in batch.schema.names}
    columns["source"] = pa.array([f.content for f in fetched], pa.binary())
    columns["read_error"] = pa.array(errors, pa.string())
    columns["read_detail"] = pa.array(details, pa.string())
    names = ["content" if name == "source" else name for name in columns]
    return pa.RecordBatch.from_arrays(list(columns.values()), names=names)


def listing_frame(spark, listing: Listing, partitions: int | None = None):
    """The listing as a Spark frame of LISTING_DDL, `partitions` tasks (default: the cores)."""
    rows = [(f.path, f.label, f.length, f.modified, f.source, f.problem, f.detail)
            for f in listing.files]
    slices = max(1, min(partitions or spark.sparkContext.defaultParallelism, len(rows) or 1))
    rdd = spark.sparkContext.parallelize(rows, slices)
    return spark.createDataFrame(rdd, LISTING_DDL)

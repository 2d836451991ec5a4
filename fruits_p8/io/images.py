"""Read image files into a DataFrame (path, label, content, length, modificationTime)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fruits_p8.errors import InputError
from fruits_p8.io.paths import label_from_path, parse_location, path_from_uri
from fruits_p8.io.s3 import S3Settings, check_bucket
from fruits_p8.schema import IMAGE_COLUMNS


def resolve_input(path: str, settings: S3Settings | None = None) -> str:
    """A local input as an absolute path (checked to exist); an s3:// bucket is checked to
    exist when settings are given; other URIs unchanged."""
    loc = parse_location(path)
    if loc.is_s3:
        if not loc.authority:
            raise InputError(f"no bucket in {path}")
        if settings is not None:
            check_bucket(settings.client(), loc.authority, settings)
        return path.rstrip("/")
    if not loc.is_local:
        return path
    local = Path(path if loc.scheme == "" else "/" + loc.key).expanduser()
    if not local.exists():
        raise InputError(f"input not found: {path}")
    if not local.is_dir():
        raise InputError(f"input must be a folder of images, got a file: {path}")
    return str(local.resolve())


def with_labels(spark, df, paths: list[str], root: str):
    """Join `label` (the folder holding each file; null directly under root) onto `df`.

    Labels are computed on the driver from the listing it already holds, then broadcast:
    no Python worker is spent on them.
    """
    from pyspark.sql import functions as F

    labels = spark.createDataFrame(
        [(p, label_from_path(p, root)) for p in paths], "path string, label string"
    )
    return df.join(F.broadcast(labels), "path", "left")


def input_files(frame) -> list[str]:
    """The files a file-source DataFrame reads, as Spark's encoded URIs, fetched from the JVM
    in one call: list(frame.inputFiles()) makes one py4j round trip per file."""
    jvm = frame.sparkSession.sparkContext._jvm
    joined = jvm.org.apache.hadoop.util.StringUtils.join("\0", frame._jdf.inputFiles())
    return joined.split("\0") if joined else []


def empty_local_files(paths: list[str]) -> list[str]:
    """The zero-byte files among local `paths` (raw spellings, as binaryFile's `path`)."""
    return [path for path, kind in _local_problems(paths) if kind == "empty"]


def unreadable_local_files(paths: list[str]) -> list[str]:
    """The local files this process may not read (permissions): the scan skips them, they
    come back as error rows."""
    return [path for path, kind in _local_problems(paths) if kind == "unreadable"]


def _local_problems(paths: list[str]) -> list[tuple[str, str]]:
    found = []
    for path in paths:
        local = "/" + parse_location(path, decode=False).key
        try:
            if not os.access(local, os.R_OK):
                found.append((path, "unreadable"))
            elif os.stat(local).st_size == 0:
                found.append((path, "empty"))
        except OSError:  # gone since the listing: the scan reports it as Spark does
            continue
    return found


def skipped_by_scan(files, listed: list[str], root: str) -> list[tuple[str, str]]:
    """The listed files that binaryFile's scan leaves out, with why: zero-byte files
    ("empty") and, locally, files this process may not read ("unreadable").

    Local inputs: a stat per file, no Spark job. Elsewhere: the scanned paths are
    collected, one task per core rather than one per scan partition (docs/performance.md).
    """
    if parse_location(root, decode=False).is_local:
        return _local_problems(listed)
    cores = max(1, files.sparkSession.sparkContext.defaultParallelism)
    scanned = [r.path for r in files.select("path").coalesce(cores).collect()]
    known = {parse_location(p, decode=False).uri() for p in scanned}
    return [(p, "empty") for p in listed if p not in known]


@dataclass(frozen=True)
class ImageFiles:
    """The images of a run: a lazy frame of IMAGE_COLUMNS and how many files matched."""

    frame: object
    count: int


def read_images(spark, root: str, glob: str = "*.jpg", limit: int | None = None,
                storage=None) -> ImageFiles:
    """Every file under `root` (recursively) whose name matches `glob`, with its label, read
    through `storage` (storage.storage_for(root) by default). With `limit`, the first files
    in path order are kept.

    >>> from fruits_p8 import EMBEDDED_SAMPLE, read_images
    >>> images = read_images(spark, str(EMBEDDED_SAMPLE))
    >>> images.count, images.frame.select("label").distinct().count()
    (360, 18)
    """
    if storage is None:
        from fruits_p8.io.storage import storage_for

        storage = storage_for(root)
    return storage.scan_images(spark, root, glob, limit)


def scan_binary_files(spark, root: str, glob: str, limit: int | None) -> ImageFiles:
    """read_images through Spark's binaryFile source (local paths, hdfs://, s3:// through
    EMRFS or S3A). Its scan skips zero-byte files and files it may not read; they are added
    back here (empty content, or none) so that they come out as error rows instead of
    vanishing."""
    from pyspark.sql import functions as F

    files = (
        spark.read.format("binaryFile")
        .option("pathGlobFilter", glob)
        .option("recursiveFileLookup", "true")
        .option("ignoreMissingFiles", "true")  # unreadable ones: found below, error rows
        .load(root)
    )
    listed = sorted({path_from_uri(uri) for uri in input_files(files)})
    if limit is not None and len(listed) > limit:
        listed = listed[:limit]
        files = files.where(F.col("path").isin(listed))
    skipped = skipped_by_scan(files, listed, root)
    if skipped:
        empty = spark.createDataFrame(
            [(p, None, 0, bytearray() if kind == "empty" else None) for p, kind in skipped],
            "path string, modificationTime timestamp, length long, content binary",
        )
        files = files.unionByName(empty)
    labelled = with_labels(spark, files, listed, root)
    return ImageFiles(labelled.select(*IMAGE_COLUMNS), len(listed))

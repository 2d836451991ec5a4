"""Read image files into a DataFrame (path, label, content, length, modificationTime)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fruits_p8.errors import InputError
from fruits_p8.io.paths import canonical_uri, label_from_path, parse_location

IMAGE_COLUMNS = ("path", "label", "content", "length", "modificationTime")


def resolve_input(path: str) -> str:
    """A local input as an absolute path (checked to exist); other URIs unchanged."""
    loc = parse_location(path)
    if not loc.is_local:
        return path
    local = Path(path if loc.scheme == "" else "/" + loc.key).expanduser()
    if not local.exists():
        raise InputError(f"input not found: {path}")
    if not local.is_dir():
        raise InputError(f"input must be a folder of images, got a file: {path}")
    return str(local.resolve())


def with_labels(df, root: str):
    """Add `label`, the folder that holds each file (null for files directly under root)."""
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("string")
    def labels(paths: pd.Series) -> pd.Series:
        return paths.map(lambda p: label_from_path(p, root))

    return df.withColumn("label", labels("path"))


@dataclass(frozen=True)
class ImageFiles:
    """The images of a run: a lazy frame of IMAGE_COLUMNS and how many files matched."""

    frame: object
    count: int


def read_images(spark, root: str, glob: str = "*.jpg", limit: int | None = None) -> ImageFiles:
    """Every file under `root` (recursively) whose name matches `glob`, with its label.

    Spark's binaryFile source reads local paths, hdfs:// and, on EMR, s3:// (EMRFS). Its scan
    skips zero-byte files; they are added back here with empty content so that they come out
    as error rows instead of vanishing. With `limit`, the first files in path order are kept.
    """
    from pyspark.sql import functions as F

    files = (
        spark.read.format("binaryFile")
        .option("pathGlobFilter", glob)
        .option("recursiveFileLookup", "true")
        .load(root)
    )
    listed = sorted({canonical_uri(p) for p in files.inputFiles()})
    if limit is not None and len(listed) > limit:
        listed = listed[:limit]
        files = files.where(F.col("path").isin(listed))
    scanned = {canonical_uri(r.path) for r in files.select("path").collect()}
    skipped = [p for p in listed if p not in scanned]
    if skipped:
        empty = spark.createDataFrame(
            [(p, None, 0, bytearray()) for p in skipped],
            "path string, modificationTime timestamp, length long, content binary",
        )
        files = files.unionByName(empty)
    return ImageFiles(with_labels(files, root).select(*IMAGE_COLUMNS), len(listed))

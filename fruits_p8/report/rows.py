"""A finished output's labelled rows as numpy arrays, collected once through Arrow.

The report's checks (the quality check, the neighbours' search, the plots) all read the same
columns: one Spark action that ships Arrow batches to the driver replaces the many actions
and the row-by-row collect they used to make (docs/data_quality.md).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fruits_p8.arrow import list_to_matrix
from fruits_p8.io.paths import folders_of
from fruits_p8.schema import FEATURES

SPLITS = {"training": "Training", "train": "Training", "test": "Test",
          "validation": "Validation", "val": "Validation"}


@dataclass(frozen=True)
class Rows:
    """Rows ordered by path: label (the stored column; None outside a label folder), the
    dataset split of the image's folder (`split_of`), a hash of the image's content (the
    quality check's split), the raw features and the PCA components."""

    paths: list[str]
    labels: list[str | None]
    splits: list[str | None]
    hashes: np.ndarray
    features: np.ndarray
    pca: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    def labelled(self) -> Rows:
        """The rows that have a label (not None, not the empty label of a file outside
        any <Label> folder)."""
        keep = np.array([bool(label) for label in self.labels], dtype=bool)
        if keep.all():
            return self
        return Rows(*([x for x, k in zip(values, keep, strict=True) if k]
                      for values in (self.paths, self.labels, self.splits)),
                    self.hashes[keep], self.features[keep], self.pca[keep])


def split_of(path: str) -> str | None:
    """The dataset split an image belongs to: the folder above its label folder when it is
    named like one (`Training/Apple/1.jpg` -> Training), else None."""
    folders = folders_of(path)
    return SPLITS.get(folders[-2].lower()) if len(folders) >= 2 else None


READ_COLUMNS = ["path", "label", "digest", "features", "pca"]


def content_hash(digest: str | None, path: str) -> int:
    """A 60-bit number from the image's sha256 (hex): the same for every copy of an image,
    wherever it is stored; from the path where a row's digest is null."""
    return int(digest[:15] if digest else hashlib.sha256(path.encode()).hexdigest()[:15], 16)


def to_rows(table: pa.Table) -> Rows:
    """The rows with PCA components of a `features` table (READ_COLUMNS), ordered by path."""
    table = table.filter(pc.greater(pc.list_value_length(table.column("pca")), 0)
                         ).sort_by("path")
    paths = table.column("path").to_pylist()
    hashes = np.array([content_hash(d, p) for d, p in
                       zip(table.column("digest").to_pylist(), paths, strict=True)],
                      dtype=np.int64)
    return Rows(paths, table.column("label").to_pylist(), [split_of(p) for p in paths],
                hashes, list_to_matrix(table.column("features"), name="features"),
                list_to_matrix(table.column("pca"), name="pca"))


def read_rows(spark, output) -> Rows:
    """The rows of a finished output's `features` dataset that hold PCA components."""
    return to_rows(output.read_table(spark, FEATURES, READ_COLUMNS))

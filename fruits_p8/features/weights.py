"""Model weights as plain numpy arrays: what the driver loads once and broadcasts."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Weights:
    """The arrays of a backbone's feature model, in `model.get_weights()` order, and provenance."""

    backbone: str
    arrays: tuple[np.ndarray, ...]
    source: str
    sha256: str
    pretrained: bool

    @property
    def size(self) -> int:
        return int(sum(a.size for a in self.arrays))

    def describe(self) -> dict[str, object]:
        """Provenance for the run report."""
        return {
            "backbone": self.backbone,
            "source": self.source,
            "sha256": self.sha256,
            "pretrained": self.pretrained,
            "parameters": self.size,
        }


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def arrays_sha256(arrays: Sequence[np.ndarray]) -> str:
    """Hex sha256 over shapes, dtypes and bytes: identifies weights that have no file."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def save_npz_atomic(path: Path, arrays: Sequence[np.ndarray]) -> None:
    """Write arrays to an .npz so that a reader never sees a half-written cache file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as stream:
            np.savez(stream, *arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_npz(path: Path) -> tuple[np.ndarray, ...]:
    """Arrays saved by save_npz_atomic, in their order."""
    with np.load(path) as data:
        return tuple(data[f"arr_{i}"] for i in range(len(data.files)))

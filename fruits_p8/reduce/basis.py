"""The fitted standardise + PCA as one value, whatever fitted it and wherever it goes.

A run fits it (or reads it from model/), the Spark ML stage wraps it, model/ stores it and
the report fits its own: all of them hold a `PcaBasis`. It is plain numpy (read-only arrays,
picklable): `projection()` applies it to Arrow batches in the tasks, and
`fruits_p8.reduce.spark_ml.pipeline_of` turns it into Spark ML's models.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields, replace
from functools import cached_property

import numpy as np

from fruits_p8.errors import FittedModelError
from fruits_p8.reduce.pca import cumulative_variance
from fruits_p8.reduce.projection import Projection


@dataclass(frozen=True)
class MadeBy:
    """How the features a basis was fitted on were made: a basis applies only to features
    made the same way (other weights or preprocessing give other numbers)."""

    backbone: str
    feature_dim: int
    weights_sha256: str
    weights: str
    preprocessing: str
    precision: str
    fruits_p8: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, data: bytes, where: str) -> MadeBy:
        try:
            values = json.loads(data)
            return cls(**{f.name: values[f.name] for f in fields(cls)})
        except (ValueError, KeyError, TypeError) as exc:
            raise FittedModelError(f"{where} is not a fruits_p8 model description "
                                   f"({type(exc).__name__}: {exc})") from None

    def differences(self, other: MadeBy) -> list[str]:
        """What makes features of `other` incomparable with this basis', in words."""
        found = []
        for name in ("backbone", "weights_sha256", "preprocessing", "precision",
                     "feature_dim"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                ours, this_run = _apart(str(mine), str(theirs))
                found.append(f"{name} {ours} (this run: {this_run})")
        return found


def _apart(a: str, b: str) -> tuple[str, str]:
    """Two texts, short, showing where they differ: a common start is cut to '…'."""
    common = len(os.path.commonprefix([a, b]))
    start = common if common > 12 else 0
    return tuple(_short(("…" if start else "") + text[start:] or "(nothing more)")
                 for text in (a, b))


def _short(text: str) -> str:
    return text if len(text) <= 24 else text[:12] + "…"


@dataclass(frozen=True, eq=False)
class PcaBasis:
    """A fitted standardisation (mean, sample std) and k principal axes (the columns of the
    d x k `axes`, by decreasing variance) with each axis' share of the variance
    (`explained`); `made_by` tells how its features were made (None outside a run).

    >>> import numpy as np
    >>> from fruits_p8 import PcaBasis
    >>> basis = PcaBasis(mean=np.zeros(3), std=np.full(3, 2.0), axes=np.eye(3)[:, :2],
    ...                  explained=np.array([0.5, 0.25]))
    >>> basis.k, basis.explained_total, basis.project(np.array([[2.0, 4.0, 6.0]])).tolist()
    (2, 0.75, [[1.0, 2.0]])
    """

    mean: np.ndarray
    std: np.ndarray
    axes: np.ndarray
    explained: np.ndarray
    made_by: MadeBy | None = None

    def __post_init__(self) -> None:
        for name in ("mean", "std", "axes", "explained"):
            value = np.array(getattr(self, name), dtype=np.float64)
            value.setflags(write=False)  # shared by copies of the stages that hold it
            object.__setattr__(self, name, value)
        d = self.mean.shape[0] if self.mean.ndim == 1 else -1
        if not (self.std.shape == (d,) and self.axes.ndim == 2 and self.axes.shape[0] == d
                and self.explained.shape == (self.axes.shape[1],)):
            raise ValueError(f"a basis needs d means and stds, d x k axes and k ratios: got "
                             f"{self.mean.shape}, {self.std.shape}, {self.axes.shape}, "
                             f"{self.explained.shape}")
        if self.made_by is not None and self.made_by.feature_dim != d:
            raise ValueError(f"a basis of {d} features made by {self.made_by.feature_dim}-"
                             "feature backbone")

    @property
    def k(self) -> int:
        return int(self.axes.shape[1])

    @property
    def feature_dim(self) -> int:
        return int(self.axes.shape[0])

    @property
    def explained_total(self) -> float:
        """The share of the variance the k axes keep together."""
        return float(cumulative_variance(self.explained)[-1]) if self.k else 0.0

    @property
    def constant_features(self) -> int:
        """Features with zero variance: they scale to 0 everywhere."""
        return int(np.sum(self.std == 0))

    @cached_property
    def scale(self) -> np.ndarray:
        """1/std, and 0 for a constant feature (as Spark ML's StandardScaler: it scales to 0)."""
        return np.divide(1.0, self.std, out=np.zeros_like(self.std), where=self.std != 0)

    @property
    def fingerprint(self) -> str:
        """A short digest of the fitted numbers: features share a basis when it is equal."""
        digest = hashlib.sha256()
        for values in (self.mean, self.std, self.axes):
            digest.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
        return digest.hexdigest()[:16]

    def project(self, features: np.ndarray) -> np.ndarray:
        """(n, d) features -> (n, k) components: ((x - mean) * scale) @ axes in float64,
        returned as float32 (Spark ML's StandardScalerModel + PCAModel to float32 rounding)."""
        centred = np.asarray(features, dtype=np.float64) - self.mean
        return ((centred * self.scale) @ self.axes).astype(np.float32)

    def projection(self, input_col: str = "features", output_col: str = "pca") -> Projection:
        """This basis bound to its columns: the transform the Parquet-writing tasks apply."""
        return Projection(self, input_col, output_col)

    def with_made_by(self, made_by: MadeBy) -> PcaBasis:
        return replace(self, made_by=made_by)

"""PCA on Spark ML, with k given or chosen as the smallest reaching a target explained variance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fruits_p8.errors import ParameterError


def cumulative_variance(ratios: Sequence[float]) -> np.ndarray:
    """Running total of explained-variance ratios (clipped to 1 against rounding)."""
    return np.minimum(np.cumsum(np.asarray(ratios, dtype=np.float64)), 1.0)


def k_for_variance(ratios: Sequence[float], target: float, tolerance: float = 1e-9) -> int:
    """Smallest k whose first k components explain at least `target` of the variance.

    `ratios` are per-component proportions of the total, in decreasing order; if even all of
    them fall short (rounding), all are kept.
    """
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target must be in (0, 1], got {target}")
    totals = cumulative_variance(ratios)
    if totals.size == 0:
        raise ValueError("no components")
    if totals[-1] <= 0:  # no variance at all (identical images): nothing to keep but one
        return 1
    reached = np.nonzero(totals >= target - tolerance)[0]
    return int(reached[0]) + 1 if reached.size else int(totals.size)


def check_k(k: int, n_features: int, n_rows: int | None = None) -> None:
    """k must not exceed the number of features nor the number of rows it is fitted on."""
    if k > n_features:
        raise ParameterError(f"k={k} is larger than the {n_features} features per image")
    if n_rows is not None and k > n_rows:
        raise ParameterError(f"k={k} is larger than the {n_rows} images that have features; "
                             "use a smaller --k or --variance")


@dataclass(frozen=True)
class PcaFit:
    """A fitted Spark PCAModel truncated to k components, its explained-variance ratios and
    its axes (d x k, as numpy: for the projection that needs no JVM)."""

    model: object
    k: int
    explained: np.ndarray
    axes: np.ndarray

    @property
    def cumulative(self) -> np.ndarray:
        return cumulative_variance(self.explained)


def fit_pca(
    vectors,
    input_col: str,
    output_col: str,
    n_features: int,
    n_rows: int,
    k: int | None = None,
    variance: float | None = None,
) -> PcaFit:
    """Fit Spark ML PCA once; with a variance target, fit all components then keep the first k."""
    from pyspark.ml.feature import PCA

    if (k is None) == (variance is None):
        raise ValueError("give exactly one of k and variance")
    if k is not None:
        check_k(k, n_features, n_rows)
        fit_k = k
    else:
        fit_k = min(n_features, n_rows)
    model = PCA(k=fit_k, inputCol=input_col, outputCol=output_col).fit(vectors)
    ratios = np.asarray(model.explainedVariance.toArray(), dtype=np.float64)
    if variance is not None:
        k = k_for_variance(ratios, variance)
        if k < fit_k:
            model = truncate(model, k)
    return PcaFit(model=model, k=int(k), explained=ratios[:k],
                  axes=np.asarray(model.pc.toArray(), dtype=np.float64))


def truncate(model, k: int):
    """The same PCAModel keeping only its first k components (no refit)."""
    from fruits_p8.reduce.spark_ml import pca_model

    return pca_model(model.pc.toArray()[:, :k], model.explainedVariance.toArray()[:k],
                     model.getInputCol(), model.getOutputCol())

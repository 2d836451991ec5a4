"""How many principal components: k given (and checked against the data) or chosen as the
smallest reaching a target share of the variance."""

from __future__ import annotations

from collections.abc import Sequence

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


def check_rows(n_rows: int) -> None:
    """A standard deviation, and so a standardisation, needs at least 2 rows."""
    if n_rows < 2:
        raise ParameterError(f"standardising and PCA need at least 2 images with features, "
                             f"got {n_rows}")

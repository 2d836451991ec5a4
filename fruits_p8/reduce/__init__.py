"""Standardise then PCA on a DataFrame: `Reducer` fits a `PcaBasis` (fruits_p8.reduce.basis).

Two solvers give the same basis: "gram" (default) fits mean, std and the principal axes
from the moments n, sum and X^T X (numpy BLAS on the workers, an eigen-solve on the driver:
`fit_from_moments`), taken from the Featurizer when it summed them, else in one pass of
their own; "spark" fits Spark ML's StandardScaler then PCA (two passes; slower, kept as the
reference). The basis applies in numpy on Arrow batches (`projection()`), as the pipeline's
pyarrow writers do, or through Spark ML's models in the JVM (`transform`).
"""

from __future__ import annotations

from dataclasses import dataclass

from fruits_p8.reduce.basis import PcaBasis
from fruits_p8.reduce.moments import Moments, fit_from_moments
from fruits_p8.reduce.pca import check_k, check_rows, k_for_variance
from fruits_p8.reduce.projection import Projection
from fruits_p8.reduce.spark_ml import collect_moments, fit_with_spark_ml, project

__all__ = ["SOLVERS", "Reducer", "ReducerModel", "check_k", "k_for_variance"]

SOLVERS = ("gram", "spark")


@dataclass(frozen=True)
class ReducerModel:
    """A basis fitted by `Reducer`, bound to its columns. `passes` is how many times the fit
    read the data (0 when it was given the moments)."""

    basis: PcaBasis
    passes: int
    input_col: str = "features"
    output_col: str = "pca"

    def projection(self) -> Projection:
        """The basis on Arrow batches: picklable, for tasks that write with pyarrow."""
        return self.basis.projection(self.input_col, self.output_col)

    def transform(self, df):
        """`df` plus the `output_col` components (array<float>), computed by Spark ML in the
        JVM: the reference the numpy projection is checked against."""
        return project(df, self.basis, self.input_col, self.output_col, as_array=True)


@dataclass(frozen=True)
class Reducer:
    """Estimator: learns the standardisation and the PCA basis from rows with features."""

    k: int | None = 200
    variance: float | None = None
    solver: str = "gram"
    input_col: str = "features"
    output_col: str = "pca"

    def __post_init__(self) -> None:
        if (self.k is None) == (self.variance is None):
            raise ValueError("give exactly one of k and variance")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {self.solver!r}")

    def fit(self, df, n_features: int, n_rows: int,
            moments: Moments | None = None) -> ReducerModel:
        """Fit on `df` (cache it first: the gram solver reads it once, spark twice).

        `moments` of exactly these `n_rows` rows (as the Featurizer sums them) spare the gram
        solver its pass over `df`; moments of any other count are ignored.
        """
        check_rows(n_rows)
        if self.k is not None:
            check_k(self.k, n_features, n_rows)
        if self.solver == "spark":
            basis = fit_with_spark_ml(df, self.input_col, n_features, n_rows, self.k,
                                      self.variance)
            return self._model(basis, passes=2)
        if moments is not None and moments.n == n_rows:
            return self._model(fit_from_moments(moments, self.k, self.variance), passes=0)
        summed = collect_moments(df, self.input_col, n_features)
        return self._model(fit_from_moments(summed, self.k, self.variance), passes=1)

    def _model(self, basis: PcaBasis, passes: int) -> ReducerModel:
        return ReducerModel(basis, passes, self.input_col, self.output_col)

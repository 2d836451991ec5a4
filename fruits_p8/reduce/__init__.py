"""Standardise then PCA: an estimator (`Reducer`) and the model it fits (`ReducerModel`).

Two solvers give the same model: "gram" (default) fits mean, std and the principal axes
from the moments n, sum and X^T X (numpy BLAS on the workers, an eigen-solve on the driver),
taken from the Featurizer when it summed them, else in one pass of their own; "spark"
fits Spark ML's StandardScaler then PCA (two passes; slower, kept as the reference). Both
transform through Spark ML's StandardScalerModel and PCAModel (`transform`), or in numpy
on Arrow batches (`projection`), as the pipeline's pyarrow writers do.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from fruits_p8.errors import ParameterError
from fruits_p8.reduce.moments import Moments, principal_components, standardise
from fruits_p8.reduce.pca import PcaFit, check_k, fit_pca, k_for_variance
from fruits_p8.reduce.projection import Projection
from fruits_p8.reduce.scaler import ScalerFit, fit_scaler, to_array, to_vector

__all__ = ["SOLVERS", "Reducer", "ReducerModel", "check_k", "k_for_variance"]

SOLVERS = ("gram", "spark")
_VECTOR, _SCALED, _PCA_VECTOR = "_features_vec", "_scaled_vec", "_pca_vec"


@dataclass(frozen=True)
class ReducerModel:
    """Fitted scaler + PCA; transform adds an array<float> column of k components.
    `passes` is how many times the fit read the data (0 when it was given the moments)."""

    scaler: ScalerFit
    pca: PcaFit
    input_col: str = "features"
    output_col: str = "pca"
    passes: int = 1

    @property
    def k(self) -> int:
        return self.pca.k

    @property
    def explained(self) -> np.ndarray:
        return self.pca.explained

    @property
    def projection(self) -> Projection:
        """The same standardise + PCA as numpy arrays: picklable, for tasks that work on
        Arrow batches (`Projection.transform_batch`) instead of Spark rows."""
        return Projection.from_fit(self.scaler.mean, self.scaler.std, self.pca.axes,
                                   self.input_col, self.output_col)

    def transform(self, df):
        """`df` plus the `output_col` components, computed by Spark ML in the JVM."""
        vectors = to_vector(df, self.input_col, _VECTOR)
        scaled = self.scaler.model.transform(vectors)
        projected = self.pca.model.transform(scaled)
        return to_array(projected, _PCA_VECTOR, self.output_col).drop(
            _VECTOR, _SCALED, _PCA_VECTOR
        )


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
        if n_rows < 2:
            raise ParameterError(f"standardising and PCA need at least 2 images with "
                                 f"features, got {n_rows}")
        if self.k is not None:
            check_k(self.k, n_features, n_rows)
        if self.solver == "spark":
            return self._fit_spark(df, n_features, n_rows)
        if moments is not None and moments.n == n_rows:
            return self.fit_moments(moments)
        from fruits_p8.reduce.spark_ml import collect_moments

        return replace(self.fit_moments(collect_moments(df, self.input_col, n_features)),
                       passes=1)

    def fit_moments(self, moments: Moments) -> ReducerModel:
        """The gram solver on moments already summed: no Spark job, an eigen-solve."""
        from fruits_p8.reduce.spark_ml import pca_model, scaler_model

        stats = standardise(moments)
        components = principal_components(stats.correlation)
        k = self.k if self.k is not None else k_for_variance(components.ratios, self.variance)
        ratios = components.ratios[:k]
        scaler = ScalerFit(scaler_model(stats.mean, stats.std, _VECTOR, _SCALED),
                           stats.mean, stats.std)
        axes = components.axes[:, :k]
        pca = PcaFit(pca_model(axes, ratios, _SCALED, _PCA_VECTOR), k, ratios, axes)
        return ReducerModel(scaler, pca, self.input_col, self.output_col, passes=0)

    def _fit_spark(self, df, n_features: int, n_rows: int) -> ReducerModel:
        vectors = to_vector(df, self.input_col, _VECTOR)
        scaler = fit_scaler(vectors, _VECTOR, _SCALED)
        pca = fit_pca(scaler.model.transform(vectors), _SCALED, _PCA_VECTOR,
                      n_features=n_features, n_rows=n_rows, k=self.k, variance=self.variance)
        return ReducerModel(scaler, pca, self.input_col, self.output_col, passes=2)

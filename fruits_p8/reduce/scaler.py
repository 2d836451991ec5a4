"""Standardisation (mean 0, std 1 per feature) with Spark ML's StandardScaler."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def to_vector(df, array_col: str, vector_col: str):
    """Add a Spark ML vector column made from an array<float> column."""
    from pyspark.ml.functions import array_to_vector

    return df.withColumn(vector_col, array_to_vector(array_col))


def to_array(df, vector_col: str, array_col: str):
    """Add an array<float> column made from a Spark ML vector column."""
    from pyspark.ml.functions import vector_to_array

    return df.withColumn(array_col, vector_to_array(vector_col, dtype="float32"))


@dataclass(frozen=True)
class ScalerFit:
    """A fitted StandardScalerModel and the per-feature mean and std it learned."""

    model: object
    mean: np.ndarray
    std: np.ndarray

    @property
    def constant_features(self) -> int:
        """Features with zero variance: they scale to 0 everywhere."""
        return int(np.sum(self.std == 0))


def fit_scaler(vectors, input_col: str, output_col: str) -> ScalerFit:
    """Fit mean and (sample) std of a vector column: one pass over the data."""
    from pyspark.ml.feature import StandardScaler

    model = StandardScaler(
        withMean=True, withStd=True, inputCol=input_col, outputCol=output_col
    ).fit(vectors)
    return ScalerFit(model, np.asarray(model.mean.toArray()), np.asarray(model.std.toArray()))

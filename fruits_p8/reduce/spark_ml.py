"""Spark glue of the reduce stage: one moments pass over a DataFrame, and Spark ML models
(StandardScalerModel, PCAModel) built from parameters fitted in numpy."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from fruits_p8.reduce.moments import Moments, merge_all


def partition_moments(column: str, dim: int, batches: Iterator[pa.RecordBatch]):
    """mapInArrow body: the Moments of one partition's array<float> column, as one row."""
    moments = Moments.empty(dim)
    for batch in batches:
        values = batch.column(column).flatten().to_numpy(zero_copy_only=False)
        if values.size:
            moments.add(values.reshape(-1, dim))
    yield pa.RecordBatch.from_arrays([pa.array([moments.to_bytes()], type=pa.binary())],
                                     names=["moments"])


def collect_moments(df, column: str, dim: int) -> Moments:
    """n, sum and X^T X of an array<float> column: one pass, one small result per core."""
    cores = df.sparkSession.sparkContext.defaultParallelism
    parts = (
        df.select(column)
        .coalesce(max(1, cores))
        .mapInArrow(functools.partial(partition_moments, column, dim), "moments binary")
        .collect()
    )
    return merge_all((Moments.from_bytes(row.moments, dim) for row in parts), dim)


def _java(obj):
    from pyspark import SparkContext
    from pyspark.ml.common import _py2java

    return _py2java(SparkContext._active_spark_context, obj)


def _jvm():
    from pyspark import SparkContext

    return SparkContext._active_spark_context._jvm


def scaler_model(mean: np.ndarray, std: np.ndarray, input_col: str, output_col: str):
    """A Spark ML StandardScalerModel (withMean, withStd) with the given statistics."""
    from pyspark.ml.feature import StandardScalerModel
    from pyspark.ml.linalg import Vectors

    java = _jvm().org.apache.spark.ml.feature.StandardScalerModel(
        f"StandardScalerModel_{uuid.uuid4().hex[:12]}",
        _java(Vectors.dense(np.asarray(std, dtype=float))),
        _java(Vectors.dense(np.asarray(mean, dtype=float))),
    )
    model = StandardScalerModel(java)
    model._transfer_params_from_java()
    model._set(withMean=True, withStd=True, inputCol=input_col, outputCol=output_col)
    return model


def pca_model(axes: np.ndarray, ratios: np.ndarray, input_col: str, output_col: str):
    """A Spark ML PCAModel projecting onto the columns of `axes` (d x k)."""
    from pyspark.ml.feature import PCAModel
    from pyspark.ml.linalg import DenseMatrix, DenseVector

    rows, k = axes.shape
    java = _jvm().org.apache.spark.ml.feature.PCAModel(
        f"PCAModel_{uuid.uuid4().hex[:12]}",
        _java(DenseMatrix(rows, k, np.asarray(axes, dtype=float).ravel(order="F").tolist())),
        _java(DenseVector(np.asarray(ratios, dtype=float).tolist())),
    )
    model = PCAModel(java)
    model._transfer_params_from_java()
    model._set(k=k, inputCol=input_col, outputCol=output_col)
    return model

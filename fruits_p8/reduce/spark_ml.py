"""Spark glue of the reduce stage: one moments pass over a DataFrame, a basis as Spark ML's
StandardScalerModel + PCAModel (`pipeline_of`) and back (`basis_of`), the basis applied in
the JVM (`project`), and the reference solver that fits both with Spark ML itself."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from fruits_p8.arrow import list_to_matrix
from fruits_p8.reduce.basis import PcaBasis
from fruits_p8.reduce.moments import Moments, merge_all
from fruits_p8.reduce.pca import k_for_variance

# model/'s Spark ML stages work on vectors: array<float> `features` -> these columns.
VECTOR_COLUMNS = ("features_vector", "features_scaled", "pca_vector")


def partition_moments(column: str, dim: int, batches: Iterator[pa.RecordBatch]):
    """mapInArrow body: the Moments of one partition's array<float> column, as one row."""
    moments = Moments.empty(dim)
    for batch in batches:
        if batch.num_rows:
            moments.add(list_to_matrix(batch.column(column), dim, np.float64, column))
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


def pipeline_of(basis: PcaBasis, columns: tuple[str, str, str] = VECTOR_COLUMNS):
    """The basis as Spark ML's PipelineModel (StandardScalerModel, then PCAModel) on the
    vector columns (in, scaled, out): what model/ holds."""
    from pyspark.ml import PipelineModel

    vector, scaled, projected = columns
    return PipelineModel(stages=[scaler_model(basis.mean, basis.std, vector, scaled),
                                 pca_model(basis.axes, basis.explained, scaled, projected)])


def basis_of(pipeline) -> PcaBasis:
    """The basis a PipelineModel of `pipeline_of` holds (StandardScalerModel, PCAModel)."""
    scaler, pca = pipeline.stages
    return PcaBasis(scaler.mean.toArray(), scaler.std.toArray(), pca.pc.toArray(),
                    pca.explainedVariance.toArray())


def project(df, basis: PcaBasis, input_col: str, output_col: str, as_array: bool):
    """`df` plus `output_col`: the basis applied in the JVM by Spark ML, to an array<float>
    or vector `input_col`; a vector out, or array<float> with `as_array`."""
    from pyspark.ml.functions import array_to_vector, vector_to_array
    from pyspark.ml.linalg import VectorUDT

    hidden = f"_{uuid.uuid4().hex[:8]}"
    vector, scaled, projected = (f"{hidden}_{name}" for name in VECTOR_COLUMNS)
    values = df[input_col] if isinstance(df.schema[input_col].dataType, VectorUDT) else (
        array_to_vector(input_col))
    out = pipeline_of(basis, (vector, scaled, projected)).transform(
        df.withColumn(vector, values))
    result = vector_to_array(projected, "float32") if as_array else out[projected]
    return out.withColumn(output_col, result).drop(vector, scaled, projected)


def fit_with_spark_ml(df, column: str, n_features: int, n_rows: int, k: int | None,
                      variance: float | None) -> PcaBasis:
    """The reference solver: Spark ML's StandardScaler, then its PCA (two passes over `df`;
    with a variance target, all components, of which the first k are kept)."""
    from pyspark.ml.feature import PCA, StandardScaler
    from pyspark.ml.functions import array_to_vector

    vector, scaled, projected = VECTOR_COLUMNS
    vectors = df.select(array_to_vector(column).alias(vector))
    scaler = StandardScaler(withMean=True, withStd=True, inputCol=vector,
                            outputCol=scaled).fit(vectors)
    fit_k = k if k is not None else min(n_features, n_rows)
    pca = PCA(k=fit_k, inputCol=scaled, outputCol=projected).fit(scaler.transform(vectors))
    ratios = pca.explainedVariance.toArray()
    if k is None:
        k = k_for_variance(ratios, variance)
    return PcaBasis(scaler.mean.toArray(), scaler.std.toArray(), pca.pc.toArray()[:, :k],
                    ratios[:k])


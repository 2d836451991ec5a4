"""Standardise + PCA as a Spark ML Estimator and Model, for `pyspark.ml.Pipeline`s.

`PcaReducer.fit` reads its input column once (the moments n, sum and XᵀX, summed in the
Python workers) and solves on the driver; the `PcaReducerModel` it returns transforms in the
JVM with Spark ML's own StandardScalerModel and PCAModel, and saves as their PipelineModel
(under `spark_ml/`) beside its Params.
"""

from __future__ import annotations

import numpy as np
from pyspark import keyword_only
from pyspark.ml import Estimator, Model
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol, HasOutputCol
from pyspark.ml.util import (
    DefaultParamsReadable,
    DefaultParamsReader,
    DefaultParamsWritable,
    DefaultParamsWriter,
    MLReadable,
    MLReader,
    MLWritable,
    MLWriter,
)

from fruits_p8.config import DEFAULT_K
from fruits_p8.errors import ParameterError
from fruits_p8.reduce import Reducer, check_k
from fruits_p8.reduce.saved import VECTOR_COLUMNS, spark_pipeline

SPARK_ML = "spark_ml"


class _ReducerParams(HasInputCol, HasOutputCol):
    k: Param = Param(Params._dummy(), "k",
                     "number of principal components to keep (ignored when variance is set)",
                     TypeConverters.toInt)
    variance: Param = Param(Params._dummy(), "variance",
                            "keep the fewest components explaining this share of the variance",
                            TypeConverters.toFloat)

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(inputCol="features", outputCol="pca", k=DEFAULT_K)


class PcaReducer(Estimator, _ReducerParams, DefaultParamsReadable, DefaultParamsWritable):
    """Estimator: standardise (mean 0, std 1) then PCA, fitted from one pass of moments.

    The input column holds array<float> (as the featurizer writes) or vectors; rows where it
    is null are left out of the fit. The model's output column is a vector, as Spark ML's PCA
    gives, ready for a classifier.

    >>> from pyspark.ml.linalg import Vectors
    >>> from fruits_p8 import PcaReducer
    >>> rows = [(Vectors.dense(v),) for v in ([1.0, 2, 0], [2.0, 0, 1], [0.0, 1, 3], [1.0, 1, 1])]
    >>> frame = spark.createDataFrame(rows, ["features"])
    >>> model = PcaReducer(k=2).fit(frame)
    >>> model.n_components, len(model.transform(frame).first().pca)
    (2, 2)
    """

    @keyword_only
    def __init__(self, *, inputCol: str = "features", outputCol: str = "pca",
                 k: int | None = None, variance: float | None = None) -> None:
        super().__init__()
        self._set(**self._input_kwargs)

    def _fit(self, dataset) -> PcaReducerModel:
        from pyspark.ml.functions import vector_to_array
        from pyspark.ml.linalg import VectorUDT
        from pyspark.sql import functions as F

        from fruits_p8.reduce.spark_ml import collect_moments

        column = self.getInputCol()
        values = dataset.where(F.col(column).isNotNull())
        if isinstance(dataset.schema[column].dataType, VectorUDT):
            values = values.select(vector_to_array(column, "float32").alias(column))
        first = values.select(column).first()
        if first is None:
            raise ParameterError(f"no row with {column}: nothing to fit")
        dim = len(first[0])
        moments = collect_moments(values, column, dim)
        variance = self.getOrDefault("variance") if self.isSet("variance") else None
        k = None if variance is not None else self.getOrDefault("k")
        if moments.n < 2:
            raise ParameterError(f"standardising and PCA need at least 2 rows, got {moments.n}")
        if k is not None:
            check_k(k, dim, moments.n)
        fit = Reducer(k, variance).fit_moments(moments)
        model = PcaReducerModel(fit.scaler.mean, fit.scaler.std, fit.pca.axes, fit.explained)
        return self._copyValues(model)


class PcaReducerModel(Model, _ReducerParams, MLReadable, MLWritable):
    """The fitted standardisation and principal axes; transform adds `outputCol` (a vector).

    Saves and loads as Spark ML models do (its arrays as a Spark ML PipelineModel):

    >>> from pyspark.ml.linalg import Vectors
    >>> from fruits_p8 import PcaReducer, PcaReducerModel
    >>> rows = spark.createDataFrame([(Vectors.dense([float(i), i % 3, i % 5]),)
    ...                               for i in range(9)], ["features"])
    >>> PcaReducer(variance=0.9).fit(rows).write().overwrite().save(str(tmp / "reducer"))
    >>> loaded = PcaReducerModel.load(str(tmp / "reducer"))
    >>> loaded.n_components, loaded.getOutputCol(), loaded.mean.round(2).tolist()
    (3, 'pca', [4.0, 1.0, 1.78])
    """

    def __init__(self, mean: np.ndarray | None = None, std: np.ndarray | None = None,
                 axes: np.ndarray | None = None, explained: np.ndarray | None = None) -> None:
        self.mean, self.std, self.axes, self.explained = mean, std, axes, explained
        super().__init__()

    @property
    def n_components(self) -> int:
        """k: the principal axes kept (the `k` Param, or what `variance` chose)."""
        return int(self.axes.shape[1])

    def spark_ml(self):
        """The same transform as Spark ML's PipelineModel (StandardScalerModel, PCAModel) on
        VECTOR_COLUMNS: what a run saves as model/."""
        return spark_pipeline(self.mean, self.std, self.axes, self.explained)

    def _transform(self, dataset):
        from pyspark.ml.functions import array_to_vector
        from pyspark.ml.linalg import VectorUDT

        vector, scaled, projected = VECTOR_COLUMNS
        column = self.getInputCol()
        if self.getOutputCol() in dataset.columns:
            raise ValueError(f"output column {self.getOutputCol()} already exists: drop it or "
                             "set outputCol")
        as_vector = (dataset[column] if isinstance(dataset.schema[column].dataType, VectorUDT)
                     else array_to_vector(column))
        out = self.spark_ml().transform(dataset.withColumn(vector, as_vector))
        return out.drop(vector, scaled).withColumnRenamed(projected, self.getOutputCol())

    def write(self) -> MLWriter:
        return _ModelWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return _ModelReader(cls)


class _ModelWriter(MLWriter):
    """Params as DefaultParamsWriter writes them; the arrays as Spark ML's PipelineModel."""

    def __init__(self, instance: PcaReducerModel) -> None:
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        DefaultParamsWriter.saveMetadata(self.instance, path, self.sc)
        writer = self.instance.spark_ml().write()
        if self.shouldOverwrite:
            writer = writer.overwrite()
        writer.save(f"{path}/{SPARK_ML}")


class _ModelReader(MLReader):
    def __init__(self, cls: type) -> None:
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> PcaReducerModel:
        from pyspark.ml import PipelineModel

        metadata = DefaultParamsReader.loadMetadata(path, self.sc)
        scaler, pca = PipelineModel.load(f"{path}/{SPARK_ML}").stages
        model = self.cls(scaler.mean.toArray(), scaler.std.toArray(), pca.pc.toArray(),
                         pca.explainedVariance.toArray())
        DefaultParamsReader.getAndSetParams(model, metadata)
        model._resetUid(metadata["uid"])
        return model

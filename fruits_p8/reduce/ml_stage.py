"""Standardise + PCA as a Spark ML Estimator and Model, for `pyspark.ml.Pipeline`s.

`PcaReducer.fit` reads its input column once (the moments n, sum and XᵀX, summed in the
Python workers) and solves on the driver; the `PcaReducerModel` it returns holds the
`PcaBasis`, transforms in the JVM with Spark ML's own StandardScalerModel and PCAModel, and
saves as their PipelineModel (under `spark_ml/`) beside its Params. Both follow pyspark's
conventions (pyspark.ml.feature.PCA): getters, setters, `setParams`, defaults in
`_setDefault`; the model's Params describe the model (its `k` is the components it kept).
"""

from __future__ import annotations

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
from fruits_p8.reduce.basis import PcaBasis
from fruits_p8.reduce.moments import fit_from_moments
from fruits_p8.reduce.spark_ml import basis_of, collect_moments, pipeline_of, project

SPARK_ML = "spark_ml"


class _PcaReducerParams(HasInputCol, HasOutputCol):
    k: Param = Param(Params._dummy(), "k",
                     "the number of principal components (to keep, when variance is not set; "
                     "on a model: kept)", TypeConverters.toInt)
    variance: Param = Param(Params._dummy(), "variance",
                            "keep the fewest components explaining this share of the variance "
                            "(takes precedence over k)", TypeConverters.toFloat)

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self._setDefault(inputCol="features", outputCol="pca", k=DEFAULT_K)

    def getK(self) -> int:
        return self.getOrDefault(self.k)

    def getVariance(self) -> float:
        return self.getOrDefault(self.variance)


class PcaReducer(Estimator, _PcaReducerParams, DefaultParamsReadable, DefaultParamsWritable):
    """Estimator: standardise (mean 0, std 1) then PCA, fitted from one pass of moments.

    The input column holds array<float> (as the featurizer writes) or vectors; rows where it
    is null are left out of the fit. The model's output column is a vector, as Spark ML's PCA
    gives, ready for a classifier.

    >>> from pyspark.ml.linalg import Vectors
    >>> from fruits_p8 import PcaReducer
    >>> rows = [(Vectors.dense(v),) for v in ([1.0, 2, 0], [2.0, 0, 1], [0.0, 1, 3], [1.0, 1, 1])]
    >>> frame = spark.createDataFrame(rows, ["features"])
    >>> model = PcaReducer(k=2).setOutputCol("reduced").fit(frame)
    >>> model.getK(), len(model.transform(frame).first().reduced)
    (2, 2)
    """

    @keyword_only
    def __init__(self, *, inputCol: str | None = None, outputCol: str | None = None,
                 k: int | None = None, variance: float | None = None) -> None:
        super().__init__()
        self.setParams(**self._input_kwargs)

    @keyword_only
    def setParams(self, *, inputCol: str | None = None, outputCol: str | None = None,
                  k: int | None = None, variance: float | None = None) -> PcaReducer:
        return self._set(**self._input_kwargs)

    def setInputCol(self, value: str) -> PcaReducer:
        return self._set(inputCol=value)

    def setOutputCol(self, value: str) -> PcaReducer:
        return self._set(outputCol=value)

    def setK(self, value: int) -> PcaReducer:
        return self._set(k=value)

    def setVariance(self, value: float) -> PcaReducer:
        return self._set(variance=value)

    def _fit(self, dataset) -> PcaReducerModel:
        from pyspark.ml.functions import vector_to_array
        from pyspark.ml.linalg import VectorUDT
        from pyspark.sql import functions as F

        column = self.getInputCol()
        field = dataset.schema[column]
        values = dataset.where(F.col(column).isNotNull()).select(column)
        if isinstance(field.dataType, VectorUDT):
            values = values.select(vector_to_array(column, "float64").alias(column))
        dim = width_of(field) or self._first_width(values, column)
        variance = self.getVariance() if self.isDefined(self.variance) else None
        if variance is None and self.getK() is None:
            raise ParameterError("set k or variance: how many components to keep")
        basis = fit_from_moments(collect_moments(values, column, dim),
                                 None if variance is not None else self.getK(), variance)
        model = self._copyValues(PcaReducerModel(basis))
        return model._set(k=basis.k)

    @staticmethod
    def _first_width(values, column: str) -> int:
        first = values.first()
        if first is None:
            raise ParameterError(f"no row with {column}: nothing to fit")
        return len(first[0])


def width_of(field) -> int | None:
    """The values per row a column's metadata promises (Spark ML's `ml_attr.num_attrs`, as
    VectorAssembler and ImageFeaturizer write it), or None."""
    width = field.metadata.get("ml_attr", {}).get("num_attrs")
    return int(width) if width else None


class PcaReducerModel(Model, _PcaReducerParams, MLReadable, MLWritable):
    """The fitted standardisation and principal axes (`basis`); transform adds `outputCol`
    (a vector). Like Spark ML's StandardScalerModel and PCAModel it shows `mean`, `std`,
    `pc` (d x k) and `explainedVariance`.

    Saves and loads as Spark ML models do (its arrays as a Spark ML PipelineModel):

    >>> from pyspark.ml.linalg import Vectors
    >>> from fruits_p8 import PcaReducer, PcaReducerModel
    >>> rows = spark.createDataFrame([(Vectors.dense([float(i), i % 3, i % 5]),)
    ...                               for i in range(9)], ["features"])
    >>> PcaReducer(variance=0.9).fit(rows).write().overwrite().save(str(tmp / "reducer"))
    >>> loaded = PcaReducerModel.load(str(tmp / "reducer"))
    >>> loaded.getK(), loaded.getOutputCol(), loaded.mean.toArray().round(2).tolist()
    (3, 'pca', [4.0, 1.0, 1.78])
    """

    def __init__(self, basis: PcaBasis | None = None) -> None:
        super().__init__()
        self._basis = basis
        if basis is not None:
            self._set(k=basis.k)

    @property
    def basis(self) -> PcaBasis:
        """The fitted standardise + PCA as numpy arrays (read-only)."""
        if self._basis is None:
            raise ValueError("this PcaReducerModel holds no fitted basis")
        return self._basis

    @property
    def mean(self):
        """The features' means, a DenseVector (StandardScalerModel.mean)."""
        from pyspark.ml.linalg import DenseVector

        return DenseVector(self.basis.mean)

    @property
    def std(self):
        """The features' sample standard deviations, a DenseVector (StandardScalerModel.std)."""
        from pyspark.ml.linalg import DenseVector

        return DenseVector(self.basis.std)

    @property
    def pc(self):
        """The principal axes as the columns of a d x k DenseMatrix (PCAModel.pc)."""
        from pyspark.ml.linalg import DenseMatrix

        d, k = self.basis.axes.shape
        return DenseMatrix(d, k, self.basis.axes.ravel(order="F").tolist())

    @property
    def explainedVariance(self):
        """Each axis' share of the variance, a DenseVector (PCAModel.explainedVariance)."""
        from pyspark.ml.linalg import DenseVector

        return DenseVector(self.basis.explained)

    def setInputCol(self, value: str) -> PcaReducerModel:
        return self._set(inputCol=value)

    def setOutputCol(self, value: str) -> PcaReducerModel:
        return self._set(outputCol=value)

    def _transform(self, dataset):
        if self.getOutputCol() in dataset.columns:
            raise ValueError(f"output column {self.getOutputCol()} already exists: drop it or "
                             "set outputCol")
        return project(dataset, self.basis, self.getInputCol(), self.getOutputCol(),
                       as_array=False)

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
        writer = pipeline_of(self.instance.basis).write()
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
        basis = basis_of(PipelineModel.load(f"{path}/{SPARK_ML}"))
        model = self.cls(basis)
        DefaultParamsReader.getAndSetParams(model, metadata)
        model._resetUid(metadata["uid"])
        return model._set(k=basis.k)  # saved before k told the truth: k=200 with 3 axes

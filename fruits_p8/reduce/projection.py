"""The fitted standardise + PCA as plain numpy arrays, applied to Arrow batches.

What the tasks that write Parquet with pyarrow apply to each batch: the rows go from the
JVM to Python once and never back (Spark ML's StandardScalerModel + PCAModel would make the
JVM compute and then write them). Same numbers as those models, to float32 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Projection:
    """x -> ((x - mean) * scale) @ axes, in float64, returned as float32.

    `scale` is 1/std, and 0 for constant features (as Spark ML's StandardScaler: they scale
    to 0); `axes` holds the k principal axes as columns (d x k).
    """

    mean: np.ndarray
    scale: np.ndarray
    axes: np.ndarray
    input_col: str = "features"
    output_col: str = "pca"

    @classmethod
    def from_fit(cls, mean: np.ndarray, std: np.ndarray, axes: np.ndarray,
                 input_col: str = "features", output_col: str = "pca") -> Projection:
        std = np.asarray(std, dtype=np.float64)
        scale = np.divide(1.0, std, out=np.zeros_like(std), where=std != 0)
        return cls(np.asarray(mean, dtype=np.float64), scale, np.asarray(axes, dtype=np.float64),
                   input_col, output_col)

    @property
    def k(self) -> int:
        return int(self.axes.shape[1])

    def project(self, features: np.ndarray) -> np.ndarray:
        """(n, d) features -> (n, k) components."""
        centred = np.asarray(features, dtype=np.float64) - self.mean
        return ((centred * self.scale) @ self.axes).astype(np.float32)

    def transform_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """`batch` plus `output_col` (list<float>) projected from its `input_col` (list<float>)."""
        column = batch.column(self.input_col)
        if column.null_count:
            raise ValueError(f"{self.input_col} has {column.null_count} null rows: "
                             "nothing to project")
        dim = self.axes.shape[0]
        lengths = pc.min_max(pc.list_value_length(column))
        if len(batch) and not lengths["min"].as_py() == lengths["max"].as_py() == dim:
            raise ValueError(f"{self.input_col} rows must hold {dim} values each")
        values = column.flatten().to_numpy(zero_copy_only=False)
        components = self.project(values.reshape(len(batch), dim))
        projected = pa.ListArray.from_arrays(
            pa.array(np.arange(len(batch) + 1, dtype=np.int32) * self.k),
            pa.array(components.ravel()),
        )
        field = pa.field(self.output_col, pa.list_(pa.float32()))
        return pa.RecordBatch.from_arrays([*batch.columns, projected],
                                          schema=batch.schema.append(field))

    def transform(self, df):
        """`df` plus `output_col`, computed batch by batch in the Python workers."""
        from pyspark.sql.types import ArrayType, FloatType, StructField, StructType

        schema = StructType([*df.schema.fields,
                             StructField(self.output_col, ArrayType(FloatType()))])
        return df.mapInArrow(self._transform_batches, schema)

    def _transform_batches(self, batches):
        for batch in batches:
            yield self.transform_batch(batch)

"""A fitted basis applied to Arrow batches: what the Parquet-writing tasks add to each batch.

The rows go from the JVM to Python once and never back (Spark ML's StandardScalerModel +
PCAModel would make the JVM compute and then write them). Same numbers as those models, to
float32 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from fruits_p8.arrow import list_to_matrix, matrix_to_list

if TYPE_CHECKING:
    from fruits_p8.reduce.basis import PcaBasis


@dataclass(frozen=True)
class Projection:
    """`basis` from `input_col` (list<float>, d values) to `output_col` (list<float>, k);
    picklable, so Spark ships it to the tasks."""

    basis: PcaBasis
    input_col: str = "features"
    output_col: str = "pca"

    @property
    def k(self) -> int:
        return self.basis.k

    def transform_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """`batch` plus `output_col` projected from its `input_col`."""
        features = list_to_matrix(batch.column(self.input_col), self.basis.feature_dim,
                                  name=self.input_col)
        projected = matrix_to_list(self.basis.project(features))
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

"""The rows a classifier reads: a finished output's features, and how they were made."""

from __future__ import annotations

from dataclasses import dataclass

from fruits_p8.errors import InputError
from fruits_p8.io.models import read_fitted
from fruits_p8.io.output import open_output
from fruits_p8.io.paths import Location
from fruits_p8.io.s3 import S3Settings
from fruits_p8.reduce.basis import MadeBy
from fruits_p8.schema import FEATURES


@dataclass(frozen=True)
class FeatureRows:
    """`path`, `label` and `<column>_vector` of an output, and the identity of its features."""

    frame: object  # a Spark DataFrame
    vector: str  # the name of its vector column
    where: str
    made_by: dict
    basis: str  # PcaBasis.fingerprint of the output's fitted basis


def read_feature_rows(spark, output: str, column: str, settings: S3Settings) -> FeatureRows:
    """The rows of the finished output at `output`, `column` (pca or features) as a vector."""
    from pyspark.ml.functions import array_to_vector

    location = Location.parse(output)
    basis = read_fitted(output, settings)  # a clear error where there is no finished run
    frame = open_output(location, settings).read_dataset(spark, FEATURES)
    if frame is None:
        raise InputError(f"{location.text()} holds no finished fruits_p8 run")
    made_by: MadeBy | None = basis.made_by
    vector = f"{column}_vector"
    frame = frame.select("path", "label", array_to_vector(column).alias(vector))
    return FeatureRows(frame, vector, location.text(), vars(made_by) if made_by else {},
                       basis.fingerprint)


def label_counts(rows: FeatureRows) -> dict[str, int]:
    """Images per label ('' for images without a label folder)."""
    counted = rows.frame.groupBy("label").count().collect()
    return {(r["label"] or ""): r["count"] for r in counted}

"""`predict --output`: a large folder labelled on Spark: `run --fitted` with the classifier's
features and basis, then its PipelineModel; the predictions are added to that output."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow.parquet as pq

from fruits_p8.classify.data import read_feature_rows
from fruits_p8.classify.evaluate import read_classifier
from fruits_p8.config import RunConfig
from fruits_p8.features.forward import image_size_of
from fruits_p8.io.output import open_output
from fruits_p8.io.paths import Location
from fruits_p8.io.s3 import S3Settings
from fruits_p8.io.storage import to_arrow

PREDICTIONS = "predictions.parquet"  # path, label, predicted_label, probability (card order)


def predict_on_spark(spark, classifier: str, images: str, output: str, cache_dir: Path,
                     settings: S3Settings, overwrite: bool = False, glob: str = "*.jpg"):
    """Featurize `images` into `output` as the classifier's training features were made,
    then add PREDICTIONS to it; returns the run's result and the number of predictions."""
    from pyspark.ml.functions import vector_to_array

    from fruits_p8.pipeline import run

    card, model = read_classifier(spark, classifier, settings)
    made = card.made_by
    result = run(RunConfig(
        input=images, output=output, glob=glob, fitted=card.trained_on, k=None,
        backbone=made["backbone"], weights=made["weights"], precision=made["precision"],
        image_size=image_size_of(made["preprocessing"]), cache_dir=cache_dir,
        region=settings.region, endpoint_url=settings.endpoint_url, overwrite=overwrite),
        spark=spark)
    target = open_output(Location.parse(output), settings)
    with target.leased(replace=True):
        rows = read_feature_rows(spark, output, card.on, settings)
        card.check_features(rows.made_by, rows.basis, rows.where)
        scored = model.transform(rows.frame).select(
            "path", "label", "predicted_label",
            vector_to_array("probability").alias("probability"))
        table = to_arrow(scored).sort_by("path")
        data = io.BytesIO()
        pq.write_table(table, data)
        target.publish(PREDICTIONS, data.getvalue())
    return result, table.num_rows

"""`train`: a multinomial logistic regression (Spark ML) on a run's features, its
regularisation chosen on a validation split by video blocks, saved with its card."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fruits_p8.classify.blocks import in_validation
from fruits_p8.classify.card import CARD, COLUMNS, MODEL, ClassifierCard
from fruits_p8.classify.data import FeatureRows, label_counts, read_feature_rows
from fruits_p8.errors import InputError, UsageError
from fruits_p8.io.output import open_output
from fruits_p8.io.paths import Location
from fruits_p8.io.s3 import S3Settings

log = logging.getLogger(__name__)

REG_PARAMS = (1e-4, 1e-3, 1e-2)  # L2 strengths tried; the validation accuracy picks one
MAX_ITER = 200


def train(spark, features_output: str, classifier_output: str, on: str = "pca",
          reg_params: Sequence[float] = REG_PARAMS, overwrite: bool = False,
          settings: S3Settings | None = None) -> ClassifierCard:
    """Fit the classifier on the labelled rows of `features_output`, write it (a Spark ML
    PipelineModel: logistic regression, then the label names) and its card.

    >>> from fruits_p8 import EMBEDDED_SAMPLE, RunConfig, run, train
    >>> _ = run(RunConfig(input=str(EMBEDDED_SAMPLE), output=str(tmp / "fruit"), k=20),
    ...         spark=spark)
    >>> card = train(spark, str(tmp / "fruit"), str(tmp / "clf"), reg_params=[1e-3])
    >>> len(card.classes), card.on, card.validation["accuracy"] > 0.8
    (18, 'pca', True)
    """
    if on not in COLUMNS:
        raise UsageError(f"--on must be one of {', '.join(COLUMNS)}, got {on!r}")
    settings = settings or S3Settings()
    if Location.parse(features_output).text() == Location.parse(classifier_output).text():
        raise UsageError("the classifier's --output must be another folder than the features")
    output = open_output(Location.parse(classifier_output), settings)
    output.check(overwrite)  # refuse early, before the work
    rows = read_feature_rows(spark, features_output, on, settings)
    counts = check_labels(label_counts(rows), rows.where)
    classes = tuple(sorted(counts))
    data = _indexed(rows, classes).cache()
    try:
        scores = _validate(data, rows.vector, classes, reg_params)
        best = max(scores, key=lambda reg: (scores[reg]["accuracy"], reg))
        log.info("regParam %g: validation accuracy %.4f", best, scores[best]["accuracy"])
        model = _fit(data, rows.vector, classes, best)
    finally:
        data.unpersist()
    card = ClassifierCard(
        on=on, classes=classes, training_counts=counts, reg_param=best,
        validation={"split": "video blocks (fruits_p8.classify.blocks)",
                    "images": scores[best]["images"], "accuracy": scores[best]["accuracy"],
                    "by_reg_param": {str(r): s["accuracy"] for r, s in scores.items()}},
        trained_on=rows.where, made_by=rows.made_by, basis=rows.basis if on == "pca" else None)
    with output.leased(overwrite):
        try:
            output.begin()
            output.write_spark_ml(MODEL, model, spark)
            output.write_text(CARD, card.to_json())
            output.commit(overwrite)
        except BaseException:
            output.abort()
            raise
    return card


def check_labels(counts: dict[str, int], where: str) -> dict[str, int]:
    """The counts per label, once they can train a classifier."""
    unlabelled = counts.pop("", 0)
    if unlabelled:
        raise InputError(f"{unlabelled} images of {where} have no label (they were directly "
                         "under the input folder): a classifier learns from <Label>/ folders")
    if len(counts) < 2:
        raise InputError(f"{where} has {len(counts)} label(s): a classifier needs two or more")
    return counts


def _indexed(rows: FeatureRows, classes: tuple[str, ...]):
    """The rows with `label_index` (position in `classes`) and `validation`."""
    from pyspark.ml.feature import StringIndexerModel
    from pyspark.sql import functions as F
    from pyspark.sql.types import BooleanType

    indexer = StringIndexerModel.from_labels(list(classes), "label", "label_index")
    validation = F.udf(lambda path: in_validation(path), BooleanType())
    return indexer.transform(rows.frame).withColumn("validation", validation("path"))


def _fit(data, vector: str, classes: tuple[str, ...], reg: float):
    """The PipelineModel: logistic regression on `vector`, then index -> label name."""
    from pyspark.ml import PipelineModel
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import IndexToString

    regression = LogisticRegression(featuresCol=vector, labelCol="label_index",
                                    family="multinomial", regParam=reg, maxIter=MAX_ITER)
    names = IndexToString(inputCol="prediction", outputCol="predicted_label",
                          labels=list(classes))
    return PipelineModel(stages=[regression.fit(data), names])


def _validate(data, vector: str, classes: tuple[str, ...],
              reg_params: Sequence[float]) -> dict[float, dict]:
    """Each regParam's accuracy on the validation blocks, trained on the other blocks."""
    from pyspark.sql import functions as F

    training, held = data.where(~F.col("validation")), data.where(F.col("validation"))
    scores = {}
    for reg in reg_params:
        scored = _fit(training, vector, classes, reg).transform(held)
        row = scored.agg(F.count("*").alias("n"), F.avg(
            (F.col("predicted_label") == F.col("label")).cast("double")).alias("a")).first()
        if not row["n"]:
            raise InputError("no image falls in the validation blocks: too few images to "
                             "choose the regularisation")
        scores[reg] = {"images": row["n"], "accuracy": round(row["a"], 5)}
        log.info("regParam %g: validation accuracy %.4f on %d images", reg, row["a"], row["n"])
    return scores

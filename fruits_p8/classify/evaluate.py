"""`evaluate`: a trained classifier scored on another output made the same way."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from fruits_p8.classify.card import CARD, MODEL, ClassifierCard
from fruits_p8.classify.data import read_feature_rows
from fruits_p8.errors import InputError
from fruits_p8.io.output import open_output
from fruits_p8.io.paths import Location
from fruits_p8.io.s3 import S3Settings

TOP_CONFUSIONS = 10


def read_classifier(spark, classifier: str, settings: S3Settings):
    """The card and the Spark ML PipelineModel that `train` wrote at `classifier`."""
    from pyspark.ml import PipelineModel

    location = Location.parse(classifier)
    output = open_output(location, settings)
    card = ClassifierCard.from_json(output.read_file(CARD), location.text())
    model = location.child(MODEL)
    return card, PipelineModel.load(Path(model.local).resolve().as_uri()
                                    if model.is_local else model.uri())


def evaluate(spark, classifier: str, features_output: str,
             settings: S3Settings | None = None) -> dict:
    """Accuracy, per-label accuracy and the most confused pairs of `classifier` on the
    labelled rows of `features_output` (made with the same backbone and fitted basis).

    >>> from fruits_p8 import EMBEDDED_SAMPLE, RunConfig, evaluate, run, train
    >>> _ = run(RunConfig(input=str(EMBEDDED_SAMPLE), output=str(tmp / "pear"), k=20),
    ...         spark=spark)
    >>> _ = train(spark, str(tmp / "pear"), str(tmp / "pear-clf"), reg_params=[1e-3])
    >>> scores = evaluate(spark, str(tmp / "pear-clf"), str(tmp / "pear"))
    >>> scores["images"], scores["accuracy"] > 0.9
    (360, True)
    """
    from pyspark.sql import functions as F

    settings = settings or S3Settings()
    card, model = read_classifier(spark, classifier, settings)
    rows = read_feature_rows(spark, features_output, card.on, settings)
    card.check_features(rows.made_by, rows.basis, rows.where)
    scored = model.transform(rows.frame.where(F.col("label") != ""))
    pairs = [(r["label"], r["predicted_label"], r["count"]) for r in
             scored.groupBy("label", "predicted_label").count().collect()]
    if not pairs:
        raise InputError(f"{rows.where} has no labelled image to evaluate on")
    return {"classifier": Location.parse(classifier).text(), "features": rows.where,
            "on": card.on, **summarise(pairs, card.classes)}


def summarise(pairs: Iterable[tuple[str, str, int]], classes: tuple[str, ...]) -> dict:
    """Accuracy, per label, and the most frequent (label, predicted) mistakes, from counts
    of (true label, predicted label).

    >>> summarise([("Kiwi", "Kiwi", 9), ("Kiwi", "Lime", 1), ("Lime", "Lime", 5)],
    ...           ("Kiwi", "Lime"))["confused"]
    [{'label': 'Kiwi', 'predicted': 'Lime', 'images': 1}]
    """
    images: Counter[str] = Counter()
    right: Counter[str] = Counter()
    wrong: Counter[tuple[str, str]] = Counter()
    for label, predicted, count in pairs:
        images[label] += count
        if label == predicted:
            right[label] += count
        else:
            wrong[label, predicted] += count
    total = sum(images.values())
    return {
        "images": total,
        "accuracy": round(sum(right.values()) / total, 5),
        "per_label": {label: {"images": n, "accuracy": round(right[label] / n, 5)}
                      for label, n in sorted(images.items())},
        "confused": [{"label": a, "predicted": b, "images": n}
                     for (a, b), n in sorted(wrong.items(), key=lambda i: (-i[1], i[0]))
                     [:TOP_CONFUSIONS]],
        "unknown_labels": sorted(set(images) - set(classes)),
    }

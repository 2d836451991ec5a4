"""--incremental: which files keep the previous output's features, and which basis stays."""

from __future__ import annotations

import logging

from fruits_p8.features.precision import precision_of
from fruits_p8.reduce.basis import MadeBy, PcaBasis
from fruits_p8.reduce.saved import read_saved
from fruits_p8.schema import FEATURES, MODEL_DIR
from fruits_p8.stages.basis import Basis

log = logging.getLogger(__name__)

UNCHANGED_KEY = ["path", "length", "modificationTime"]


def previous_made_by(output) -> tuple[MadeBy | None, PcaBasis | None]:
    """How the previous output's features were made, and its model (None when it has
    none: an output from before model/ existed, whose run.json still tells the first)."""
    files = output.read_folder(MODEL_DIR)
    if files is not None:
        model = read_saved(files, f"{output.uri}/{MODEL_DIR}")
        return model.made_by, model
    report = output.read_report() or {}
    made = report.get("model", {})
    if not made:
        return None, None
    return MadeBy(backbone=made.get("backbone", ""),
                  feature_dim=made.get("feature_dim", 0),
                  weights_sha256=made.get("weights", {}).get("sha256", ""),
                  weights=str(report.get("config", {}).get("weights", "")),
                  preprocessing=made.get("preprocessing", ""),
                  precision=precision_of(made), fruits_p8=report.get("fruits_p8", "")), None


def split_unchanged(spark, images, output, making: MadeBy, refit: bool):
    """--incremental: images whose path, size and time match a row of the previous output's
    features (made with the same weights, image preprocessing and precision) reuse those
    features; the rest is featurized. Unless `refit`, the previous output's standardise +
    PCA is kept, so that the vectors it stored do not move (returned as the third value)."""
    from pyspark.sql import functions as F

    previous = output.read_dataset(spark, FEATURES)
    if previous is None:
        log.info("--incremental: no finished output at %s yet, featurizing everything",
                 output.uri)
        return images, None, None
    made, model = previous_made_by(output)
    if made is not None:
        differences = made.differences(making)
        if differences:
            log.warning("--incremental: the previous output's features were made otherwise "
                        "(%s); featurizing everything again and fitting a new PCA",
                        "; ".join(differences))
            return images, None, None
    kept = None
    if refit:
        log.info("--incremental --refit: fitting a new standardise + PCA on all the images")
    elif model is None:
        log.warning("--incremental: the previous output has no model/ (an older fruits_p8): "
                    "fitting a new PCA on all the images, the stored pca vectors change")
    else:
        kept = Basis(model, f"kept from the previous output {output.uri}")
    known = previous.select(*UNCHANGED_KEY)
    todo = images.join(F.broadcast(known), UNCHANGED_KEY, "left_anti")
    reused = previous.join(F.broadcast(images.select(*UNCHANGED_KEY)), UNCHANGED_KEY,
                           "left_semi").select(
        "path", "label", "length", "modificationTime", "digest", "features",
        F.lit(None).cast("string").alias("error_kind"), F.lit(None).cast("string").alias("error"),
    )
    return todo, reused, kept

"""The whole job: images -> CNN features -> standardised PCA -> Parquet + run.json.

The chain reads as the data flows: list -> featurize -> fit -> write -> record; each stage
lives in fruits_p8/stages/, the checks made before any work in fruits_p8/plan.py. From a
notebook, `from fruits_p8 import RunConfig, run` (see `run`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping
from dataclasses import dataclass, field

from fruits_p8.config import RunConfig
from fruits_p8.plan import Plan, check_same_features, made_by, preflight
from fruits_p8.reduce import check_k
from fruits_p8.run_report import Timings
from fruits_p8.stages.basis import Basis, fit_basis
from fruits_p8.stages.duplicates import find_duplicates
from fruits_p8.stages.featurize import (
    Featurized,
    check_counts,
    choose_precision,
    featurize,
    featurizing,
    listing_note,
    load_backbone_weights,
    load_images,
    unlabelled_note,
)
from fruits_p8.stages.incremental import previous_made_by, split_unchanged
from fruits_p8.stages.record import run_record
from fruits_p8.stages.write import write_output

__all__ = ["RunResult", "run", "preflight", "Featurized", "check_counts", "find_duplicates"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    """What a run produced, as the CLI summarises it."""

    output: str
    files: int
    rows: int
    errors: int
    k: int
    explained_variance: float
    report: dict = field(repr=False)


def run(
    config: RunConfig, spark=None, environ: MutableMapping[str, str] | None = None,
    plan: Plan | None = None,
) -> RunResult:
    """Run the whole chain; starts (and stops) a local session when `spark` is None.

    Mistakes that need no images (missing input, existing output, k above the feature count,
    unknown model, unreachable bucket, an unreadable --fitted model) are reported before
    Spark starts; a caller that ran `preflight(config)` itself passes its result as `plan`.

    Fit on one folder, then project another into the same basis:

    >>> from fruits_p8 import EMBEDDED_SAMPLE, RunConfig, run
    >>> fit = run(RunConfig(input=str(EMBEDDED_SAMPLE), output=str(tmp / "fit"), k=5,
    ...                     glob="[0-9]*.jpg", limit=40), spark=spark)
    >>> fit.rows, fit.errors, fit.k
    (40, 0, 5)
    >>> applied = run(RunConfig(input=str(EMBEDDED_SAMPLE), output=str(tmp / "applied"),
    ...                         glob="r_*.jpg", limit=20, k=None, fitted=str(tmp / "fit")),
    ...               spark=spark)
    >>> applied.rows, applied.report["pca"]["basis"] == f"--fitted {tmp / 'fit'}"
    (20, True)
    """
    plan = plan or preflight(config)
    own_session = spark is None
    if own_session:
        from fruits_p8.spark import build_session

        spark = build_session(config.master, environ if environ is not None else os.environ,
                              config.cache_dir, config.spark_conf)
    try:
        with plan.output.leased(config.overwrite or config.incremental):
            return _run(config, plan, spark)
    finally:
        if own_session:
            spark.stop()


def _precision_to_keep(config: RunConfig, plan: Plan) -> str | None:
    """The precision `auto` follows: a --fitted basis', or the output --incremental extends
    (so its features stay reusable), else none (the CPU decides)."""
    if plan.fitted is not None:
        return plan.fitted.made_by.precision
    if config.incremental:
        made, _ = previous_made_by(plan.output)
        return made.precision if made is not None else None
    return None


def _run(config: RunConfig, plan: Plan, spark) -> RunResult:
    timings = Timings()
    with timings.stage("list"):
        images = load_images(spark, config, plan.root)
        files = images.listing.count
        log.info("%d files match %r under %s%s", files, config.glob, config.input,
                 listing_note(images.listing))
        if note := unlabelled_note(images.listing):
            log.warning(note)
    if config.k is not None and plan.fitted is None:
        check_k(config.k, plan.backbone.feature_dim, files)
    with timings.stage("load_weights"):
        backbone, weights = load_backbone_weights(config)
    precision, why = choose_precision(config.precision, spark, _precision_to_keep(config, plan))
    log.info("precision %s (%s)", precision, why)
    requested, config = config.precision, config.with_(precision=precision)
    making = made_by(config, weights, backbone)
    basis = None
    if plan.fitted is not None:
        check_same_features(plan.fitted, making, f"--fitted {config.fitted}")
        basis = Basis(plan.fitted, f"--fitted {config.fitted}")
    todo, reused = images.frame, None
    if config.incremental:
        todo, reused, kept = split_unchanged(spark, images.frame, plan.output, making,
                                             config.refit)
        basis = basis or kept
    with featurizing(config, spark, backbone, weights, files, basis is None) as (
            featurizer, layout):
        with timings.stage("featurize"):
            featurized = featurize(spark, featurizer, layout, todo, images.reader, reused,
                                   files, config)
        try:
            check_counts(images.listing, featurized)
            duplicates = find_duplicates(featurized.frame)
            if duplicates["files"]:
                log.warning("%d files share their content with another file (%d across "
                            "labels); see run.json", duplicates["files"],
                            duplicates["groups_across_labels"])
            if basis is None:
                with timings.stage("fit_reducer"):
                    basis = fit_basis(config, featurized.ok, featurized.rows, featurizer,
                                      making)
            log.info("PCA: k=%d components (%.1f %% of the variance), %s", basis.model.k,
                     100 * basis.model.explained_total, basis.source)
            record = write_output(
                config, plan.output, featurized, basis, timings,
                lambda: run_record(config, plan.output.uri, images.listing, featurized, basis,
                                   weights, featurizer, layout, timings, duplicates,
                                   {"requested": requested, "why": why}))
        finally:
            featurized.frame.unpersist()
    return RunResult(plan.output.uri, files, featurized.rows, featurized.errors, basis.model.k,
                     basis.model.explained_total, record)

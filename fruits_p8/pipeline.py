"""The whole job: images -> CNN features -> standardised PCA -> Parquet + run.json.

Usable from a notebook:

    from fruits_p8 import pipeline
    from fruits_p8.config import RunConfig
    result = pipeline.run(RunConfig(input="/data/fruits-360/Test", output="out"), spark=spark)

or stage by stage with `load_images`, `load_backbone_weights`, `Featurizer` and `Reducer`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import MutableMapping
from dataclasses import dataclass, field, replace

import numpy as np

from fruits_p8 import __version__
from fruits_p8.config import RunConfig
from fruits_p8.errors import FittedModelError, InputError, UsageError
from fruits_p8.features.backbones import (
    Backbone,
    WeightsContext,
    check_weights_spec,
    get_backbone,
    load_weights,
)
from fruits_p8.features.featurizer import PREPROCESSING, Featurizer
from fruits_p8.features.precision import cpu_runs_bfloat16_natively, precision_of
from fruits_p8.features.weights import Weights
from fruits_p8.io.images import read_images, resolve_input
from fruits_p8.io.models import check_kept_basis, read_fitted
from fruits_p8.io.output import LocalOutput, S3Output, dumps_report, open_output
from fruits_p8.io.paths import is_s3, nested, parse_location
from fruits_p8.io.s3 import S3Settings, download
from fruits_p8.io.storage import storage_for
from fruits_p8.progress import ImageTally, SparkProgress
from fruits_p8.reduce import Reducer, check_k
from fruits_p8.reduce.moments import fit_in_results
from fruits_p8.reduce.pca import cumulative_variance
from fruits_p8.reduce.saved import (
    MADE_BY,
    MadeBy,
    SavedModel,
    read_saved,
    spark_pipeline,
)
from fruits_p8.run_report import Timings, explained_variance_section, versions
from fruits_p8.schema import ERRORS, FEATURES, MODEL_DIR, RUN_JSON

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


def s3_settings(config: RunConfig) -> S3Settings:
    return S3Settings(region=config.region, endpoint_url=config.endpoint_url)


def load_backbone_weights(config: RunConfig) -> tuple[Backbone, Weights]:
    """The backbone named in the config and its weights, loaded once on the driver."""
    backbone = get_backbone(config.model)
    settings = s3_settings(config)
    weights = load_weights(
        backbone, config.weights,
        WeightsContext(cache_dir=config.cache_dir, seed=config.seed,
                       fetch=lambda uri, folder: download(settings, uri, folder)),
    )
    if not weights.pretrained:
        log.warning("weights are RANDOM (%s): features carry no ImageNet knowledge; "
                    "use this for tests only", weights.source)
    return backbone, weights


def executors_run_bfloat16_natively(spark) -> bool | None:
    """cpu_runs_bfloat16_natively where the CNN runs: on an executor (on EMR a core node, not
    the primary node the driver runs on)."""
    return spark.sparkContext.parallelize([0], 1).map(
        lambda _: cpu_runs_bfloat16_natively()).collect()[0]


def load_images(spark, config: RunConfig, root: str | None = None):
    """The input images as (path, label, content, length, modificationTime), and their count."""
    settings = s3_settings(config)
    root = root or resolve_input(config.input, settings)
    images = read_images(spark, root, config.glob, config.limit,
                         storage_for(root, settings, spark, config.io))
    if images.count == 0:
        raise InputError(f"no file matching {config.glob!r} under {config.input}")
    return images.frame, images.count


IMAGES_PER_TASK = 2000
MAX_WAVES = 4


def default_partitions(spark, count: int, batch_size: int) -> int:
    """A multiple of the cores (no core idles in the last wave), at least IMAGES_PER_TASK
    images per task (each task costs ~0.4 s of set-up: measured), up to MAX_WAVES waves for
    progress lines and balance; tiny inputs get one batch per task."""
    cores = spark.sparkContext.defaultParallelism
    if count < cores * batch_size:
        return max(1, math.ceil(count / batch_size))
    waves = min(MAX_WAVES, max(1, count // (cores * IMAGES_PER_TASK)))
    return cores * waves


def moments_fit_in_results(spark, tasks: int, backbone: Backbone) -> bool:
    """Whether the featurizer's tasks may send their feature moments (8·d² bytes each) back
    with their results without nearing spark.driver.maxResultSize; else the fit reads the
    features once more."""
    conf = spark.sparkContext.getConf().get("spark.driver.maxResultSize", "1g")
    limit = spark.sparkContext._jvm.org.apache.spark.network.util.JavaUtils.byteStringAsBytes(conf)
    return fit_in_results(tasks, backbone.feature_dim, int(limit))


def apply_settings(spark, settings: dict[str, str | None]) -> dict[str, str | None]:
    """Set session settings for the length of a run; returns what they were (None: unset),
    to put back afterwards."""
    before = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        if value is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, value)
    return before


def spread(frame, partitions: int):
    """`partitions` tasks: merge the many small scan partitions without a shuffle when there
    are enough of them (binaryFile makes ~one per 30 files), else shuffle to spread."""
    if frame.rdd.getNumPartitions() >= partitions:
        return frame.coalesce(partitions)
    return frame.repartition(partitions)


@dataclass(frozen=True)
class Checked:
    """What preflight resolved: where to read, where to write, which backbone, and the
    saved model to apply (--fitted) if any."""

    root: str
    output: LocalOutput | S3Output
    backbone: Backbone
    fitted: SavedModel | None = None


def check_apart(root: str, output: str) -> None:
    """The output must not be, hold, or sit inside the input: the run would read its own
    files, and replacing the output could delete the images."""
    if not nested(root, output):
        return
    depth = len(parse_location(output).parts) - len(parse_location(root).parts)
    if depth == 0:
        where = "is the input folder"
    elif depth < 0:
        where = f"holds the input {root}: replacing it would delete the images"
    else:
        where = f"is inside the input {root}: the run would read its own output"
    raise UsageError(f"--output {output} {where}; choose an output outside the input")


def preflight(config: RunConfig) -> Checked:
    """Checks that need no Spark and no images: input and output apart, output replaceable
    (and not being written by another run), model, k, input location, the fitted model.

    >>> from fruits_p8 import RunConfig, preflight
    >>> preflight(RunConfig(input="/no/such/folder", output=str(tmp / "out")))
    Traceback (most recent call last):
    fruits_p8.errors.InputError: input not found: /no/such/folder
    """
    settings = s3_settings(config)
    root = resolve_input(config.input, settings)
    output = open_output(config.output, settings, config.io)
    check_apart(root, output.uri if is_s3(output.uri) else str(output.root.resolve()))
    output.check(config.overwrite or config.incremental)
    if config.incremental and not config.refit and config.fitted is None:
        check_kept_basis(output, config.k, config.variance)
    backbone = get_backbone(config.model)
    check_weights_spec(backbone, config.weights)
    if config.k is not None and config.fitted is None:
        check_k(config.k, backbone.feature_dim)
    fitted = None
    if config.fitted is not None:
        fitted = read_fitted(config.fitted, settings)
        check_fitted(fitted, config, backbone)
    return Checked(root, output, backbone, fitted)


def check_fitted(fitted: SavedModel, config: RunConfig, backbone: Backbone) -> None:
    """What can be checked of --fitted before the weights are loaded: the features this run
    makes must be those the model was fitted on, and k is the model's."""
    check_same_features(fitted, replace(
        fitted.made_by, backbone=backbone.name, feature_dim=backbone.feature_dim,
        preprocessing=PREPROCESSING, precision=config.precision), f"--fitted {config.fitted}")
    if config.variance is not None or config.k not in (None, fitted.k):
        raise UsageError(f"--fitted {config.fitted} keeps its k={fitted.k} components: "
                         "drop --k and --variance")


def made_by(config: RunConfig, weights: Weights, backbone: Backbone) -> MadeBy:
    """How this run makes features: what a model fitted on them records."""
    return MadeBy(backbone=backbone.name, feature_dim=backbone.feature_dim,
                  weights_sha256=weights.sha256, weights=config.weights,
                  preprocessing=PREPROCESSING, precision=config.precision,
                  fruits_p8=__version__)


def run(
    config: RunConfig, spark=None, environ: MutableMapping[str, str] | None = None,
    checked: Checked | None = None,
) -> RunResult:
    """Run the whole chain; starts (and stops) a local session when `spark` is None.

    Mistakes that need no images (missing input, existing output, k above the feature count,
    unknown model, unreachable bucket, an unreadable --fitted model) are reported before
    Spark starts; a caller that ran `preflight(config)` itself passes its result as `checked`.

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
    checked = checked or preflight(config)
    own_session = spark is None
    if own_session:
        from fruits_p8.spark import build_session

        spark = build_session(config.master, environ if environ is not None else os.environ,
                              config.cache_dir, config.spark_conf)
    try:
        with checked.output.leased(config.overwrite or config.incremental):
            return _run(config, checked, spark)
    finally:
        if own_session:
            spark.stop()


@dataclass
class Featurized:
    """The featurize stage's result: every row (features or error), persisted, and counts."""

    frame: object
    rows: int
    errors: int
    reused: int | None


@dataclass(frozen=True)
class Basis:
    """The standardise + PCA the features are projected with, and where it came from."""

    model: SavedModel
    source: str  # "fitted on this run's images", "--fitted <uri>", "kept from <output>"
    passes: int = 0


def _run(config: RunConfig, checked: Checked, spark) -> RunResult:
    timings = Timings()
    output = checked.output
    with timings.stage("list"):
        images, files = load_images(spark, config, checked.root)
        log.info("%d files match %r under %s", files, config.glob, config.input)
    if config.k is not None and checked.fitted is None:
        check_k(config.k, checked.backbone.feature_dim, files)
    with timings.stage("load_weights"):
        backbone, weights = load_backbone_weights(config)
    making = made_by(config, weights, backbone)
    basis = None
    if checked.fitted is not None:
        check_same_features(checked.fitted, making, f"--fitted {config.fitted}")
        basis = Basis(checked.fitted, f"--fitted {config.fitted}")
    if config.precision == "bfloat16" and executors_run_bfloat16_natively(spark) is False:
        log.warning("--precision bfloat16: the executors' CPU has no AVX512-BF16 or AMX, so "
                    "bfloat16 is emulated there and slower than float32")

    todo, reused = images, None
    if config.incremental:
        todo, reused, kept = split_unchanged(spark, images, output, making, config.refit)
        basis = basis or kept
    featurizer, layout = _featurizer(config, spark, backbone, weights, files, basis is None)
    previous_settings = apply_settings(spark, featurizer.session_settings())
    featurized = None
    try:
        with timings.stage("featurize"):
            featurized = featurize(spark, featurizer, layout, todo, reused, files, config)
        duplicates = find_duplicates(featurized.frame)
        if duplicates["files"]:
            log.warning("%d files share their content with another file (%d across labels); "
                        "see run.json", duplicates["files"], duplicates["groups_across_labels"])
        good = featurized.frame.where("error_kind is null")
        if basis is None:
            with timings.stage("fit_reducer"):
                basis = fit_basis(config, good, featurized.rows, featurizer, making)
        log.info("PCA: k=%d components (%.1f %% of the variance), %s", basis.model.k,
                 100 * float(cumulative_variance(basis.model.explained)[-1]), basis.source)
        report = write_output(config, output, featurized, good, basis, timings,
                              lambda: build_report(config, files, featurized, basis, weights,
                                                   featurizer, layout, timings, duplicates))
    finally:
        if featurized is not None:
            featurized.frame.unpersist()
        featurizer.close()
        apply_settings(spark, previous_settings)
    return RunResult(output.uri, files, featurized.rows, featurized.errors, basis.model.k,
                     float(cumulative_variance(basis.model.explained)[-1]), report)


def check_same_features(model: SavedModel, making: MadeBy, what: str) -> None:
    """A model applies only to features made as those it was fitted on."""
    differences = model.made_by.differences(making)
    if differences:
        raise FittedModelError(f"the model of {what} was fitted on other features: "
                               + "; ".join(differences))


@dataclass(frozen=True)
class Layout:
    """How the CNN stage runs: its tasks, the threads of each, where they tell progress."""

    partitions: int
    threads: int
    tally: ImageTally


def _featurizer(config: RunConfig, spark, backbone: Backbone, weights: Weights, files: int,
                sum_moments: bool) -> tuple[Featurizer, Layout]:
    """The Featurizer of a run: its tasks sum the feature moments only when this run fits."""
    threads = config.threads_per_task or int(spark.conf.get("spark.task.cpus", "1"))
    partitions = config.partitions or default_partitions(spark, files, config.batch_size)
    tally = ImageTally(spark.sparkContext.getConf().get("spark.driver.host", "127.0.0.1"))
    featurizer = Featurizer(backbone, weights, config.batch_size, threads,
                            sum_moments=sum_moments and moments_fit_in_results(
                                spark, partitions, backbone),
                            precision=config.precision, tally=tally.address)
    return featurizer, Layout(partitions, threads, tally)


def featurize(spark, featurizer: Featurizer, layout: Layout, todo, reused, files: int,
              config: RunConfig) -> Featurized:
    """Run the CNN over `todo` (in the featurizer's tasks), add the `reused` rows, persist
    the lot and count it: one Spark job, with progress."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    tally = layout.tally
    frame = featurizer.transform(spread(todo, layout.partitions))
    keys = [F.col("error_kind").isNull().alias("ok")]
    if reused is not None:
        frame = frame.withColumn("reused", F.lit(False)).unionByName(
            reused.withColumn("reused", F.lit(True)))
        keys.append(F.col("reused"))
    frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
    to_featurize = files if reused is None else None  # unknown before the job
    with tally, SparkProgress(spark.sparkContext, "featurize", to_featurize, tally=tally):
        counts = frame.groupBy(*keys).count().collect()
    rows = sum(r["count"] for r in counts if r.ok)
    errors = sum(r["count"] for r in counts if not r.ok)
    reused_rows = None if reused is None else sum(r["count"] for r in counts if r.reused)
    log.info("%d images with features, %d errors; the CNN ran on %d images (%d model "
             "builds)", rows, errors, featurizer.counters.images.value,
             featurizer.counters.builds.value)
    if reused_rows is not None:
        log.info("--incremental: reused the features of %d unchanged images", reused_rows)
    if rows == 0:
        frame.unpersist()
        raise InputError(f"none of the {files} files under {config.input} is a readable image")
    return Featurized(frame, rows, errors, reused_rows)


def fit_basis(config: RunConfig, good, rows: int, featurizer: Featurizer,
              making: MadeBy) -> Basis:
    """Standardise + PCA fitted on this run's rows (from the moments the featurizer summed,
    when it did)."""
    moments = featurizer.counters.moments
    fit = Reducer(config.k, config.variance, config.pca_solver).fit(
        good, featurizer.backbone.feature_dim, rows,
        moments=None if moments is None else moments.value)
    model = SavedModel(fit.scaler.mean, fit.scaler.std, fit.pca.axes, fit.explained, making)
    return Basis(model, "fitted on this run's images", fit.passes)


def write_output(config: RunConfig, output, featurized: Featurized, good, basis: Basis,
                 timings: Timings, report) -> dict:
    """Stage the datasets, the model and run.json, then commit them as one; returns the
    run.json content (`report()` makes it once the datasets are written)."""
    replace_ok = config.overwrite or config.incremental
    try:
        output.begin()
        with timings.stage("write"):
            output.write_dataset(FEATURES, good, basis.model.projection())
            if featurized.errors:
                output.write_dataset(ERRORS, featurized.frame.where("error_kind is not null"))
            else:
                output.write_empty(ERRORS)
            model = basis.model
            output.write_spark_ml(MODEL_DIR, spark_pipeline(model.mean, model.std, model.axes,
                                                            model.explained), good.sparkSession)
            output.write_text(f"{MODEL_DIR}/{MADE_BY}", model.made_by.to_json())
        content = report()
        output.write_text(RUN_JSON, dumps_report(content))
        output.commit(replace_ok)
    except BaseException:
        output.abort()
        raise
    return content


UNCHANGED_KEY = ["path", "length", "modificationTime"]


def previous_made_by(output) -> tuple[MadeBy | None, SavedModel | None]:
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


def find_duplicates(featurized, examples: int = 5) -> dict:
    """Files whose bytes equal another file's: counts, and a few groups to look at.

    A count per digest first (one light job); labels and paths only for the digests that
    repeat, in a second job that runs only when there are any."""
    from pyspark.sql import functions as F

    content = featurized.where(F.col("digest").isNotNull() & (F.col("length") > 0))
    repeated = [r.digest for r in content.groupBy("digest").count().where("count > 1")
                .select("digest").collect()]
    rows = []
    if repeated:
        digests = featurized.sparkSession.createDataFrame([(d,) for d in repeated],
                                                          "digest string")
        groups = (content.join(F.broadcast(digests), "digest")
                  .groupBy("digest")
                  .agg(F.count("*").alias("n"),
                       F.sort_array(F.collect_set("label")).alias("labels"),
                       F.sort_array(F.collect_list("path")).alias("paths")))
        rows = sorted(groups.collect(), key=lambda r: (-r.n, r.digest))
    return {
        "files": int(sum(r.n for r in rows)),
        "groups": len(rows),
        "groups_across_labels": sum(1 for r in rows if len(r.labels) > 1),
        "examples": [{"labels": list(r.labels), "paths": list(r.paths)[:10]}
                     for r in rows[:examples]],
    }


def build_report(config: RunConfig, files: int, featurized: Featurized, basis: Basis,
                 weights: Weights, featurizer: Featurizer, layout: Layout, timings: Timings,
                 duplicates: dict) -> dict:
    """The run.json content."""
    counts = {
        "files": files,
        "rows_written": featurized.rows,
        "errors": featurized.errors,
        "cnn_images": featurizer.counters.images.value,
        "model_builds": featurizer.counters.builds.value,
    }
    if featurized.reused is not None:
        counts["reused"] = featurized.reused
    elif config.incremental:
        counts["reused"] = 0
    model = basis.model
    return {
        "fruits_p8": __version__,
        "input": config.input,
        "output": config.output,
        "glob": config.glob,
        "counts": counts,
        "duplicates": duplicates,
        "model": {
            "backbone": weights.backbone,
            "feature_dim": featurizer.backbone.feature_dim,
            "weights": weights.describe(),
            "random_weights": not weights.pretrained,
            "batch_size": config.batch_size,
            "precision": config.precision,
            "preprocessing": PREPROCESSING,
        },
        "pca": {
            "k": model.k,
            "basis": basis.source,
            "fitted_model": f"{config.output.rstrip('/')}/{MODEL_DIR}",
            "requested_k": config.k,
            "requested_variance": config.variance,
            "solver": config.pca_solver,
            "fit_passes": basis.passes,
            "constant_features": int(np.sum(model.std == 0)),
            "explained_variance": explained_variance_section(
                model.explained, cumulative_variance(model.explained)),
        },
        "spark": {"partitions": layout.partitions, "threads_per_task": layout.threads},
        "timings_s": {**timings.stages, "total": timings.total},
        "versions": versions(),
        "config": config.to_dict(),
    }

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
from dataclasses import dataclass, field

from fruits_p8 import __version__
from fruits_p8.config import RunConfig
from fruits_p8.errors import InputError, UsageError
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
from fruits_p8.io.output import (
    ERRORS,
    FEATURES,
    RUN_JSON,
    LocalOutput,
    S3Output,
    dumps_report,
    open_output,
)
from fruits_p8.io.paths import is_s3, nested, parse_location
from fruits_p8.io.s3 import S3Settings, download
from fruits_p8.io.storage import storage_for
from fruits_p8.progress import ImageTally, SparkProgress
from fruits_p8.reduce import Reducer, ReducerModel, check_k
from fruits_p8.reduce.moments import fit_in_results
from fruits_p8.run_report import Timings, explained_variance_section, versions

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
class Plan:
    """What preflight resolved: where to read, where to write, which backbone."""

    root: str
    output: LocalOutput | S3Output
    backbone: Backbone


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


def preflight(config: RunConfig) -> Plan:
    """Checks that need no Spark and no images: input and output apart, output replaceable
    (and not being written by another run), model, k, input location."""
    settings = s3_settings(config)
    root = resolve_input(config.input, settings)
    output = open_output(config.output, settings, config.io)
    check_apart(root, output.uri if is_s3(output.uri) else str(output.root.resolve()))
    output.check(config.overwrite or config.incremental)
    backbone = get_backbone(config.model)
    check_weights_spec(backbone, config.weights)
    if config.k is not None:
        check_k(config.k, backbone.feature_dim)
    return Plan(root, output, backbone)


def run(
    config: RunConfig, spark=None, environ: MutableMapping[str, str] | None = None,
    plan: Plan | None = None,
) -> RunResult:
    """Run the whole chain; starts (and stops) a local session when `spark` is None.

    Mistakes that need no images (missing input, existing output, k above the feature count,
    unknown model, unreachable bucket) are reported before Spark starts; a caller that ran
    `preflight(config)` itself passes its `plan`.
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


def _run(config: RunConfig, plan: Plan, spark) -> RunResult:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    timings = Timings()
    output = plan.output
    with timings.stage("list"):
        images, files = load_images(spark, config, plan.root)
        log.info("%d files match %r under %s", files, config.glob, config.input)
    if config.k is not None:
        check_k(config.k, plan.backbone.feature_dim, files)
    with timings.stage("load_weights"):
        backbone, weights = load_backbone_weights(config)
    if config.precision == "bfloat16" and executors_run_bfloat16_natively(spark) is False:
        log.warning("--precision bfloat16: the executors' CPU has no AVX512-BF16 or AMX, so "
                    "bfloat16 is emulated there and slower than float32")

    threads = config.threads_per_task or int(spark.conf.get("spark.task.cpus", "1"))
    partitions = config.partitions or default_partitions(spark, files, config.batch_size)
    todo, reused = images, None
    if config.incremental:
        todo, reused = split_unchanged(spark, images, output, weights, config.precision)
    tally = ImageTally(spark.sparkContext.getConf().get("spark.driver.host", "127.0.0.1"))
    featurizer = Featurizer(backbone, weights, config.batch_size, threads,
                            sum_moments=moments_fit_in_results(spark, partitions, backbone),
                            precision=config.precision, tally=tally.address)
    previous_settings = apply_settings(spark, featurizer.session_settings())
    featurized = None
    try:
        featurized = featurizer.transform(spread(todo, partitions))
        keys = [F.col("error_kind").isNull().alias("ok")]
        if reused is not None:
            featurized = featurized.withColumn("reused", F.lit(False)).unionByName(
                reused.withColumn("reused", F.lit(True)))
            keys.append(F.col("reused"))
        featurized = featurized.persist(StorageLevel.MEMORY_AND_DISK)
        to_featurize = files if reused is None else None  # unknown before the job
        with timings.stage("featurize"), tally, SparkProgress(spark.sparkContext, "featurize",
                                                               to_featurize, tally=tally):
            counts = featurized.groupBy(*keys).count().collect()
        rows = sum(r["count"] for r in counts if r.ok)
        errors = sum(r["count"] for r in counts if not r.ok)
        reused_rows = None if reused is None else sum(r["count"] for r in counts if r.reused)
        log.info("%d images with features, %d errors; the CNN ran on %d images (%d model "
                 "builds)", rows, errors, featurizer.counters.images.value,
                 featurizer.counters.builds.value)
        if rows == 0:
            raise InputError(f"none of the {files} files under {config.input} is a readable image")
        duplicates = find_duplicates(featurized)
        if duplicates["files"]:
            log.warning("%d files share their content with another file (%d across labels); "
                        "see run.json", duplicates["files"], duplicates["groups_across_labels"])
        good = featurized.where(F.col("error_kind").isNull())
        with timings.stage("fit_reducer"):
            moments = featurizer.counters.moments
            model = Reducer(config.k, config.variance, config.pca_solver).fit(
                good, backbone.feature_dim, rows, moments=None if moments is None else moments.value
            )
        log.info("PCA keeps k=%d components, %.1f %% of the variance",
                 model.k, 100 * float(model.pca.cumulative[-1]))
        try:
            output.begin()
            with timings.stage("write"):
                output.write_dataset(FEATURES, good, model.projection)
                if errors:
                    output.write_dataset(ERRORS,
                                         featurized.where(F.col("error_kind").isNotNull()))
                else:
                    output.write_empty(ERRORS)
            if reused_rows is not None:
                log.info("--incremental: reused the features of %d unchanged images",
                         reused_rows)
            report = build_report(config, files, rows, errors, model, weights, featurizer,
                                  timings, partitions, threads, duplicates, reused_rows)
            output.write_text(RUN_JSON, dumps_report(report))
            output.commit(config.overwrite or config.incremental)
        except BaseException:
            output.abort()
            raise
    finally:
        if featurized is not None:
            featurized.unpersist()
        featurizer.close()
        apply_settings(spark, previous_settings)
    return RunResult(output.uri, files, rows, errors, model.k,
                     float(model.pca.cumulative[-1]), report)


UNCHANGED_KEY = ["path", "length", "modificationTime"]


def split_unchanged(spark, images, output, weights: Weights, precision: str):
    """--incremental: images whose path, size and time match a row of the previous output's
    features (made with the same weights, image preprocessing and precision) reuse those
    features; the rest is featurized."""
    from pyspark.sql import functions as F

    previous = output.read_dataset(spark, FEATURES)
    if previous is None:
        log.info("--incremental: no finished output at %s yet, featurizing everything",
                 output.uri)
        return images, None
    report = output.read_report()
    if report:
        made_by = report.get("model", {})
        if made_by.get("weights", {}).get("sha256") != weights.sha256:
            log.warning("--incremental: the previous output was made with other weights; "
                        "featurizing everything again")
            return images, None
        if made_by.get("preprocessing") != PREPROCESSING:
            log.warning("--incremental: the previous output was made with another image "
                        "preprocessing (an older fruits_p8); featurizing everything again")
            return images, None
        made_in = precision_of(made_by)
        if made_in != precision:
            log.warning("--incremental: the previous output was made in %s, this run uses %s; "
                        "featurizing everything again", made_in, precision)
            return images, None
    known = previous.select(*UNCHANGED_KEY)
    todo = images.join(F.broadcast(known), UNCHANGED_KEY, "left_anti")
    reused = previous.join(F.broadcast(images.select(*UNCHANGED_KEY)), UNCHANGED_KEY,
                           "left_semi").select(
        "path", "label", "length", "modificationTime", "digest", "features",
        F.lit(None).cast("string").alias("error_kind"), F.lit(None).cast("string").alias("error"),
    )
    return todo, reused


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


def build_report(config: RunConfig, files: int, rows: int, errors: int, model: ReducerModel,
                 weights: Weights, featurizer: Featurizer, timings: Timings, partitions: int,
                 threads: int, duplicates: dict, reused: int | None) -> dict:
    """The run.json content."""
    counts = {
        "files": files,
        "rows_written": rows,
        "errors": errors,
        "cnn_images": featurizer.counters.images.value,
        "model_builds": featurizer.counters.builds.value,
    }
    if reused is not None:
        counts["reused"] = reused
    elif config.incremental:
        counts["reused"] = 0
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
            "requested_k": config.k,
            "requested_variance": config.variance,
            "solver": config.pca_solver,
            "fit_passes": model.passes,
            "constant_features": model.scaler.constant_features,
            "explained_variance": explained_variance_section(model.explained,
                                                             model.pca.cumulative),
        },
        "spark": {"partitions": partitions, "threads_per_task": threads},
        "timings_s": {**timings.stages, "total": timings.total},
        "versions": versions(),
        "config": config.to_dict(),
    }

"""The featurize stage: list the input, load the weights, run the CNN once per file, count.

Every listed file comes out as one row, with features or an error (check_counts).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fruits_p8.config import RunConfig
from fruits_p8.errors import InputError
from fruits_p8.features.backbones import Backbone, WeightsContext, get_backbone, load_weights
from fruits_p8.features.featurizer import Featurizer
from fruits_p8.features.precision import cpu_runs_bfloat16_natively, resolve_precision
from fruits_p8.features.weights import Weights
from fruits_p8.io.images import resolve_input
from fruits_p8.io.listing import CountMismatch, Listing, check_unique
from fruits_p8.io.paths import Location
from fruits_p8.io.reading import Reader, listing_frame
from fruits_p8.io.s3 import download
from fruits_p8.io.storage import storage_for
from fruits_p8.progress import ImageTally, SparkProgress
from fruits_p8.reduce.moments import fit_in_results

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Images:
    """The input of a run: its listing as a frame (no bytes yet) and how the tasks read them."""

    listing: Listing
    frame: object  # LISTING_DDL rows
    reader: Reader


def load_images(spark, config: RunConfig, root: Location | None = None) -> Images:
    """The input files, listed once by the project (every matching name, each once)."""
    settings = config.s3_settings()
    root = root or resolve_input(config.input, settings)
    storage = storage_for(root, settings, spark, config.io)
    listing = storage.list_images(root, config.glob, config.max_file_size,
                                  config.skip_hidden).limited(config.limit)
    check_unique([f.path for f in listing.files])
    if listing.count == 0:
        raise InputError(f"no file matching {config.glob!r} under {config.input}"
                         + _skipped_hint(listing))
    return Images(listing, listing_frame(spark, listing), storage.reader(root))


def _skipped_hint(listing: Listing) -> str:
    skipped = sum(listing.skipped.values())
    return f" ({skipped} skipped as hidden: drop --skip-hidden)" if skipped else ""


def load_backbone_weights(config: RunConfig) -> tuple[Backbone, Weights]:
    """The backbone named in the config and its weights, loaded once on the driver."""
    backbone = get_backbone(config.backbone)
    settings = config.s3_settings()
    weights = load_weights(
        backbone, config.weights,
        WeightsContext(cache_dir=config.cache_dir, seed=config.seed,
                       fetch=lambda uri, folder: download(settings, Location.parse(uri), folder)),
    )
    if not weights.pretrained:
        log.warning("weights are RANDOM (%s): features carry no ImageNet knowledge; "
                    "use this for tests only", weights.source)
    return backbone, weights


def executors_run_bfloat16_natively(spark) -> bool | None:
    """cpu_runs_bfloat16_natively where the CNN runs: this machine for a local master (no
    Spark job), else an executor (on EMR a core node, not the primary node the driver runs
    on)."""
    if spark.sparkContext.master.startswith("local"):
        return cpu_runs_bfloat16_natively()
    return spark.sparkContext.parallelize([0], 1).map(
        lambda _: cpu_runs_bfloat16_natively()).collect()[0]


def choose_precision(requested: str, spark, keep: str | None = None) -> tuple[str, str]:
    """The precision this run computes in, and why (resolve_precision): `auto` follows the
    executors' CPU, or `keep`: the precision of the features a --fitted basis or the output
    --incremental extends were made in (features must match to be used together)."""
    if requested == "auto" and keep is not None:
        return keep, "auto: the precision of the features this run goes with (--fitted, " \
            "--incremental)"
    if requested == "float32":
        return resolve_precision(requested, None)
    native = executors_run_bfloat16_natively(spark)
    if requested == "bfloat16" and native is False:
        log.warning("--precision bfloat16: the executors' CPU has no AVX512-BF16 or AMX, so "
                    "bfloat16 is emulated there and slower than float32")
    return resolve_precision(requested, native)


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


@contextmanager
def session_settings(spark, settings: dict[str, str | None]) -> Iterator[None]:
    """Session settings for the length of a stage, put back afterwards (None: unset)."""
    before = {key: spark.conf.get(key, None) for key in settings}
    _apply(spark, settings)
    try:
        yield
    finally:
        _apply(spark, before)


def _apply(spark, settings: dict[str, str | None]) -> None:
    for key, value in settings.items():
        if value is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, value)


def spread(frame, partitions: int):
    """`partitions` tasks: merge partitions without a shuffle when there are enough of them,
    else shuffle the listing (paths and sizes only) to spread it."""
    if frame.rdd.getNumPartitions() >= partitions:
        return frame.coalesce(partitions)
    return frame.repartition(partitions)


@dataclass(frozen=True)
class Layout:
    """How the CNN stage runs: its tasks, the threads of each, where they tell progress."""

    partitions: int
    threads: int
    tally: ImageTally


@contextmanager
def featurizing(config: RunConfig, spark, backbone: Backbone, weights: Weights, files: int,
                sum_moments: bool) -> Iterator[tuple[Featurizer, Layout]]:
    """The Featurizer of a run and how its tasks are laid out, for the length of the stage:
    its session settings applied, its broadcast weights freed afterwards. Its tasks sum the
    feature moments only when this run fits (`sum_moments`)."""
    threads = config.threads_per_task or int(spark.conf.get("spark.task.cpus", "1"))
    partitions = config.partitions or default_partitions(spark, files, config.batch_size)
    tally = ImageTally(spark.sparkContext.getConf().get("spark.driver.host", "127.0.0.1"))
    featurizer = Featurizer(backbone, weights, config.batch_size, threads,
                            sum_moments=sum_moments and moments_fit_in_results(
                                spark, partitions, backbone),
                            precision=config.precision, tally=tally.address,
                            image_size=config.image_size)
    try:
        with session_settings(spark, featurizer.session_settings()):
            yield featurizer, Layout(partitions, threads, tally)
    finally:
        featurizer.close()


@dataclass
class Featurized:
    """The featurize stage's result: every row (features or error), persisted, and counts."""

    frame: object
    rows: int
    errors: int
    reused: int | None
    paths: int = 0  # distinct paths among the rows: rows + errors when each file is once

    @property
    def ok(self):
        """The rows with features."""
        return self.frame.where("error_kind is null")

    @property
    def failed(self):
        """The error rows."""
        return self.frame.where("error_kind is not null")


def featurize(spark, featurizer: Featurizer, layout: Layout, todo, reader: Reader, reused,
              files: int, config: RunConfig) -> Featurized:
    """Read and run the CNN over the listed files `todo` (in the featurizer's tasks), add the
    `reused` rows, persist the lot and count it: one Spark job, with progress."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    tally = layout.tally
    frame = featurizer.transform(spread(todo, layout.partitions), reader.batches)
    if reused is not None:
        frame = frame.withColumn("reused", F.lit(False)).unionByName(
            reused.withColumn("reused", F.lit(True)))
    else:
        frame = frame.withColumn("reused", F.lit(False))
    frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
    to_featurize = files if reused is None else None  # unknown before the job
    ok = F.col("error_kind").isNull()
    with tally, SparkProgress(spark.sparkContext, "featurize", to_featurize, tally=tally):
        counts = frame.agg(F.count(F.lit(1)).alias("total"),
                           F.sum(ok.cast("long")).alias("ok"),
                           F.sum(F.col("reused").cast("long")).alias("reused"),
                           F.countDistinct("path").alias("paths")).first()
    rows, errors = counts.ok or 0, counts.total - (counts.ok or 0)
    reused_rows = None if reused is None else counts.reused or 0
    log.info("%d images with features, %d errors; the CNN ran on %d images (%d model "
             "builds)", rows, errors, featurizer.counters.images.value,
             featurizer.counters.builds.value)
    if reused_rows is not None:
        log.info("--incremental: reused the features of %d unchanged images", reused_rows)
    if rows == 0:
        frame.unpersist()
        raise InputError(f"none of the {files} files under {config.input} is a readable image")
    return Featurized(frame, rows, errors, reused_rows, counts.paths)


def check_counts(listing: Listing, featurized: Featurized) -> None:
    """Every listed file is exactly one row, with features or an error: checked in every run,
    before anything is committed."""
    if featurized.rows + featurized.errors == listing.count == featurized.paths:
        return
    raise CountMismatch(
        f"{listing.count} files were listed but the run made {featurized.rows} feature rows "
        f"and {featurized.errors} error rows for {featurized.paths} distinct paths; nothing "
        "was written: please report this")


def listing_note(listing: Listing) -> str:
    """What the listing left out, for the log line that counts the files."""
    notes = [f"{n} {why}" for why, n in listing.skipped.items()]
    if listing.links_not_followed:
        notes.append(f"{listing.links_not_followed} links to folders listed already")
    return f" (skipped: {', '.join(notes)})" if notes else ""


def unlabelled_note(listing: Listing) -> str | None:
    """A warning when files have no <Label> folder: they are featurized with an empty label,
    which serves --fitted and a trained classifier but not `train`."""
    n = listing.unlabelled
    if not n:
        return None
    if n == listing.count:
        return (f"the input has no <Label> folders: the {n} files get an empty label "
                "(fine for --fitted and a trained classifier; `train` needs <Label>/ folders)")
    return (f"{n} of {listing.count} files lie directly under the input folder, not in a "
            "<Label> folder: their label is empty")

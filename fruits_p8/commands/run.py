"""`fruits-p8 run`, `report`, `sample` and `models`: the commands a user starts with."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from fruits_p8.commands.common import (
    Formatter,
    add_s3_options,
    fraction,
    positive_int,
    s3_settings,
    session,
)
from fruits_p8.commands.summary import summary
from fruits_p8.config import (
    DEFAULT_BACKBONE,
    DEFAULT_BATCH_SIZE,
    DEFAULT_K,
    EMBEDDED_SAMPLE,
    MAX_POINTS,
    RunConfig,
    default_cache_dir,
)
from fruits_p8.errors import InputError, UsageError
from fruits_p8.features.backbones import BACKBONES
from fruits_p8.features.precision import DEFAULT_PRECISION, PRECISIONS
from fruits_p8.io.listing import DEFAULT_MAX_FILE_SIZE

log = logging.getLogger("fruits_p8")

DEFAULT_SAMPLE = "data/sample"
EMBEDDED_SAMPLE_TEXT = ("360 real Fruits 360 photos, 18 labels, shipped with fruits_p8 "
                        "(fruits_p8/resources/fruits-360-sample/Test)")
DEFAULT_OUTPUT = "output/features"


def add_commands(sub) -> None:
    """run, report and sample."""
    run = sub.add_parser(
        "run", formatter_class=Formatter,
        help="featurize images, standardise, PCA, write Parquet + run.json",
        description="Read every image under --input (recursively, names matching --glob), label "
        "it by its folder, compute CNN features once per image, standardise them, reduce them "
        "with PCA and write Parquet (path, label, features, pca), an errors table and run.json "
        f"to --output. Without --input: {EMBEDDED_SAMPLE_TEXT}.",
    )
    io = run.add_argument_group("input and output")
    io.add_argument("--input", default=None,
                    help=f"folder of <Label>/<image> files: a path or file:/s3:// URI "
                    f"[default: {EMBEDDED_SAMPLE_TEXT}]")
    io.add_argument("--output", default=DEFAULT_OUTPUT,
                    help="output folder (path or URI), outside the input; a finished output "
                    "of fruits_p8 there is only replaced with --overwrite or --incremental, a "
                    "folder holding other files never; one run at a time per output")
    io.add_argument("--overwrite", action="store_true",
                    help="replace an existing output made by fruits_p8 (atomically, once the "
                    "new one is complete)")
    io.add_argument("--incremental", action="store_true",
                    help="for a growing collection: reuse the features of images unchanged "
                    "since the finished output at --output (same path, size and time), "
                    "featurize only the new or changed ones, project all with that output's "
                    "scaler and PCA (its stored vectors do not move; see --refit), and replace "
                    "that output")
    io.add_argument("--glob", default="*.jpg",
                    help="file-name pattern of the images (* ? [a-z] [!a] {jpg,png}, \\ "
                    "escapes; case-sensitive); every matching file counts, hidden names too")
    io.add_argument("--skip-hidden", action="store_true",
                    help="leave out files and folders whose name starts with '.' (counted as "
                    "skipped in run.json)")
    io.add_argument("--max-file-size", type=byte_size, default=DEFAULT_MAX_FILE_SIZE,
                    metavar="BYTES",
                    help="a larger file is an error row, never read (e.g. 500M, 2G) "
                    f"[default: {DEFAULT_MAX_FILE_SIZE // 2**20}M]")
    io.add_argument("--report", action="store_true",
                    help="then write the HTML report into the output (see `fruits-p8 report`)")
    io.add_argument("--no-data-quality", action="store_true",
                    help="with --report: skip the search for suspected mislabels and "
                    "near-duplicates (report/data_quality.json)")
    io.add_argument("--limit", type=positive_int, default=None,
                    help="process only the first N files in path order (a quick look)")
    model = run.add_argument_group("backbone (with --fitted: the fitted basis's by default)")
    model.add_argument("--backbone", "--model", dest="backbone", default=None,
                       choices=list(BACKBONES),
                       help="the CNN that makes the features (`fruits-p8 models` lists them; "
                       f"--model is the old name) [default: {DEFAULT_BACKBONE}]")
    model.add_argument("--weights", default=None,
                       help="auto (the backbone's default: package for efficientnet_lite0/1/2, "
                       "imagenet for mobilenet_v2), imagenet (Keras download), package "
                       "(shipped by pip), random (seeded; tests only), a local file, or "
                       "s3://bucket/key "
                       "[default: auto]")
    model.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE,
                       help="images per CNN call")
    model.add_argument("--precision", default=None, choices=list(PRECISIONS),
                       help=f"[default: {DEFAULT_PRECISION}] the CNN's arithmetic: float32 "
                       "gives the reference features; bfloat16 moves them slightly and runs "
                       "the CNN much faster where the CPU has native bfloat16 (AVX512-BF16, "
                       "AMX), slower elsewhere; auto picks bfloat16 only where it is native "
                       "(with --fitted: the basis's own); the choice and why are in run.json "
                       "(docs/performance.md)")
    model.add_argument("--image-size", type=positive_int, default=None, metavar="PIXELS",
                       help="the CNN's input side: photos are resized to it (100 keeps Fruits "
                       "360's own 100x100; the CNN runs several times faster at smaller sides) "
                       "[default: the backbone's own: 224, 240 for efficientnet_lite1, 260 for "
                       "efficientnet_lite2]")
    model.add_argument("--seed", type=int, default=0, help="seed for --weights random")
    pca = run.add_argument_group("standardise + PCA (--k or --variance, or --fitted)")
    pca.add_argument("--fitted", default=None, metavar="RUN_OUTPUT",
                     help="apply the scaler + PCA fitted by an earlier run (its output folder, "
                     "path or s3://; it holds model/) instead of fitting: train on one folder, "
                     "then project others into the same basis. The images are featurized with "
                     "that run's backbone, weights and precision")
    pca.add_argument("--refit", action="store_true",
                     help="with --incremental: fit scaler and PCA anew on all the images "
                     "(every stored pca vector changes)")
    reduce = pca.add_mutually_exclusive_group()
    reduce.add_argument("--k", type=positive_int, default=None,
                        help=f"number of PCA components [default: {DEFAULT_K}]")
    reduce.add_argument("--variance", type=fraction, default=None,
                        help="keep the fewest components explaining this share of the variance, "
                        "e.g. 0.95")
    pca.add_argument("--pca-solver", default="gram", choices=["gram", "spark"],
                     help="gram: moments summed while featurizing + numpy eigen-solve (fast); "
                     "spark: Spark ML StandardScaler + PCA fits (reference, slower); same model "
                     "either way")
    spark = run.add_argument_group("Spark")
    spark.add_argument("--master", default=None,
                       help="Spark master [default: spark-submit's, else local[*,4]: all cores, "
                       "4 attempts per task]")
    spark.add_argument("--partitions", type=positive_int, default=None,
                       help="tasks for the CNN stage [default: a multiple of the cores, "
                       ">= 2000 images per task, at most 4 per core]")
    spark.add_argument("--threads-per-task", type=positive_int, default=None,
                       help="CPU threads each CNN task uses (sets spark.task.cpus) [default: 1]")
    spark.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                       help="extra Spark setting; repeatable")
    add_s3_options(run, transport=True)
    run.add_argument("--cache-dir", type=Path, default=None,
                     help="cache for converted weights [default: $FRUITS_P8_CACHE or "
                     "~/.cache/fruits_p8]")
    run.set_defaults(handler=cmd_run)

    report = sub.add_parser(
        "report", formatter_class=Formatter,
        help="HTML report and PNGs of a finished output, with a quality check",
        description="Write OUTPUT/report/index.html (self-contained) and its PNGs: explained "
        "variance with k marked, a 2-D PCA scatter by label, images per label, errors, time "
        "per stage, model and weights; plus a quality check: logistic regression (numpy) "
        "trained on 80 % of the images (split by a hash of their content) and tested on the "
        "rest, on PCA components (scaler + PCA fitted on the training images only) and on the "
        "raw features, overall and per label, and Training/ against Test/ where the images "
        "sit in such folders (report/quality.json); suspected mislabels and near-duplicates "
        "(report/data_quality.json). Its counts and seconds are added to run.json.",
    )
    report.add_argument("output", metavar="OUTPUT", help="a finished run output (path or s3://)")
    report.add_argument("--max-points", type=positive_int, default=MAX_POINTS,
                        help="images drawn in the PCA scatter")
    report.add_argument("--no-data-quality", action="store_true",
                        help="skip the search for suspected mislabels and near-duplicates")
    report.add_argument("--master", default=None, help="Spark master [default: local[*,4]]")
    add_s3_options(report, transport=True)
    report.set_defaults(handler=cmd_report)

    sample = sub.add_parser(
        "sample", formatter_class=Formatter,
        help="write drawn fruit-like images in the Fruits 360 layout (any number)",
        description="Write deterministic fruit-like 100x100 JPEGs as "
        "<output>/<Training|Test>/<Label>/<n>_100.jpg: drawn, not photographed; for sizes "
        "and layouts the real photos do not give.",
    )
    sample.add_argument("--output", default=DEFAULT_SAMPLE, help="where to write the images")
    sample.add_argument("--per-label", type=positive_int, default=None,
                        help="images per label in each split [default: 40 Training, 20 Test]")
    sample.add_argument("--seed", type=int, default=0, help="changes every image")
    sample.set_defaults(handler=cmd_sample)


def add_models_command(sub) -> None:
    """models: what the backbone registry holds."""
    models = sub.add_parser("models", help="list the CNN backbones and their weights sources")
    models.set_defaults(handler=cmd_models)


def _spark_conf(pairs: Sequence[str], threads: int | None) -> dict[str, str]:
    conf: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--conf expects KEY=VALUE, got {pair!r}")
        conf[key.strip()] = value.strip()
    if threads:
        conf["spark.task.cpus"] = str(threads)
    return conf


def run_config(args: argparse.Namespace, input_path: str) -> RunConfig:
    """The RunConfig that `fruits-p8 run`'s options describe; with --fitted, the backbone,
    weights and precision default to the fitted model's."""
    made_by = None
    if args.fitted is not None:
        if args.k is not None or args.variance is not None:
            raise UsageError(f"--fitted {args.fitted} brings its own k: drop --k and --variance")
        from fruits_p8.io.models import read_fitted

        made_by = read_fitted(args.fitted, s3_settings(args)).made_by
    k = args.k if args.k is not None or args.variance is not None else DEFAULT_K
    return RunConfig(
        input=input_path,
        output=args.output,
        glob=args.glob,
        backbone=args.backbone or (made_by.backbone if made_by else DEFAULT_BACKBONE),
        weights=args.weights or (made_by.weights if made_by else "auto"),
        k=None if made_by else k,
        variance=args.variance,
        fitted=args.fitted,
        refit=args.refit,
        pca_solver=args.pca_solver,
        batch_size=args.batch_size,
        precision=args.precision or (made_by.precision if made_by else DEFAULT_PRECISION),
        partitions=args.partitions,
        limit=args.limit,
        master=args.master,
        threads_per_task=args.threads_per_task,
        overwrite=args.overwrite,
        incremental=args.incremental,
        seed=args.seed,
        cache_dir=args.cache_dir or default_cache_dir(os.environ),
        region=args.region,
        endpoint_url=args.endpoint_url,
        io=args.io,
        spark_conf=_spark_conf(args.conf, args.threads_per_task),
        max_file_size=args.max_file_size,
        skip_hidden=args.skip_hidden,
        image_size=args.image_size,
    )


_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}


def byte_size(text: str) -> int:
    """'500M' -> 524288000: a size in bytes, with an optional K, M or G (powers of 1024)."""
    number, unit = text.strip(), ""
    if number[-1:].upper() in ("K", "M", "G"):
        number, unit = number[:-1], number[-1].upper()
    try:
        value = int(float(number) * _UNITS[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size such as 500M, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive size, got {text!r}")
    return value


def cmd_run(args: argparse.Namespace) -> int:
    from fruits_p8 import pipeline

    input_path = args.input
    if input_path is None:
        input_path = str(EMBEDDED_SAMPLE)
        log.info("no --input: using the %s", EMBEDDED_SAMPLE_TEXT)
    config = run_config(args, input_path)
    if not args.report:
        print(summary(pipeline.run(config, spark=args.spark, environ=os.environ)))
        return 0
    plan = pipeline.preflight(config)  # user mistakes before Spark starts
    with session(args, config.master, config.cache_dir, config.spark_conf) as spark:
        print(summary(pipeline.run(config, spark=spark, plan=plan)))
        print(_report(spark, config.output, s3_settings(args), config.io, MAX_POINTS,
                      not args.no_data_quality))
    return 0


def _report(spark, output_uri: str, settings, io_mode: str, max_points: int,
            data_quality: bool = True) -> str:
    from fruits_p8.io.output import open_output
    from fruits_p8.io.paths import Location
    from fruits_p8.report import make_report

    output = open_output(Location.parse(output_uri), settings, io_mode)
    output.settle()  # a commit that a crash interrupted is finished first, as `run` does
    if output.state() != "finished":
        output.check(replace=True)  # a folder not ours says so
        raise InputError(f"no finished run output at {output.uri} (run `fruits-p8 run` first)")
    with output.leased(replace=True):
        result = make_report(spark, output, max_points, data_quality=data_quality,
                             settings=settings)
    lines = [f"  report    {result.location}  ({result.timings_s['total']:.1f} s)"]
    if result.quality:
        pca, raw = result.quality["pca"], result.quality["raw"]
        lines.append(f"  quality   logistic regression accuracy {pca['overall']:.1%} on PCA, "
                     f"{raw['overall']:.1%} on raw features ({pca['test_rows']} test images)")
    if result.quality and "training_test_pca" in result.quality:
        pca, raw = result.quality["training_test_pca"], result.quality["training_test_raw"]
        lines.append(f"  quality   trained on Training/, tested on Test/: {pca['overall']:.1%} "
                     f"on PCA, {raw['overall']:.1%} on raw features")
    if result.data_quality:
        counts = result.data_quality
        lines.append(f"  data      {counts['suspected_mislabels']} suspected mislabels, "
                     f"{counts.get('look_alike_pairs', 0)} look-alike label pairs, "
                     f"{counts['near_duplicate_groups']} near-duplicate groups "
                     f"({counts['groups_across_labels']} across labels, "
                     f"{counts['groups_across_splits']} across splits): "
                     "report/data_quality.json")
    return "\n".join(lines)


def cmd_report(args: argparse.Namespace) -> int:
    with session(args, args.master, default_cache_dir(os.environ)) as spark:
        print(_report(spark, args.output, s3_settings(args), args.io, args.max_points,
                      not args.no_data_quality))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from fruits_p8.sample import SPLITS, make_sample

    splits = {name: args.per_label for name in SPLITS} if args.per_label else None
    count = make_sample(Path(args.output), splits=splits, seed=args.seed)
    print(f"wrote {count} images under {args.output}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from fruits_p8.features.backbones import BACKBONES

    for backbone in BACKBONES.values():
        print(f"{backbone.name:20s} {backbone.description}; {backbone.feature_dim} features, "
              f"default weights: {backbone.default_weights}")
    return 0

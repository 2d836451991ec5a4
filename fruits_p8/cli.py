"""Command line: `fruits-p8 run|sample|models ...`; user mistakes end in one line, not a trace."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

from fruits_p8 import __version__
from fruits_p8.config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_K,
    DEFAULT_MODEL,
    DEFAULT_REGION,
    EMBEDDED_SAMPLE,
    RunConfig,
    default_cache_dir,
)
from fruits_p8.errors import InputError, StorageError, UsageError, UserError
from fruits_p8.features.precision import DEFAULT_PRECISION, PRECISIONS

log = logging.getLogger("fruits_p8")

DEFAULT_SAMPLE = "data/sample"
EMBEDDED_SAMPLE_TEXT = ("360 real Fruits 360 photos, 18 labels, shipped with fruits_p8 "
                        "(fruits_p8/resources/fruits-360-sample/Test)")
DEFAULT_OUTPUT = "output/features"


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows a default only where it says something ('[default: ...]' in a help text wins)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "[default" in text or action.default in (None, False, argparse.SUPPRESS, []):
            return text
        return f"{text} [default: %(default)s]"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fruits-p8",
        description="Turn a Fruits-360-style image collection into CNN features reduced by PCA, "
        "on Spark (local, or AWS EMR).",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="how much to log")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run", formatter_class=_Formatter,
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
    io.add_argument("--glob", default="*.jpg", help="file-name pattern of the images")
    io.add_argument("--report", action="store_true",
                    help="then write the HTML report into the output (see `fruits-p8 report`)")
    io.add_argument("--no-data-quality", action="store_true",
                    help="with --report: skip the search for suspected mislabels and "
                    "near-duplicates (report/data_quality.json)")
    io.add_argument("--limit", type=_positive_int, default=None,
                    help="process only the first N files in path order (a quick look)")
    model = run.add_argument_group("model (with --fitted: the fitted model's by default)")
    model.add_argument("--model", default=None,
                       choices=["efficientnet_lite0", "mobilenet_v2"],
                       help=f"CNN backbone (both give 1280 features) [default: {DEFAULT_MODEL}]")
    model.add_argument("--weights", default=None,
                       help="auto (the model's default: package for efficientnet_lite0, imagenet "
                       "for mobilenet_v2), imagenet (Keras download), package (shipped by pip), "
                       "random (seeded; tests only), a local file, or s3://bucket/key "
                       "[default: auto]")
    model.add_argument("--batch-size", type=_positive_int, default=DEFAULT_BATCH_SIZE,
                       help="images per CNN call")
    model.add_argument("--precision", default=None, choices=list(PRECISIONS),
                       help=f"[default: {DEFAULT_PRECISION}] the CNN's arithmetic: float32 "
                       "gives the reference features; "
                       "bfloat16 moves them by ~3 %% and can run the CNN much faster where the "
                       "CPU has native bfloat16 (1.7x on AMD Zen 5), but slower elsewhere: "
                       "check with make bench")
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
    reduce.add_argument("--k", type=_positive_int, default=None,
                        help=f"number of PCA components [default: {DEFAULT_K}]")
    reduce.add_argument("--variance", type=_fraction, default=None,
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
    spark.add_argument("--partitions", type=_positive_int, default=None,
                       help="tasks for the CNN stage [default: a multiple of the cores, "
                       ">= 2000 images per task, at most 4 per core]")
    spark.add_argument("--threads-per-task", type=_positive_int, default=None,
                       help="CPU threads each CNN task uses (sets spark.task.cpus) [default: 1]")
    spark.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                       help="extra Spark setting; repeatable")
    _add_s3_options(run, transport=True)
    run.add_argument("--cache-dir", type=Path, default=None,
                     help="cache for converted weights [default: $FRUITS_P8_CACHE or "
                     "~/.cache/fruits_p8]")
    run.set_defaults(handler=cmd_run)

    report = sub.add_parser(
        "report", formatter_class=_Formatter,
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
    report.add_argument("--max-points", type=_positive_int, default=2000,
                        help="images drawn in the PCA scatter")
    report.add_argument("--no-data-quality", action="store_true",
                        help="skip the search for suspected mislabels and near-duplicates")
    report.add_argument("--master", default=None, help="Spark master [default: local[*,4]]")
    _add_s3_options(report, transport=True)
    report.set_defaults(handler=cmd_report)

    sample = sub.add_parser(
        "sample", formatter_class=_Formatter,
        help="write drawn fruit-like images in the Fruits 360 layout (any number)",
        description="Write deterministic fruit-like 100x100 JPEGs as "
        "<output>/<Training|Test>/<Label>/<n>_100.jpg: drawn, not photographed; for sizes "
        "and layouts the real photos do not give.",
    )
    sample.add_argument("--output", default=DEFAULT_SAMPLE, help="where to write the images")
    sample.add_argument("--per-label", type=_positive_int, default=None,
                        help="images per label in each split [default: 40 Training, 20 Test]")
    sample.add_argument("--seed", type=int, default=0, help="changes every image")
    sample.set_defaults(handler=cmd_sample)

    upload = sub.add_parser(
        "upload", formatter_class=_Formatter,
        help="upload a local image tree to s3:// (parallel, resumable, skips unchanged)",
        description="Upload every file under LOCAL_DIR to s3://BUCKET/PREFIX, keeping the "
        "folder layout. Objects already there with the same size and MD5 are skipped, so a "
        "rerun after an interruption sends only what is missing.",
    )
    upload.add_argument("local_dir", type=Path, metavar="LOCAL_DIR")
    upload.add_argument("uri", metavar="S3_URI", help="s3://bucket/prefix")
    upload.add_argument("--create-bucket", action="store_true",
                        help="create the bucket (in --region, encrypted, public access "
                        "blocked) if it does not exist")
    upload.add_argument("--glob", default="*", help="only files whose name matches")
    upload.add_argument("--workers", type=_positive_int, default=16,
                        help="parallel uploads")
    _add_s3_options(upload)
    upload.set_defaults(handler=cmd_upload)

    ls = sub.add_parser("ls", formatter_class=_Formatter,
                        help="summarise the images under an s3:// URI (per label)")
    ls.add_argument("uri", metavar="S3_URI", help="s3://bucket/prefix")
    ls.add_argument("--glob", default="*.jpg", help="what counts as an image")
    _add_s3_options(ls)
    ls.set_defaults(handler=cmd_ls)

    _add_emr_commands(sub)

    models = sub.add_parser("models", help="list the CNN backbones and their weights sources")
    models.set_defaults(handler=cmd_models)
    return parser


def _add_emr_commands(sub) -> None:
    emr = sub.add_parser(
        "emr", formatter_class=_Formatter, help="run the pipeline on an AWS EMR cluster",
        description="Plan, run and inspect the pipeline on AWS EMR (EMR 7.1+: Spark 3.5, "
        "Python 3.11). `plan` prints the exact requests and the estimated cost without "
        "calling AWS; `run` uploads the artifacts, creates the cluster with its steps, waits, "
        "reports and lets the cluster terminate. Not checked by the tool: the region needs a "
        "default VPC (or --subnet-id), and your identity the permission "
        "elasticmapreduce:PutAutoTerminationPolicy (for the idle timeout).",
    )
    commands = emr.add_subparsers(dest="emr_command", metavar="EMR_COMMAND", required=True)
    for name, handler, text in (("plan", cmd_emr_plan, "print the requests and cost; no AWS"),
                                ("run", cmd_emr_run, "create the cluster, run, wait, report")):
        p = commands.add_parser(name, formatter_class=_Formatter, help=text, description=text)
        p.add_argument("--bucket", required=True,
                       help="bucket for artifacts and logs (s3://BUCKET/PREFIX/...)")
        p.add_argument("--input", required=True, help="s3:// folder of <Label>/<image>")
        p.add_argument("--output", required=True, help="s3:// output folder")
        p.add_argument("--prefix", default="fruits_p8", help="key prefix in the bucket")
        p.add_argument("--region", default=DEFAULT_REGION, help="AWS region of the cluster")
        p.add_argument("--release", default=None,
                       help="EMR release label, emr-7.1.0 or later [default: emr-7.9.0, "
                       "whose PySpark the tests pin]")
        p.add_argument("--instance-type", default=None,
                       help="instance type of every node [default: m5.xlarge]")
        p.add_argument("--core-instance-type", default=None, help="instance type of core nodes")
        p.add_argument("--core-count", type=_positive_int, default=None,
                       help="core nodes [default: 2]")
        p.add_argument("--service-role", default=None, help="[default: EMR_DefaultRole]")
        p.add_argument("--instance-profile", default=None,
                       help="EC2 instance profile [default: EMR_EC2_DefaultRole]")
        p.add_argument("--subnet-id", default=None,
                       help="VPC subnet [default: the region's default VPC]; a private subnet "
                       "needs an S3 gateway endpoint, and --wheelhouse without a NAT gateway")
        p.add_argument("--key-name", default=None, help="EC2 key pair for SSH")
        p.add_argument("--idle-timeout", type=_positive_int, default=None,
                       help="seconds idle before auto-termination [default: 3600]")
        p.add_argument("--log-uri", default=None,
                       help="[default: s3://BUCKET/PREFIX/logs/]")
        p.add_argument("--weights", default=None,
                       help="weights for the run: s3://... or a local file (uploaded with the "
                       "artifacts), read by the driver [default: the model's default]")
        p.add_argument("--wheelhouse", action="store_true",
                       help="download every wheel the nodes install (CPython 3.11, manylinux "
                       "x86_64) and ship them with the artifacts: the bootstrap then needs no "
                       "PyPI (private subnets without a NAT gateway)")
        p.add_argument("--expected-minutes", type=float, default=20.0,
                       help="run length assumed by the cost estimate")
        p.add_argument("--emr-dir", type=Path, default=None,
                       help="folder of EMR definitions to use instead of the package's "
                       "(fruits_p8/emr/definitions/)")
        if name == "run":
            p.add_argument("--cluster-id", default=None,
                           help="add the steps to this running cluster instead of creating "
                           "one: only a cluster created by this same version (same artifacts); "
                           "a failed step leaves it running")
            p.add_argument("--no-wait", action="store_true",
                           help="return once the cluster is requested")
        p.add_argument("run_args", nargs="*", metavar="-- RUN_ARGS",
                       help="extra `fruits-p8 run` options after --, e.g. -- --k 100")
        p.set_defaults(handler=handler)
    for name, handler, text in (("status", cmd_emr_status, "state of a cluster and its steps"),
                                ("logs", cmd_emr_logs,
                                 "where a cluster's logs are: steps, and each node's bootstrap"),
                                ("terminate", cmd_emr_terminate, "terminate a cluster")):
        p = commands.add_parser(name, help=text, description=text)
        p.add_argument("cluster_id", metavar="CLUSTER_ID")
        p.add_argument("--region", default=DEFAULT_REGION, help="AWS region of the cluster")
        p.set_defaults(handler=handler)


def _emr_plan(args: argparse.Namespace):
    from fruits_p8.emr import plan
    from fruits_p8.io.paths import is_s3

    weights = args.weights
    weights_file = None
    run_args = list(args.run_args)
    if weights:
        if is_s3(weights):
            run_args += ["--weights", weights]
        else:
            weights_file = str(Path(weights))
            if not Path(weights).is_file():
                raise UsageError(f"--weights file not found: {weights}")
    settings = plan.EmrSettings(
        bucket=args.bucket, input=args.input, output=args.output, prefix=args.prefix,
        region=args.region, release=args.release, instance_type=args.instance_type,
        core_instance_type=args.core_instance_type, core_count=args.core_count,
        service_role=args.service_role, instance_profile=args.instance_profile,
        subnet_id=args.subnet_id, key_name=args.key_name, idle_timeout_s=args.idle_timeout,
        log_uri=args.log_uri, run_args=tuple(run_args), weights_file=weights_file,
    )
    templates = plan.load_templates(args.emr_dir or plan.default_emr_dir())
    artifacts = plan.artifacts_id(bootstrap=templates.bootstrap)
    return settings, templates, artifacts


def _warn_precision(settings, request: dict, prices: dict) -> None:
    from fruits_p8.emr.plan import bfloat16_warning

    core = next(g for g in request["Instances"]["InstanceGroups"]
                if g["InstanceRole"] == "CORE")
    warning = bfloat16_warning(settings.run_args, core["InstanceType"], prices)
    if warning:
        log.warning("%s", warning)


def cmd_emr_plan(args: argparse.Namespace) -> int:
    import json

    from fruits_p8.emr import plan

    settings, templates, artifacts = _emr_plan(args)
    request = plan.build_run_job_flow(templates, settings, "RUN_ID", artifacts)
    _warn_precision(settings, request, templates.prices)
    cost = plan.estimate_cost(request, templates.prices, args.expected_minutes / 60)
    print(f"# artifacts to upload to {plan.artifacts_uri(settings, artifacts)}/ "
          "(built by `emr run`):")
    for name in ("fruits_p8-<version>-py3-none-any.whl", "constraints.txt", "requirements.txt",
                 "bootstrap.sh", "run.py"):
        print(f"#   {name}")
    if settings.weights_file:
        print(f"#   weights/{Path(settings.weights_file).name}")
    if args.wheelhouse:
        print("#   wheelhouse/*.whl (every wheel of requirements.txt, for CPython 3.11 "
              "manylinux x86_64)")
    print(f"# estimated cost: {cost.describe()}")
    print("# RunJobFlow request (RUN_ID is a timestamp at run time):")
    print(json.dumps(request, indent=2))
    print("# the same with the AWS CLI:")
    print(plan.aws_cli_command(request))
    return 0


def _aws(service: str, region: str):
    import boto3

    return boto3.session.Session(region_name=region).client(service)


def cmd_emr_run(args: argparse.Namespace) -> int:
    import tempfile
    from datetime import UTC, datetime

    from fruits_p8.emr import artifacts as artifact_files
    from fruits_p8.emr import plan, runner
    from fruits_p8.io.s3 import S3Settings, storage_error

    settings, templates, artifacts = _emr_plan(args)
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    request = plan.build_run_job_flow(templates, settings, run_id, artifacts)
    _warn_precision(settings, request, templates.prices)
    cost = plan.estimate_cost(request, templates.prices, args.expected_minutes / 60)
    emr, s3 = _aws("emr", settings.region), _aws("s3", settings.region)
    if args.cluster_id:
        runner.check_reusable(emr, args.cluster_id, plan.bootstrap_path(settings, artifacts))
    try:
        if not args.cluster_id:
            runner.check_roles(_aws("iam", settings.region), request["ServiceRole"],
                               request["JobFlowRole"])
        with tempfile.TemporaryDirectory() as scratch:
            wheels = None
            if args.wheelhouse:
                log.info("downloading the wheelhouse (CPython 3.11, manylinux x86_64)")
                wheels = artifact_files.build_wheelhouse(
                    Path(scratch) / "wheelhouse", artifact_files.requirements(),
                    artifact_files.constraints())
            log.info("building the wheel and uploading the artifacts (%s)", artifacts)
            files = artifact_files.collect(
                templates.bootstrap,
                Path(settings.weights_file) if settings.weights_file else None, wheels)
            where = runner.upload_artifacts(
                s3, settings.bucket, f"{settings.prefix.strip('/')}/artifacts/{artifacts}", files)
        log.info("artifacts in %s", where)
    except Exception as exc:
        if isinstance(exc, UserError):
            raise
        raise storage_error(exc, f"s3://{settings.bucket}",
                            S3Settings(region=settings.region)) from None
    if args.cluster_id:
        cluster_id = args.cluster_id
        steps = plan.build_steps(templates, settings, run_id, artifacts, added=True)
        step_ids = runner.add_steps(emr, cluster_id, steps)
        print(f"added {len(step_ids)} step(s) to {cluster_id} (a failed step leaves it running)")
    else:
        print(f"estimated cost: {cost.describe()}")
        cluster_id, step_ids = runner.start_cluster(emr, request)
        print(f"cluster {cluster_id} requested ({request['ReleaseLabel']}, "
              f"{settings.region}); it terminates by itself after its steps")
    if args.no_wait:
        print(f"follow it with: fruits-p8 emr status {cluster_id} --region {settings.region}")
        return 0
    watch = runner.ClusterWatch(emr, say=lambda line: log.info("%s", line))
    outcome = watch.wait(cluster_id, step_ids, own_cluster=not args.cluster_id)
    if not outcome.succeeded:
        raise runner.explain_failure(outcome)
    print(f"done: features in {settings.output} (run.json beside them)")
    print(f"cost: {runner.describe_cost(cost, outcome)}")
    return 0


def _on_cluster(args: argparse.Namespace, call):
    """`call(emr)` for the cluster of `args`, AWS errors as one line."""
    from fruits_p8.emr.runner import aws_error

    try:
        return call(_aws("emr", args.region))
    except UserError:
        raise
    except Exception as exc:
        raise aws_error(exc, f"cluster {args.cluster_id}") from None


def cmd_emr_status(args: argparse.Namespace) -> int:
    from fruits_p8.emr.runner import status_text

    print(_on_cluster(args, lambda emr: status_text(emr, args.cluster_id)))
    return 0


def cmd_emr_logs(args: argparse.Namespace) -> int:
    from fruits_p8.emr.runner import log_locations

    places = _on_cluster(args, lambda emr: log_locations(emr, args.cluster_id))
    if not places:
        print(f"{args.cluster_id} has no LogUri: its logs stay on the nodes")
        return 0
    print("\n".join(places))
    return 0


def cmd_emr_terminate(args: argparse.Namespace) -> int:
    _on_cluster(args, lambda emr: emr.terminate_job_flows(JobFlowIds=[args.cluster_id]))
    print(f"terminating {args.cluster_id}")
    return 0


def _add_s3_options(parser: argparse.ArgumentParser, transport: bool = False) -> None:
    group = parser.add_argument_group("S3 (credentials come from the standard AWS chain)")
    group.add_argument("--region", default=DEFAULT_REGION, help="AWS region of the bucket")
    group.add_argument("--endpoint-url", default=None,
                       help="S3-compatible endpoint (MinIO, moto...) [default: AWS, or "
                       "$AWS_ENDPOINT_URL]")
    if transport:
        group.add_argument("--io", default="auto", choices=["auto", "spark", "boto3"],
                           help="how s3:// data moves: spark (EMRFS/S3A), boto3 (executors "
                           "call S3 themselves; for Spark without S3 jars), auto (spark "
                           "where it can)")


def _settings(args: argparse.Namespace):
    from fruits_p8.io.s3 import S3Settings

    return S3Settings(region=args.region, endpoint_url=args.endpoint_url)


def _s3_uri(text: str) -> str:
    from fruits_p8.io.paths import is_s3, parse_location

    if not is_s3(text) or not parse_location(text).authority:
        raise UsageError(f"expected an s3://bucket/prefix URI, got {text!r}")
    return text.rstrip("/")


def cmd_upload(args: argparse.Namespace) -> int:
    from fruits_p8.io.upload import upload_tree
    from fruits_p8.progress import CountProgress

    uri = _s3_uri(args.uri)
    bar = CountProgress(sys.stderr, interactive=sys.stderr.isatty())

    def show(stats) -> None:
        bar.update(stats.done, stats.total_files, stats.bytes_done, stats.total_bytes,
                   f"{stats.skipped} unchanged")

    stats = upload_tree(args.local_dir, uri, _settings(args), glob=args.glob,
                        workers=args.workers, create=args.create_bucket, on_progress=show)
    print(f"uploaded {stats.uploaded} files, {stats.skipped} already there unchanged "
          f"({stats.total_files} under {args.local_dir}) to {uri}")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    from fruits_p8.io.upload import summarise
    from fruits_p8.progress import human_bytes

    summary = summarise(_s3_uri(args.uri), _settings(args), args.glob)
    width = max([len(label) for label in summary.per_label] + [5])
    for label, count in summary.per_label.items():
        print(f"{label:<{width}}  {count:>7}  {human_bytes(summary.bytes_per_label[label]):>9}")
    print(f"{summary.total} images in {len(summary.per_label)} labels under {summary.uri}"
          + (f"; {summary.unlabelled} directly under the prefix (no label)"
             if summary.unlabelled else "")
          + (f"; {summary.other_files} other files" if summary.other_files else ""))
    return 0


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

        made_by = read_fitted(args.fitted, _settings(args)).made_by
    k = args.k if args.k is not None or args.variance is not None else DEFAULT_K
    return RunConfig(
        input=input_path,
        output=args.output,
        glob=args.glob,
        model=args.model or (made_by.backbone if made_by else DEFAULT_MODEL),
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
    )


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
    with _session(args, config.master, config.cache_dir, config.spark_conf) as spark:
        print(summary(pipeline.run(config, spark=spark, plan=plan)))
        print(_report(spark, config.output, _settings(args), config.io, 2000,
                      not args.no_data_quality))
    return 0


@contextmanager
def _session(args: argparse.Namespace, master: str | None, cache_dir: Path,
             conf: dict[str, str] | None = None):
    """The caller's SparkSession (main(..., spark=)), else a new one, stopped afterwards."""
    if args.spark is not None:
        yield args.spark
        return
    from fruits_p8.spark import build_session

    spark = build_session(master, os.environ, cache_dir, conf)
    try:
        yield spark
    finally:
        spark.stop()


def _report(spark, output_uri: str, settings, io_mode: str, max_points: int,
            data_quality: bool = True) -> str:
    from fruits_p8.io.output import open_output
    from fruits_p8.pipeline import choose_io
    from fruits_p8.report import make_report

    output = open_output(output_uri, settings, via="boto3")
    output.via = choose_io(spark, output.uri, io_mode)
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
                     f"{counts['near_duplicate_groups']} near-duplicate groups "
                     f"({counts['groups_across_labels']} across labels, "
                     f"{counts['groups_across_splits']} across splits): "
                     "report/data_quality.json")
    return "\n".join(lines)


def cmd_report(args: argparse.Namespace) -> int:
    with _session(args, args.master, default_cache_dir(os.environ)) as spark:
        print(_report(spark, args.output, _settings(args), args.io, args.max_points,
                      not args.no_data_quality))
    return 0


def summary(result) -> str:
    """What a person wants to know after a run, in a few lines."""
    report = result.report
    weights = report["model"]["weights"]
    timing = report["timings_s"]
    cnn_images = report["counts"]["cnn_images"]
    rate = cnn_images / timing["featurize"] if timing.get("featurize") else 0.0
    lines = [
        f"wrote {result.rows} feature rows and {result.errors} error rows "
        f"({result.files} files) to {result.output}",
        f"  features  {result.output}/features  (Parquet: path, label, "
        f"features[{report['model']['feature_dim']}], pca[{result.k}])",
        f"  errors    {result.output}/errors",
        f"  run.json  {result.output}/run.json",
        f"  PCA       k={result.k}, explained variance {100 * result.explained_variance:.1f} %"
        f" ({report['pca']['basis']})",
        f"  fitted    {report['pca']['fitted_model']}  (Spark ML PipelineModel: scaler + PCA; "
        "apply it with --fitted)",
        f"  model     {weights['backbone']}, weights {weights['source']}, "
        f"{report['model']['precision']}"
        + ("  (RANDOM: not for real use)" if not weights["pretrained"] else ""),
        f"  time      {timing['total']:.1f} s in all, featurize {timing.get('featurize', 0):.1f} s"
        f" ({cnn_images} images through the CNN, {rate:.0f} images/s)",
    ]
    if "reused" in report["counts"]:
        lines.append(f"  reused    the features of {report['counts']['reused']} unchanged images")
    return "\n".join(lines)


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


def main(argv: Sequence[str] | None = None, spark=None) -> int:
    """The command line; `spark`: run in this SparkSession instead of starting one."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    args.spark = spark
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("py4j", "botocore", "boto3", "s3transfer", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return args.handler(args)
    except UserError as exc:
        print(f"fruits-p8: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # the machine's files: permissions, a full disk...
        where = f": {exc.filename}" if exc.filename else ""
        print(f"fruits-p8: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return StorageError.exit_code
    except KeyboardInterrupt:
        print("fruits-p8: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""`fruits-p8 emr prepare|plan|run|status|logs|terminate`: the pipeline on an AWS EMR cluster."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from fruits_p8.commands.common import Formatter, positive_int
from fruits_p8.errors import UsageError, UserError
from fruits_p8.schema import DEFAULT_REGION

log = logging.getLogger("fruits_p8")


def _cluster_options(p: argparse.ArgumentParser, name: str) -> None:
    p.add_argument("--input", required=True, help="s3:// folder of <Label>/<image>")
    p.add_argument("--output", required=True, help="s3:// output folder")
    p.add_argument("--release", default=None,
                   help="EMR release label, emr-7.1.0 or later [default: emr-7.9.0, "
                   "whose PySpark the tests pin]")
    p.add_argument("--instance-type", default=None,
                   help="instance type of every node [default: m5.xlarge]; `emr plan` lists "
                   "the supported ones with their YARN memory and cost per 1,000 images")
    p.add_argument("--core-instance-type", default=None, help="instance type of core nodes")
    p.add_argument("--core-count", type=positive_int, default=None,
                   help="core nodes [default: 2]")
    p.add_argument("--service-role", default=None,
                   help="[default: EMR_DefaultRole; EMR_DefaultRole_V2 works too: the cluster "
                   "carries the tag its policy needs]")
    p.add_argument("--instance-profile", default=None,
                   help="EC2 instance profile [default: EMR_EC2_DefaultRole]")
    p.add_argument("--subnet-id", default=None,
                   help="VPC subnet [default: the region's default VPC]; a private subnet "
                   "needs an S3 gateway endpoint, and `emr prepare` without a NAT gateway")
    p.add_argument("--key-name", default=None, help="EC2 key pair for SSH")
    p.add_argument("--idle-timeout", type=int, default=None,  # range: EmrSettings
                   help="seconds idle before auto-termination, 60-604800 [default: 3600]")
    p.add_argument("--step-timeout", type=positive_int, default=None,
                   help="minutes after which the step is stopped (a hung step keeps the "
                   "cluster billing) [default: 3 x the expected step time, at least 30]")
    p.add_argument("--expected-images", type=positive_int, default=None,
                   help="images in the input, for the cost estimate and the step timeout "
                   "[default: 20000]")
    p.add_argument("--log-uri", default=None, help="[default: s3://BUCKET/PREFIX/logs/]")
    p.add_argument("--weights", default=None,
                   help="weights for the run: s3://... or a local file (uploaded with the "
                   "artifacts), read by the driver [default: the model's default]")
    p.add_argument("--notebook", action="store_true",
                   help="also install what EMR Studio needs to attach a notebook "
                   "(JupyterEnterpriseGateway, Livy; kernels use the bootstrap's Python) and "
                   "keep the cluster up after its steps until the idle timeout")
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
        p.add_argument("--no-preflight", action="store_true",
                       help="skip the checks of the account before the cluster is created "
                       "(vCPU quota, bucket region and encryption, roles)")
        p.add_argument("--no-wheelhouse", action="store_true",
                       help="install from PyPI even where `emr prepare` made a wheelhouse")
    p.add_argument("run_args", nargs="*", metavar="-- RUN_ARGS",
                   help="extra `fruits-p8 run` options after --, e.g. -- --k 100")


def add_commands(sub) -> None:
    """emr and its subcommands."""
    emr = sub.add_parser(
        "emr", formatter_class=Formatter, help="run the pipeline on an AWS EMR cluster",
        description="Plan, run and inspect the pipeline on AWS EMR (EMR 7.1+: Spark 3.5, "
        "Python 3.11). `prepare` puts the pinned wheels in your bucket once (later runs "
        "install from there, without PyPI); `plan` prints the exact requests and the "
        "estimated cost without calling AWS; `run` checks the account, uploads the "
        "artifacts, creates the cluster with its steps, waits, reports and lets the cluster "
        "terminate. README 'On AWS EMR' lists the prerequisites.",
    )
    commands = emr.add_subparsers(dest="emr_command", metavar="EMR_COMMAND", required=True)
    for name, handler, text in (
            ("prepare", cmd_emr_prepare, "resolve the pinned wheels for EMR once and upload "
             "them to the bucket: later runs install from there, no package index"),
            ("plan", cmd_emr_plan, "print the requests and cost; no AWS"),
            ("run", cmd_emr_run, "check, create the cluster, run, wait, report")):
        p = commands.add_parser(name, formatter_class=Formatter, help=text, description=text)
        p.add_argument("--bucket", required=True,
                       help="bucket for artifacts, wheelhouse and logs (s3://BUCKET/PREFIX/..)")
        p.add_argument("--prefix", default="fruits_p8", help="key prefix in the bucket")
        p.add_argument("--region", default=DEFAULT_REGION,
                       help="AWS region of the bucket" if name == "prepare"
                       else "AWS region of the cluster (and of the bucket)")
        if name != "prepare":
            _cluster_options(p, name)
        p.set_defaults(handler=handler)
    for name, handler, text in (("status", cmd_emr_status, "state of a cluster and its steps"),
                                ("logs", cmd_emr_logs,
                                 "where a cluster's logs are: steps, and each node's bootstrap"),
                                ("terminate", cmd_emr_terminate, "terminate a cluster")):
        p = commands.add_parser(name, help=text, description=text)
        p.add_argument("cluster_id", metavar="CLUSTER_ID")
        p.add_argument("--region", default=DEFAULT_REGION, help="AWS region of the cluster")
        p.set_defaults(handler=handler)


def _check_run_args(run_args: list[str]) -> None:
    """Parse the `-- RUN_ARGS` as `fruits-p8 run` will on the cluster: a mistake there ends
    here in one line, not in a failed step after the cluster's setup was billed."""
    from fruits_p8.commands import run as run_commands

    commands = argparse.ArgumentParser(add_help=False).add_subparsers()
    run_commands.add_commands(commands)
    run_parser = commands.choices["run"]

    def refuse(message: str):
        raise UsageError(f"the options after -- (for `fruits-p8 run` on the cluster): {message}")

    run_parser.error = refuse
    run_parser.parse_args(run_args)


def _emr_plan(args: argparse.Namespace, wheelhouse_uri: str | None = None):
    from fruits_p8.emr import plan
    from fruits_p8.io.paths import Location

    weights = args.weights
    weights_file = None
    _check_run_args(list(args.run_args))
    run_args = list(args.run_args)
    if weights:
        if Location.parse(weights).is_s3:
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
        expected_images=args.expected_images or plan.DEFAULT_EXPECTED_IMAGES,
        step_timeout_min=args.step_timeout, wheelhouse_uri=wheelhouse_uri,
        notebook=args.notebook,
    )
    templates = plan.load_templates(args.emr_dir or plan.default_emr_dir())
    artifacts = plan.artifacts_id(bootstrap=templates.bootstrap)
    return settings, templates, artifacts


def cmd_emr_plan(args: argparse.Namespace) -> int:
    import json

    from fruits_p8.emr import launch, plan
    from fruits_p8.emr.wheelhouse import current_closure, wheelhouse_key

    closure = current_closure()[3]
    prepared = f"s3://{args.bucket}/{wheelhouse_key(args.prefix, closure)}"
    settings, templates, artifacts = _emr_plan(args, prepared)
    request = plan.build_run_job_flow(templates, settings, "RUN_ID", artifacts)
    launch.warn_precision(settings, request, templates.prices)
    print(f"# artifacts to upload to {plan.artifacts_uri(settings, artifacts)}/ "
          "(built by `emr run`):")
    for name in ("fruits_p8-<version>-py3-none-any.whl", "constraints.txt", "requirements.txt",
                 "bootstrap.sh", "run.py"):
        print(f"#   {name}")
    if settings.weights_file:
        print(f"#   weights/{Path(settings.weights_file).name}")
    print(f"# wheelhouse (made once by `emr prepare`; without it `emr run` leaves out the "
          f"bootstrap's second argument and the nodes install from PyPI): {prepared}/")
    for line in launch.estimate_lines(templates, settings, request):
        print(f"# {line}")
    print("# RunJobFlow request (RUN_ID is a timestamp at run time):")
    print(json.dumps(request, indent=2))
    print("# the same with the AWS CLI:")
    print(plan.aws_cli_command(request))
    return 0


def _aws(service: str, region: str):
    import boto3

    return boto3.session.Session(region_name=region).client(service)


def cmd_emr_prepare(args: argparse.Namespace) -> int:
    from fruits_p8.emr import launch

    if not args.bucket or "/" in args.bucket:
        raise UsageError(f"--bucket takes a bucket name, got {args.bucket!r}")
    uri = launch.prepare(lambda service: _aws(service, args.region), args.bucket, args.prefix,
                         args.region)
    print(f"wheelhouse ready: {uri}/ (every later `emr run` of this closure installs from it)")
    return 0


def cmd_emr_run(args: argparse.Namespace) -> int:
    from fruits_p8.emr import launch

    clients = launch.Clients(lambda service: _aws(service, args.region))
    prepared = None if args.no_wheelhouse else launch.find_wheelhouse(
        clients, args.bucket, args.prefix, args.region)
    settings, templates, artifacts = _emr_plan(args, prepared)
    return launch.run(clients, settings, templates, artifacts, cluster_id=args.cluster_id,
                      wait=not args.no_wait, checks=not args.no_preflight)


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

"""`fruits-p8 emr plan|run|status|logs|terminate`: the pipeline on an AWS EMR cluster."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from fruits_p8.commands.common import Formatter, positive_int
from fruits_p8.errors import UsageError, UserError
from fruits_p8.schema import DEFAULT_REGION

log = logging.getLogger("fruits_p8")


def add_commands(sub) -> None:
    """emr and its subcommands."""
    emr = sub.add_parser(
        "emr", formatter_class=Formatter, help="run the pipeline on an AWS EMR cluster",
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
        p = commands.add_parser(name, formatter_class=Formatter, help=text, description=text)
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
        p.add_argument("--core-count", type=positive_int, default=None,
                       help="core nodes [default: 2]")
        p.add_argument("--service-role", default=None, help="[default: EMR_DefaultRole]")
        p.add_argument("--instance-profile", default=None,
                       help="EC2 instance profile [default: EMR_EC2_DefaultRole]")
        p.add_argument("--subnet-id", default=None,
                       help="VPC subnet [default: the region's default VPC]; a private subnet "
                       "needs an S3 gateway endpoint, and --wheelhouse without a NAT gateway")
        p.add_argument("--key-name", default=None, help="EC2 key pair for SSH")
        p.add_argument("--idle-timeout", type=positive_int, default=None,
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
    from fruits_p8.io.paths import Location

    weights = args.weights
    weights_file = None
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
    from fruits_p8.emr.cost import estimate_cost as cost_of

    settings, templates, artifacts = _emr_plan(args)
    request = plan.build_run_job_flow(templates, settings, "RUN_ID", artifacts)
    _warn_precision(settings, request, templates.prices)
    cost = cost_of(request, templates.prices, args.expected_minutes / 60)
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
    from fruits_p8.emr.cost import estimate_cost as cost_of
    from fruits_p8.io.s3 import S3Settings, storage_error

    settings, templates, artifacts = _emr_plan(args)
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    request = plan.build_run_job_flow(templates, settings, run_id, artifacts)
    _warn_precision(settings, request, templates.prices)
    cost = cost_of(request, templates.prices, args.expected_minutes / 60)
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

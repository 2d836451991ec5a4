"""The `emr prepare|plan|run` flows: what is estimated and printed, what is checked, uploaded
and requested, in which order. AWS clients come from a factory (boto3 in real use, moto or
stubs in tests)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from fruits_p8.emr import plan, runner
from fruits_p8.emr.cost import Cost, estimate_cost, instance_table
from fruits_p8.errors import UsageError, UserError

log = logging.getLogger("fruits_p8")


class Clients:
    """One boto3 client per service, made on first use."""

    def __init__(self, make: Callable[[str], object]) -> None:
        self.make, self.made = make, {}

    def __call__(self, service: str):
        if service not in self.made:
            self.made[service] = self.make(service)
        return self.made[service]


def estimate(templates: plan.Templates, settings: plan.EmrSettings, request: dict) -> Cost:
    """The cluster's rate and the cost of setup plus the expected step."""
    before, step = plan.expected_minutes(templates, settings)
    return estimate_cost(request, templates.prices, (before + step) / 60,
                         plan.asks_bfloat16(settings.run_args))


def type_rows(templates: plan.Templates, settings: plan.EmrSettings):
    """Each supported instance type as the cluster's only type: its float32 and bfloat16
    cost (types too small for one Python worker are left out)."""
    rows = []
    for itype, spec in templates.prices["instances"].items():
        alone = replace(settings, instance_type=itype, core_instance_type=None, notebook=False)
        try:
            request = plan.build_run_job_flow(templates, alone, "RUN_ID", "ID")
        except UsageError:
            continue
        rows.append((itype, spec, estimate_cost(request, templates.prices, 0),
                     estimate_cost(request, templates.prices, 0, bfloat16=True)))
    return rows


def estimate_lines(templates: plan.Templates, settings: plan.EmrSettings,
                   request: dict) -> list[str]:
    """The estimate `emr plan` prints: cost, per 1,000 images, durations, the type table."""
    from fruits_p8.emr.notebook import notebook_note

    cost = estimate(templates, settings, request)
    setup = templates.prices["setup_minutes"]
    before, step = plan.expected_minutes(templates, settings)
    lines = [f"estimated cost: {cost.describe()}",
             f"  setup ~{before:.0f} min (bootstrap from "
             f"{'the prepared wheelhouse' if settings.wheelhouse_uri else 'PyPI'}"
             f"; a wheelhouse from `emr prepare` saves ~{setup['index'] - setup['wheelhouse']} "
             f"min per run), step ~{step:.0f} min for {settings.expected_images:,} images "
             f"(--expected-images), stopped after {plan.step_timeout(templates, settings)} min "
             "(--step-timeout)"]
    if settings.notebook:
        idle = request["AutoTerminationPolicy"]["IdleTimeout"]
        lines.append(notebook_note(cost.per_hour, idle))
    lines.append("instance types (--instance-type: every node of that type; $/1k = per 1,000 "
                 "images once running, ESTIMATES from the rate measured per vCPU, see "
                 "emr/prices.json 'throughput'; bf16 = `-- --precision bfloat16`, native only):")
    lines += [f"  {line}" for line in instance_table(type_rows(templates, settings))]
    return lines


def find_wheelhouse(clients: Callable, bucket: str, prefix: str, region: str) -> str | None:
    """The prepared wheelhouse of this closure in the bucket, None (with a hint) if absent."""
    from fruits_p8.emr.wheelhouse import current_closure, is_prepared, wheelhouse_key
    from fruits_p8.io.s3 import S3Settings, storage_error

    key = wheelhouse_key(prefix, current_closure()[3])
    try:
        found = is_prepared(clients("s3"), bucket, key)
    except Exception as exc:
        raise storage_error(exc, f"s3://{bucket}", S3Settings(region=region)) from None
    if not found:
        log.warning("no wheelhouse for this version in s3://%s/%s: every node installs from "
                    "PyPI (slower, needs internet); `fruits-p8 emr prepare --bucket %s` makes "
                    "it once", bucket, key, bucket)
        return None
    return f"s3://{bucket}/{key}"


def prepare(clients: Callable, bucket: str, prefix: str, region: str) -> str:
    """Resolve the closure for EMR's nodes, upload its wheels, then its lock. The bucket is
    asked first (credentials, existence, region: not after ~600 MB of downloads), and a
    closure already prepared there is left as it is."""
    from fruits_p8.emr import wheelhouse
    from fruits_p8.emr.wheelhouse import LOCK, build, current_closure, is_prepared, wheelhouse_key
    from fruits_p8.errors import EnvironmentProblem
    from fruits_p8.io.s3 import S3Settings, storage_error

    foreign = wheelhouse.foreign_markers()
    if foreign:
        raise EnvironmentProblem(
            "emr prepare runs on Linux x86_64 with CPython 3.11, as EMR's nodes (pip resolves "
            f"the dependencies' markers on this machine): here {'; '.join(foreign)}; run it "
            "on such a machine, or let the nodes install from PyPI")
    requirements, constraints, pip, closure = current_closure()
    key = wheelhouse_key(prefix, closure)
    try:
        clients("s3").head_bucket(Bucket=bucket)
        prepared = is_prepared(clients("s3"), bucket, key)
    except Exception as exc:
        raise storage_error(exc, f"s3://{bucket}", S3Settings(region=region)) from None
    if prepared:
        log.info("s3://%s/%s/ already holds this closure: nothing to do", bucket, key)
        return f"s3://{bucket}/{key}"
    with tempfile.TemporaryDirectory() as scratch:
        log.info("resolving the pinned closure for EMR (CPython 3.11, manylinux x86_64)")
        files = build(Path(scratch), requirements, constraints, pip)
        lock = files.pop(LOCK)
        try:
            runner.upload_artifacts(clients("s3"), bucket, key, files)
            runner.upload_artifacts(clients("s3"), bucket, key, {LOCK: lock.read_bytes()})
        except Exception as exc:
            raise storage_error(exc, f"s3://{bucket}", S3Settings(region=region)) from None
    log.info("%d wheels and %s uploaded", len(files), LOCK)
    return f"s3://{bucket}/{key}"


def warn_precision(settings: plan.EmrSettings, request: dict, prices: dict) -> None:
    core = next(g for g in request["Instances"]["InstanceGroups"]
                if g["InstanceRole"] == "CORE")
    warning = plan.bfloat16_warning(settings.run_args, core["InstanceType"], prices)
    if warning:
        log.warning("%s", warning)


def upload(clients: Callable, settings: plan.EmrSettings, templates: plan.Templates,
           artifacts: str) -> None:
    """The artifacts to S3; a failure there is a storage error."""
    from fruits_p8.emr import artifacts as artifact_files
    from fruits_p8.io.s3 import S3Settings, storage_error

    try:
        log.info("building the wheel and uploading the artifacts (%s)", artifacts)
        files = artifact_files.collect(
            templates.bootstrap, Path(settings.weights_file) if settings.weights_file else None)
        where = runner.upload_artifacts(
            clients("s3"), settings.bucket,
            f"{settings.prefix.strip('/')}/artifacts/{artifacts}", files)
    except UserError:
        raise
    except Exception as exc:
        raise storage_error(exc, f"s3://{settings.bucket}",
                            S3Settings(region=settings.region)) from None
    log.info("artifacts in %s", where)


def run(clients: Callable, settings: plan.EmrSettings, templates: plan.Templates,
        artifacts: str, cluster_id: str | None = None, wait: bool = True,
        checks: bool = True) -> int:
    """`emr run`: check, upload, request (or add steps), wait, report."""
    from fruits_p8.emr.preflight import preflight

    if cluster_id and settings.notebook:
        raise UsageError("--notebook makes a new cluster: leave out --cluster-id")
    reused = cluster_id is not None
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    request = plan.build_run_job_flow(templates, settings, run_id, artifacts)
    warn_precision(settings, request, templates.prices)
    cost = estimate(templates, settings, request)
    emr = clients("emr")
    if cluster_id:
        runner.check_reusable(emr, cluster_id, plan.bootstrap_path(settings, artifacts))
    elif checks:
        preflight(clients, request, templates.prices, settings.bucket, settings.region)
    upload(clients, settings, templates, artifacts)
    if cluster_id:
        steps = plan.build_steps(templates, settings, run_id, artifacts, added=True)
        step_ids = runner.add_steps(emr, cluster_id, steps)
        print(f"added {len(step_ids)} step(s) to {cluster_id} (a failed step leaves it running)")
    else:
        print(f"estimated cost: {cost.describe()}")
        cluster_id, step_ids = runner.start_cluster(emr, request)
        ends = ("it waits for a notebook after its steps, until the idle timeout"
                if settings.notebook else "it terminates by itself after its steps")
        print(f"cluster {cluster_id} requested ({request['ReleaseLabel']}, "
              f"{settings.region}); {ends}")
        if settings.notebook:
            from fruits_p8.emr.notebook import notebook_note

            print(notebook_note(cost.per_hour, request["AutoTerminationPolicy"]["IdleTimeout"]))
    if not wait:
        print(f"follow it with: fruits-p8 emr status {cluster_id} --region {settings.region}")
        return 0
    watch = runner.ClusterWatch(emr, say=lambda line: log.info("%s", line))
    # a notebook cluster outlives its steps: the wait ends with them, and never terminates it
    outcome = watch.wait(cluster_id, step_ids, own_cluster=not (reused or settings.notebook))
    if not outcome.succeeded:
        raise runner.explain_failure(outcome)
    print(f"done: features in {settings.output} (run.json beside them)")
    print(f"cost: {runner.describe_cost(cost, outcome)}")
    return 0

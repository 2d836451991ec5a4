"""Build the exact EMR requests and a cost estimate from the EMR definitions (no AWS call).

The definitions ship inside the package (fruits_p8/emr/definitions/): cluster.json is a
RunJobFlow request with ${...} placeholders, configurations.json its Configurations,
steps.json the steps, prices.json the prices and sizes per instance type. Settings override
instance types and counts, release, roles, network and timeouts.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import shlex
import string
from dataclasses import dataclass, field, replace
from pathlib import Path

from fruits_p8 import __version__
from fruits_p8.emr.notebook import add_notebook
from fruits_p8.emr.sizing import (
    executor_sizing,
    images_per_hour,
    instance_spec,
    step_timeout_minutes,
    yarn_site,
)
from fruits_p8.errors import UsageError
from fruits_p8.io.paths import Location
from fruits_p8.schema import DEFAULT_REGION
from fruits_p8.spark import OUTPUT_SETTINGS

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = Path(__file__).resolve().parent / "definitions"
PLACEHOLDER = "${"
# Amazon Linux 2023 with Python 3.11 and dnf: where the pinned manylinux wheels install.
MIN_RELEASE = (7, 1)

# The managed-policy tag: AmazonEMRServicePolicy_v2 (EMR_DefaultRole_V2) acts only on resources
# carrying it; harmless with the v1 role.
MANAGED_POLICY_TAG = {"Key": "for-use-with-amazon-emr-managed-policies", "Value": "true"}
DEFAULT_EXPECTED_IMAGES = 20_000  # about the Fruits 360 Test split (17,845 photos)
PRICE_SECTIONS = {"instances", "ebs_gib_month", "throughput", "setup_minutes"}
IDLE_TIMEOUT_S = (60, 604_800)  # AutoTerminationPolicy.IdleTimeout: AWS refuses the rest


def default_emr_dir() -> Path:
    """The definitions shipped in the package, so a pip-installed fruits-p8 finds them."""
    return DEFINITIONS


@dataclass(frozen=True)
class EmrSettings:
    """What a user chooses for a cluster run; None keeps the value of cluster.json."""

    bucket: str
    input: str
    output: str
    prefix: str = "fruits_p8"
    region: str = DEFAULT_REGION
    release: str | None = None
    instance_type: str | None = None
    core_instance_type: str | None = None
    core_count: int | None = None
    service_role: str | None = None
    instance_profile: str | None = None
    subnet_id: str | None = None
    key_name: str | None = None
    idle_timeout_s: int | None = None
    log_uri: str | None = None
    run_args: tuple[str, ...] = ()
    weights_file: str | None = None
    expected_images: int = DEFAULT_EXPECTED_IMAGES
    step_timeout_min: int | None = None
    wheelhouse_uri: str | None = None  # a wheelhouse `emr prepare` made: installs offline
    notebook: bool = False

    def __post_init__(self) -> None:
        if not self.bucket or "/" in self.bucket:
            raise UsageError(f"--bucket takes a bucket name, got {self.bucket!r}")
        for name in ("input", "output"):
            location = Location.parse(getattr(self, name))
            if not location.is_s3 or not location.authority:
                raise UsageError(f"--{name} must be an s3:// (or s3a://) URI on EMR, "
                                 f"got {getattr(self, name)!r}")
            # EMRFS serves s3:// on the cluster; s3a:// and s3n:// name the same objects
            object.__setattr__(self, name, replace(location, scheme="s3").text())
        if self.core_count is not None and self.core_count < 1:
            raise UsageError("--core-count must be at least 1")
        if self.idle_timeout_s is not None and not (
                IDLE_TIMEOUT_S[0] <= self.idle_timeout_s <= IDLE_TIMEOUT_S[1]):
            raise UsageError(f"--idle-timeout must be {IDLE_TIMEOUT_S[0]}-{IDLE_TIMEOUT_S[1]} "
                             f"seconds (AWS's range), got {self.idle_timeout_s}")


@dataclass(frozen=True)
class Templates:
    cluster: dict
    configurations: list
    steps: list
    prices: dict
    bootstrap: str = field(repr=False)


def load_templates(emr_dir: Path) -> Templates:
    """Read the EMR definitions in `emr_dir`."""

    def read_json(name: str):
        try:
            return json.loads((emr_dir / name).read_text())
        except json.JSONDecodeError as exc:
            raise UsageError(f"{emr_dir / name} is not valid JSON: {exc.msg} at line "
                             f"{exc.lineno} column {exc.colno}") from None

    try:
        templates = Templates(
            cluster=read_json("cluster.json"),
            configurations=read_json("configurations.json"),
            steps=read_json("steps.json"),
            prices=read_json("prices.json"),
            bootstrap=(emr_dir / "bootstrap.sh").read_text(),
        )
    except FileNotFoundError as exc:
        raise UsageError(f"EMR definitions missing: {exc.filename} (--emr-dir needs "
                         "cluster.json, configurations.json, steps.json, prices.json and "
                         "bootstrap.sh)") from None
    missing = PRICE_SECTIONS - templates.prices.keys()
    if missing:
        raise UsageError(f"{emr_dir / 'prices.json'} lacks {', '.join(sorted(missing))}: "
                         "copy them from the package's (fruits_p8/emr/definitions/)")
    return templates


def source_files(root: Path = REPO_ROOT) -> list[Path]:
    """The files whose content defines the artifacts: the package (with its definitions and
    pins) and pyproject.toml where there is a clone."""
    files = [p for p in (root / "fruits_p8").rglob("*")
             if p.is_file() and "__pycache__" not in p.parts]
    files.append(root / "pyproject.toml")
    return sorted(p for p in files if p.exists())


def artifacts_id(root: Path = REPO_ROOT, bootstrap: str = "") -> str:
    """Content hash of what goes to the cluster (sources and the bootstrap shipped): same
    content, same id, and a node that has it installed skips the bootstrap."""
    digest = hashlib.sha256()
    for path in source_files(root):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    digest.update(bootstrap.encode())
    return f"{__version__}-{digest.hexdigest()[:12]}"


def check_release(label: str) -> None:
    """EMR 7.1 and later only: emr-6.x (Amazon Linux 2, glibc 2.26, no dnf) and 7.0 lack
    what the bootstrap installs."""
    match = re.fullmatch(r"emr-(\d+)\.(\d+)\.(\d+)", label)
    if not match or (int(match[1]), int(match[2])) < MIN_RELEASE:
        raise UsageError(f"EMR release {label!r} is not supported: use emr-7.1.0 or later "
                         "(Amazon Linux 2023, Python 3.11)")


def _substitute(value, mapping: dict[str, str]):
    if isinstance(value, str):
        return string.Template(value).safe_substitute(mapping)
    if isinstance(value, list):
        return [_substitute(v, mapping) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, mapping) for k, v in value.items()}
    return value


def _unfilled(value, path: str = "") -> list[str]:
    if isinstance(value, str):
        return [path] if PLACEHOLDER in value else []
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _unfilled(v, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _unfilled(v, f"{path}.{k}")]
    return []


def asks_bfloat16(run_args: tuple[str, ...]) -> bool:
    return "--precision=bfloat16" in run_args or ("--precision", "bfloat16") in set(
        itertools.pairwise(run_args))


def bfloat16_warning(run_args: tuple[str, ...], core_type: str, prices: dict) -> str | None:
    """A warning when the run asks for bfloat16 on core nodes (where the CNN runs) whose CPUs
    emulate it: slower than float32 there."""
    if asks_bfloat16(run_args) and not instance_spec(prices, core_type).get(
            "native_bfloat16", False):
        return (f"--precision bfloat16: {core_type} core nodes have no AVX512-BF16 or AMX, so "
                "bfloat16 is emulated there and slower than float32")
    return None


def core_nodes(templates: Templates, settings: EmrSettings) -> tuple[str, int]:
    """Instance type and count of the core nodes (where the executors run)."""
    core = next(g for g in templates.cluster["Instances"]["InstanceGroups"]
                if g["InstanceRole"] == "CORE")
    return (settings.core_instance_type or settings.instance_type or core["InstanceType"],
            settings.core_count or core["InstanceCount"])


def expected_minutes(templates: Templates, settings: EmrSettings) -> tuple[float, float]:
    """Minutes before the step starts (provisioning and bootstrap: faster from a prepared
    wheelhouse) and minutes of the step (the expected images at the measured rate, plus
    Spark's start)."""
    setup = templates.prices["setup_minutes"]
    before = setup["wheelhouse" if settings.wheelhouse_uri else "index"]
    core_type, count = core_nodes(templates, settings)
    rate = images_per_hour(templates.prices, core_type, count,
                           asks_bfloat16(settings.run_args))
    return before, setup["step_start"] + 60 * settings.expected_images / rate


def step_timeout(templates: Templates, settings: EmrSettings) -> int:
    """Minutes after which the step is stopped: --step-timeout, else from the input's size."""
    if settings.step_timeout_min:
        return settings.step_timeout_min
    return step_timeout_minutes(expected_minutes(templates, settings)[1])


def mapping(settings: EmrSettings, run_id: str, artifacts: str,
            timeout_min: int = 0) -> dict[str, str]:
    return {"RUN_ID": run_id, "BUCKET": settings.bucket, "PREFIX": settings.prefix.strip("/"),
            "ARTIFACTS": artifacts, "INPUT": settings.input, "OUTPUT": settings.output,
            "REGION": settings.region, "STEP_TIMEOUT": f"{timeout_min}m"}


def artifacts_uri(settings: EmrSettings, artifacts: str) -> str:
    """Where the artifacts of this content hash live in S3."""
    return f"s3://{settings.bucket}/{settings.prefix.strip('/')}/artifacts/{artifacts}"


def bootstrap_path(settings: EmrSettings, artifacts: str) -> str:
    """The bootstrap script a cluster running these artifacts was created with."""
    return f"{artifacts_uri(settings, artifacts)}/bootstrap.sh"


def build_steps(templates: Templates, settings: EmrSettings, run_id: str,
                artifacts: str, added: bool = False) -> list[dict]:
    """The step list: the run step gets the user's extra `fruits-p8 run` arguments, and a
    local weights file as its S3 copy among the artifacts (read by the driver). Steps
    `added` to a running cluster CONTINUE on failure: that cluster is not this run's."""
    steps = _substitute(copy.deepcopy(templates.steps), mapping(
        settings, run_id, artifacts, step_timeout(templates, settings)))
    extra = list(settings.run_args)
    if settings.weights_file:
        extra += ["--weights", f"{artifacts_uri(settings, artifacts)}/weights/"
                  f"{Path(settings.weights_file).name}"]
    steps[-1]["HadoopJarStep"]["Args"] += extra
    if added:
        for step in steps:
            step["ActionOnFailure"] = "CONTINUE"
    _require_filled(steps, "steps.json")
    return steps


def build_run_job_flow(templates: Templates, settings: EmrSettings, run_id: str,
                       artifacts: str) -> dict:
    """The RunJobFlow request: cluster.json + configurations + steps + overrides."""
    request = _substitute(copy.deepcopy(templates.cluster), mapping(settings, run_id, artifacts))
    groups = {g["InstanceRole"]: g for g in request["Instances"]["InstanceGroups"]}
    if settings.instance_type:
        groups["MASTER"]["InstanceType"] = settings.instance_type
        groups["CORE"]["InstanceType"] = settings.instance_type
    if settings.core_instance_type:
        groups["CORE"]["InstanceType"] = settings.core_instance_type
    if settings.core_count:
        groups["CORE"]["InstanceCount"] = settings.core_count
    if settings.release:
        request["ReleaseLabel"] = settings.release
    check_release(request["ReleaseLabel"])
    if settings.service_role:
        request["ServiceRole"] = settings.service_role
    if settings.instance_profile:
        request["JobFlowRole"] = settings.instance_profile
    if settings.subnet_id:
        request["Instances"]["Ec2SubnetId"] = settings.subnet_id
    if settings.key_name:
        request["Instances"]["Ec2KeyName"] = settings.key_name
    if settings.idle_timeout_s:
        request["AutoTerminationPolicy"] = {"IdleTimeout": settings.idle_timeout_s}
    if settings.log_uri:
        request["LogUri"] = settings.log_uri
    if MANAGED_POLICY_TAG not in request.setdefault("Tags", []):
        request["Tags"].append(MANAGED_POLICY_TAG)
    if settings.wheelhouse_uri:
        request["BootstrapActions"][0]["ScriptBootstrapAction"]["Args"].append(
            settings.wheelhouse_uri)

    configurations = copy.deepcopy(templates.configurations)
    core = groups["CORE"]
    spec = instance_spec(templates.prices, core["InstanceType"])
    defaults = next(c for c in configurations if c["Classification"] == "spark-defaults")
    defaults["Properties"].update(executor_sizing(
        spec["vcpu"], spec["yarn_memory_mb"], core["InstanceCount"], core["InstanceType"]))
    defaults["Properties"].update(OUTPUT_SETTINGS)
    configurations.append(yarn_site(spec["yarn_memory_mb"]))
    request["Configurations"] = configurations
    if settings.notebook:
        add_notebook(request)
    request["Steps"] = build_steps(templates, settings, run_id, artifacts)
    _require_filled(request, "cluster.json")
    return request


def _require_filled(value, source: str) -> None:
    missing = _unfilled(value)
    if missing:
        raise UsageError(f"{source} has a placeholder nobody fills: {missing[0]}")


def aws_cli_command(request: dict) -> str:
    """The same cluster as an `aws emr create-cluster` command line."""
    groups = [
        {"Name": g["Name"], "InstanceGroupType": g["InstanceRole"],
         "InstanceType": g["InstanceType"], "InstanceCount": g["InstanceCount"],
         **({"EbsConfiguration": g["EbsConfiguration"]} if "EbsConfiguration" in g else {})}
        for g in request["Instances"]["InstanceGroups"]
    ]
    steps = [
        {"Type": "CUSTOM_JAR", "Name": s["Name"], "ActionOnFailure": s["ActionOnFailure"],
         "Jar": s["HadoopJarStep"]["Jar"], "Args": s["HadoopJarStep"]["Args"]}
        for s in request.get("Steps", [])
    ]
    boots = [{"Name": b["Name"], "Path": b["ScriptBootstrapAction"]["Path"],
              "Args": b["ScriptBootstrapAction"]["Args"]} for b in request["BootstrapActions"]]
    ec2 = {"InstanceProfile": request["JobFlowRole"]}
    if "Ec2SubnetId" in request["Instances"]:
        ec2["SubnetId"] = request["Instances"]["Ec2SubnetId"]
    if "Ec2KeyName" in request["Instances"]:
        ec2["KeyName"] = request["Instances"]["Ec2KeyName"]
    parts = [
        "aws", "emr", "create-cluster",
        "--name", request["Name"],
        "--release-label", request["ReleaseLabel"],
        "--applications", *[f"Name={a['Name']}" for a in request["Applications"]],
        "--log-uri", request["LogUri"],
        "--service-role", request["ServiceRole"],
        "--ec2-attributes", json.dumps(ec2, separators=(",", ":")),
        "--instance-groups", json.dumps(groups, separators=(",", ":")),
        "--bootstrap-actions", json.dumps(boots, separators=(",", ":")),
        "--configurations", json.dumps(request["Configurations"], separators=(",", ":")),
        "--steps", json.dumps(steps, separators=(",", ":")),
        "--tags", *[f"{t['Key']}={t['Value']}" for t in request.get("Tags", [])],
        "--no-auto-terminate" if request["Instances"]["KeepJobFlowAliveWhenNoSteps"]
        else "--auto-terminate",
    ]
    if "EbsRootVolumeSize" in request:
        parts += ["--ebs-root-volume-size", str(request["EbsRootVolumeSize"])]
    if "AutoTerminationPolicy" in request:
        parts += ["--auto-termination-policy",
                  f"IdleTimeout={request['AutoTerminationPolicy']['IdleTimeout']}"]
    return " ".join(shlex.quote(p) for p in parts)

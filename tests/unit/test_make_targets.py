"""The Makefile's housekeeping: `make clean` removes only what the targets made."""

import os
import shutil
import subprocess

import pytest

from tests.conftest import REPO_ROOT

MADE = [".venv/bin", ".tox/spark35", "build/s3a-jars", ".pytest_cache", ".hypothesis",
        ".ruff_cache", "fruits_p8.egg-info", "fruits_p8/__pycache__", "tests/__pycache__"]
MAKE_ENV = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "VENV")
THEIRS = ["output/features", "output/report", "data/fruits-360", "dist", "bench-results"]


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on PATH")
def test_clean_removes_the_venvs_caches_and_build_but_not_output_or_data(tmp_path):
    shutil.copy(REPO_ROOT / "Makefile", tmp_path / "Makefile")
    for folder in MADE + THEIRS:
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "file").write_text("x")
    # Not the caller's make settings (`make test-unit VENV=/elsewhere` passes them down in
    # MAKEFLAGS): only the copy's own relative paths, checked by a dry run first.
    env = {k: v for k, v in os.environ.items() if k not in MAKE_ENV}
    command = ["make", "-s", "clean", "VENV=.venv"]
    planned = subprocess.run([*command, "-n"], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=60, check=True).stdout.split()
    assert not [word for word in planned if word.startswith(("/", "~", ".."))], planned
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert [f for f in THEIRS if not (tmp_path / f / "file").is_file()] == []
    assert [f for f in MADE if (tmp_path / f).exists()] == []

"""`fruits-p8 run` as a user types it: a fresh process, its own Spark, a summary on stdout."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fruits_p8.cli import EMBEDDED_SAMPLE

pytestmark = pytest.mark.spark


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*")}


def test_run_command_end_to_end_with_its_report(sample_dir, cache_dir, tmp_path):
    out = tmp_path / "features"
    embedded = _files(EMBEDDED_SAMPLE.parent)
    done = subprocess.run(  # no --input: the embedded real photos
        [sys.executable, "-m", "fruits_p8", "run", "--output",
         str(out), "--k", "4", "--limit", "12", "--master", "local[2]", "--batch-size", "8",
         "--cache-dir", str(cache_dir), "--report"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"12 files match '*.jpg' under {EMBEDDED_SAMPLE}" in done.stderr
    assert _files(EMBEDDED_SAMPLE.parent) == embedded  # read, never written
    assert not (tmp_path / "data").exists()
    assert f"report    {out / 'report' / 'index.html'}" in done.stdout
    assert (out / "report" / "index.html").stat().st_size > 0
    assert "wrote 12 feature rows and 0 error rows (12 files)" in done.stdout
    assert "k=4" in done.stdout and "efficientnet_lite0" in done.stdout
    assert re.search(r"data +\d+ suspected mislabels, \d+ look-alike label pairs, ", done.stdout)
    assert "Traceback" not in done.stderr
    assert "featurize done" in done.stderr  # progress is logged
    report = json.loads((out / "run.json").read_text())
    assert report["counts"]["rows_written"] == 12

    again = subprocess.run(
        [sys.executable, "-m", "fruits_p8", "run", "--input", str(sample_dir), "--output",
         str(out)], capture_output=True, text=True, timeout=600,
    )
    assert again.returncode == 4
    assert again.stderr.strip().splitlines()[-1].startswith("fruits-p8: error: output exists")

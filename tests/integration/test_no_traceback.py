"""Whatever folder and options a user gives, `fruits-p8 run` ends in a result or one line.

Hypothesis draws small image folders (names with spaces, unicode and '%', one-image and
empty label folders, identical images, broken and empty files, a file with no label) and
option combinations (k above the images, a variance target, --limit, an existing output of
ours or of the user's), runs the command line in the test session's Spark, and checks the
outcome: exit 0 with every file accounted for, or one `fruits-p8: error:` line with its
exit code and nothing of the user's touched.
"""

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from fruits_p8.cli import main

pytestmark = pytest.mark.spark

LABELS = ["Apple Braeburn", "Tomato 1", "Pêche", "Kiwi%41", "Fraise 🍓"]
KINDS = ["photo", "photo", "photo", "same", "empty", "garbage", "png"]


def jpeg(seed: int, kind: str) -> bytes:
    if kind == "empty":
        return b""
    if kind == "garbage":
        return b"\xff\xd8\xff" + bytes(range(seed % 50, 150))
    colour = (0, 0, 0) if kind == "same" else ((seed * 37) % 256, (seed * 91) % 256, 90)
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), colour).save(buffer, "PNG" if kind == "png" else "JPEG")
    return buffer.getvalue()


folders = st.dictionaries(
    st.sampled_from(LABELS),
    st.lists(st.sampled_from(KINDS), min_size=0, max_size=3),
    min_size=1, max_size=3)
options = st.fixed_dictionaries({
    "reduce": st.sampled_from([[], ["--k", "1"], ["--k", "2"], ["--k", "9"],
                               ["--variance", "0.9"], ["--variance", "1"]]),
    "limit": st.sampled_from([[], ["--limit", "1"], ["--limit", "3"]]),
    "mode": st.sampled_from([[], ["--overwrite"], ["--incremental"]]),
    "unlabelled": st.booleans(),
    "existing": st.sampled_from(["none", "ours", "users"]),
})


def write_folder(root: Path, folder: dict[str, list[str]], unlabelled: bool) -> None:
    for n, (label, kinds) in enumerate(folder.items()):
        (root / label).mkdir(parents=True)
        for i, kind in enumerate(kinds):
            (root / label / f"r_{i}_100.jpg").write_bytes(jpeg(n * 7 + i, kind))
    if unlabelled:
        (root / "stray_100.jpg").write_bytes(jpeg(99, "photo"))


def case(reduce=(), existing="none", **flags) -> dict:
    return {"reduce": list(reduce), "limit": [], "mode": [], "unlabelled": False,
            "existing": existing, **flags}


@settings(max_examples=14, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(folder=folders, opts=options)
# the cases a review found or named, always run
@example(folder={"Apple Braeburn": ["photo"]}, opts=case(["--variance", "0.9"]))
@example(folder={"Tomato 1": ["same", "same", "same"]}, opts=case(["--variance", "0.9"]))
@example(folder={"Pêche": ["photo", "photo"], "Kiwi%41": ["photo"]}, opts=case(["--k", "9"]))
@example(folder={"Fraise 🍓": ["photo"], "Apple Braeburn": [], "Tomato 1": ["photo"]},
         opts=case(["--k", "1"], existing="ours", mode=["--incremental"]))
@example(folder={"Apple Braeburn": ["empty", "garbage"]}, opts=case(unlabelled=True))
def test_no_traceback_reaches_the_user(spark, cache_dir, folder, opts):
    with tempfile.TemporaryDirectory() as tmp:
        root, out = Path(tmp) / "in", Path(tmp) / "out"
        root.mkdir()
        write_folder(root, folder, opts["unlabelled"])
        if opts["existing"] == "users":
            out.mkdir()
            (out / "notes.txt").write_text("mine")
        argv = ["run", "--input", str(root), "--output", str(out), "--weights", "random",
                "--cache-dir", str(cache_dir), *opts["reduce"], *opts["limit"], *opts["mode"]]
        if opts["existing"] == "ours":
            assert main([*argv[:5], "--weights", "random", "--k", "1", "--cache-dir",
                         str(cache_dir)], spark=spark) in (0, 3, 5)
        capture = io.StringIO()
        with _stderr(capture):
            code = main(argv, spark=spark)
        err = [line for line in capture.getvalue().splitlines() if "error" in line.lower()
               or "Traceback" in line]
        assert "Traceback" not in capture.getvalue()
        if code == 0:
            report = json.loads((out / "run.json").read_text())
            counts = report["counts"]
            assert counts["rows_written"] + counts["errors"] == counts["files"]
        else:
            assert code in (2, 3, 4, 5), code
            assert err and err[-1].startswith("fruits-p8: error: ")
        if opts["existing"] == "users":
            assert code == 4 and (out / "notes.txt").read_text() == "mine"
        assert sorted(p.name for p in Path(tmp).iterdir() if p.name.startswith(".")) == []


class _stderr:
    """Collect what the command prints on stderr, its log lines included."""

    def __init__(self, target: io.StringIO) -> None:
        self.target = target

    def __enter__(self):
        import logging

        self.saved = sys.stderr
        sys.stderr = self.target
        self.handler = logging.StreamHandler(self.target)
        logging.getLogger().addHandler(self.handler)

    def __exit__(self, *exc):
        import logging

        sys.stderr = self.saved
        logging.getLogger().removeHandler(self.handler)


DROP_READ_RIGHTS = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                    "--inh-caps=-dac_override,-dac_read_search"]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root and setpriv: the run goes as root without the right "
                    "to read every file (as an ordinary user, chmod 000 alone would do)")
def test_files_the_run_may_not_read_become_error_rows(sample_dir, cache_dir, tmp_path):
    root = tmp_path / "in"
    shutil.copytree(sample_dir / "Test", root)
    secret = sorted(root.rglob("*.jpg"))[:2]
    for path in secret:
        path.chmod(0o000)
    result = subprocess.run(
        [*DROP_READ_RIGHTS, sys.executable, "-m", "fruits_p8.cli", "run", "--input", str(root),
         "--output", str(tmp_path / "out"), "--weights", "random", "--k", "2", "--master",
         "local[2]", "--cache-dir", str(cache_dir)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    report = json.loads((tmp_path / "out" / "run.json").read_text())
    assert report["counts"]["errors"] == 2
    assert report["counts"]["files"] == report["counts"]["rows_written"] + 2
    errors = pq.read_table(tmp_path / "out" / "errors").to_pylist()
    assert sorted(e["path"].rsplit("/", 1)[1] for e in errors) == sorted(p.name for p in secret)
    assert {e["error_kind"] for e in errors} == {"unreadable"}


# A job reads only the first rows of a Python function's output while the worker still
# writes (first() on many small Arrow batches, as Spark ML's PCA does to learn the size).
PARTIAL_READ = """
import os, sys
import pyarrow as pa
from fruits_p8.spark import build_session

daemon = sys.argv[2]  # "default": what build_session sets
spark = build_session("local[2]", os.environ, __import__("pathlib").Path(sys.argv[1]),
                      {} if daemon == "default" else {"spark.python.daemon.module": daemon})
spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "100")

def rows(batches):
    for batch in batches:
        yield pa.RecordBatch.from_arrays(
            [batch.column(0), pa.array([b"x" * 20000] * batch.num_rows)], names=["id", "blob"])

frame = spark.range(0, 20000, numPartitions=2).mapInArrow(rows, "id long, blob binary")
print("first id", frame.first().id, flush=True)
spark.stop()
"""


@pytest.mark.parity  # the worker daemon differs between Spark versions
@pytest.mark.parametrize("daemon", ["pyspark.daemon", "default"])
def test_a_partial_read_prints_no_worker_traceback(daemon, cache_dir, tmp_path):
    import pyspark

    if daemon == "pyspark.daemon" and int(pyspark.__version__.split(".")[0]) < 4:
        pytest.skip("PySpark 3.5's daemon drops the worker's flush error silently: "
                    "the traceback shows from PySpark 4 on (killWorkerOnFlushFailure)")
    script = tmp_path / "partial_read.py"
    script.write_text(PARTIAL_READ)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, str(script), str(cache_dir), daemon],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "first id 0" in result.stdout
    if daemon == "pyspark.daemon":  # the case exists: pyspark's own daemon prints it
        assert "BrokenPipeError" in result.stderr, result.stderr[-3000:]
    else:  # a session as build_session starts it (fruits_p8.worker_daemon)
        assert "Traceback" not in result.stderr, result.stderr[-3000:]

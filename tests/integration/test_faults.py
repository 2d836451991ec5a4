"""Faults and growth: a crashing worker is retried, a killed run leaves nothing marked complete,
--incremental featurizes only what changed."""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from fruits_p8 import pipeline
from fruits_p8.config import RunConfig
from fruits_p8.sample import STYLES, fruit_jpeg
from tests.conftest import TEST_SPLITS, TEST_STYLES

pytestmark = pytest.mark.spark
N_IMAGES = sum(TEST_SPLITS.values()) * len(TEST_STYLES)


def config(root, out, cache_dir, **changes) -> RunConfig:
    return RunConfig(**{**dict(input=str(root), output=str(out), k=3, batch_size=8,
                               cache_dir=cache_dir), **changes})


@pytest.mark.parametrize("fault", ["worker crash", "task exception"])
def test_a_failing_task_is_retried_and_the_output_is_complete_exactly_once(
        spark, sample_dir, cache_dir, tmp_path, monkeypatch, fault):
    hard = fault == "worker crash"

    def fail_first_attempt(batches):
        from pyspark import TaskContext

        context = TaskContext.get()
        for batch in batches:
            if context.partitionId() == 0 and context.attemptNumber() == 0:
                if hard:
                    os._exit(3)  # the Python worker dies mid-run
                raise RuntimeError("injected task failure")
            yield batch

    load = pipeline.load_images

    def faulty_load(*args, **kwargs):
        images = load(*args, **kwargs)
        frame = images.frame.mapInArrow(fail_first_attempt, images.frame.schema)
        return dataclasses.replace(images, frame=frame)

    monkeypatch.setattr(pipeline, "load_images", faulty_load)
    out = tmp_path / "out"
    result = pipeline.run(config(sample_dir, out, cache_dir, partitions=3), spark=spark)
    paths = pq.read_table(out / "features").column("path").to_pylist()
    assert result.rows == N_IMAGES == len(paths) == len(set(paths))
    assert result.report["counts"]["cnn_images"] == N_IMAGES  # failed attempts do not count


def test_a_run_killed_mid_write_leaves_nothing_complete_and_a_rerun_completes(
        sample_dir, cache_dir, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "fruits_p8", "run", "--input", str(sample_dir),
               "--output", str(out), "--k", "3", "--master", "local[2]", "--cache-dir",
               str(cache_dir)]
    victim = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and victim.poll() is None:
            if list(tmp_path.glob(".out.incomplete-*/features")):
                break
            time.sleep(0.05)
        assert victim.poll() is None, "the run ended before it started writing"
    finally:
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
    assert not (out / "_SUCCESS").exists()
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert (out / "_SUCCESS").exists()
    assert json.loads((out / "run.json").read_text())["counts"]["rows_written"] == N_IMAGES
    assert not list(tmp_path.glob(".out.*"))


HOLD_LEASE = """
import sys, time
from pathlib import Path
from fruits_p8.io.output import LocalOutput
out = LocalOutput(Path(sys.argv[1]))
out.acquire(replace=False)
print(out.run_id, flush=True)
time.sleep(600)
"""


def test_a_second_run_waits_for_a_live_one_and_takes_over_from_a_dead_one(
        spark, sample_dir, cache_dir, tmp_path, capsys, caplog):
    from fruits_p8.cli import main

    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LEASE, str(out)],
                              stdout=subprocess.PIPE, text=True)
    try:
        run_id = holder.stdout.readline().strip()
        argv = ["run", "--input", str(sample_dir), "--output", str(out), "--k", "3",
                "--cache-dir", str(cache_dir)]
        assert main(argv, spark=spark) == 4
        err = capsys.readouterr().err.strip().splitlines()
        assert f"run {run_id}, pid {holder.pid}" in err[-1]
        assert "being written by another run" in err[-1]
    finally:
        holder.kill()
        holder.wait()
    assert main(argv, spark=spark) == 0  # the holder died: its lease is taken over at once
    assert "taking over the lease" in caplog.text
    assert (out / "_SUCCESS").exists() and not list(tmp_path.glob(".out*"))


def test_incremental_featurizes_only_new_and_changed_images(spark, sample_dir, cache_dir,
                                                            tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    shutil.copytree(sample_dir, root)
    first = pipeline.run(config(root, out, cache_dir, incremental=True), spark=spark)
    assert first.report["counts"]["cnn_images"] == N_IMAGES  # nothing to reuse yet
    before = {r["path"]: r for r in pq.read_table(out / "features").to_pylist()}

    banana = root / "Test" / "Banana"
    for index in (50, 51, 52):  # three new images
        (banana / f"{index}_100.jpg").write_bytes(fruit_jpeg(STYLES[2], "Test", index))
    changed = banana / "0_100.jpg"  # one image replaced by another
    changed.write_bytes(fruit_jpeg(STYLES[2], "Test", 99))
    os.utime(changed, (time.time() + 5, time.time() + 5))
    (banana / "r_1_100.jpg").unlink()  # one removed

    second = pipeline.run(config(root, out, cache_dir, incremental=True), spark=spark)
    counts = second.report["counts"]
    assert counts["files"] == N_IMAGES + 3 - 1 == second.rows
    assert counts["cnn_images"] == 3 + 1
    assert counts["reused"] == N_IMAGES - 2
    after = {r["path"]: r for r in pq.read_table(out / "features").to_pylist()}
    assert not any(p.endswith("Test/Banana/r_1_100.jpg") for p in after)
    for path, row in after.items():
        if path in before and not path.endswith("Test/Banana/0_100.jpg"):
            assert np.array_equal(row["features"], before[path]["features"])
    changed_path = next(p for p in after if p.endswith("Test/Banana/0_100.jpg"))
    assert not np.allclose(after[changed_path]["features"], before[changed_path]["features"])
    assert len(after[changed_path]["pca"]) == 3
    assert second.report["pca"]["fit_passes"] == 0  # the first run's basis is kept
    assert second.report["pca"]["basis"].startswith("kept from the previous output")

    third = pipeline.run(config(root, out, cache_dir, incremental=True, refit=True),
                         spark=spark)
    assert third.report["counts"]["cnn_images"] == 0
    assert third.report["counts"]["reused"] == third.rows
    assert third.report["pca"]["fit_passes"] == 1  # --refit: the featurizer saw no row


def test_incremental_with_other_weights_starts_over(spark, sample_dir, cache_dir, tmp_path):
    out = tmp_path / "out"
    pipeline.run(config(sample_dir, out, cache_dir, limit=8), spark=spark)
    again = pipeline.run(config(sample_dir, out, cache_dir, limit=8, incremental=True,
                                weights="random", backbone="efficientnet_lite0"), spark=spark)
    assert again.report["counts"]["cnn_images"] == 8
    assert again.report["counts"]["reused"] == 0


def test_incremental_after_an_older_preprocessing_starts_over(spark, sample_dir, cache_dir,
                                                             tmp_path, caplog):
    out = tmp_path / "out"
    pipeline.run(config(sample_dir, out, cache_dir, limit=8), spark=spark)
    report = json.loads((out / "run.json").read_text())
    del report["model"]["preprocessing"]  # as an output of an older fruits_p8 says
    (out / "run.json").write_text(json.dumps(report))
    shutil.rmtree(out / "model")  # which had no model/ either
    again = pipeline.run(config(sample_dir, out, cache_dir, limit=8, incremental=True),
                         spark=spark)
    assert again.report["counts"]["cnn_images"] == 8
    assert again.report["counts"]["reused"] == 0
    assert "features were made otherwise (preprocessing" in caplog.text
    third = pipeline.run(config(sample_dir, out, cache_dir, limit=8, incremental=True),
                         spark=spark)
    assert third.report["counts"]["reused"] == 8


def test_incremental_in_another_precision_starts_over(spark, sample_dir, cache_dir, tmp_path,
                                                      caplog):
    from fruits_p8.features.precision import agreement

    out = tmp_path / "out"
    first = pipeline.run(config(sample_dir, out, cache_dir, limit=8, precision="float32"),
                         spark=spark)
    assert first.report["model"]["precision"] == "float32"
    report = json.loads((out / "run.json").read_text())
    del report["model"]["precision"]  # as an output from before --precision says: float32
    (out / "run.json").write_text(json.dumps(report))
    second = pipeline.run(config(sample_dir, out, cache_dir, limit=8, incremental=True),
                          spark=spark)
    assert second.report["counts"]["reused"] == 8
    float32 = pq.read_table(out / "features").sort_by("path")

    third = pipeline.run(config(sample_dir, out, cache_dir, limit=8, incremental=True,
                                precision="bfloat16"), spark=spark)
    assert third.report["counts"]["cnn_images"] == 8
    assert third.report["counts"]["reused"] == 0
    assert third.report["model"]["precision"] == "bfloat16"
    assert "precision float32 (this run: bfloat16)" in caplog.text
    bfloat16 = pq.read_table(out / "features").sort_by("path")
    assert bfloat16.column("path") == float32.column("path")
    found = agreement(np.array(float32.column("features").to_pylist()),
                      np.array(bfloat16.column("features").to_pylist()))
    assert 1e-3 < found.median_relative < 0.1  # the workers' models ran in bfloat16

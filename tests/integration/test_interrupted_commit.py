"""Readers of an output find what `run` would: a commit that a crash interrupted is finished
first; --incremental refuses a basis it would not give."""

import json
import os
import shutil

import pytest

from fruits_p8 import pipeline
from fruits_p8.cli import main
from fruits_p8.config import RunConfig
from fruits_p8.io.models import read_fitted
from fruits_p8.io.output import LocalOutput

pytestmark = pytest.mark.spark
DEAD_RUN = "0123456789ab"


@pytest.fixture(scope="module")
def finished(spark, sample_dir, cache_dir, tmp_path_factory):
    """A finished output, k=2."""
    out = tmp_path_factory.mktemp("finished") / "out"
    pipeline.run(RunConfig(input=str(sample_dir), output=str(out), k=2, batch_size=8,
                           cache_dir=cache_dir), spark=spark)
    return out


def crashed(finished, folder):
    """What a run killed during an --overwrite commit leaves: the old output renamed aside,
    the new one complete in its staging folder, nothing in place."""
    out = folder / "out"
    shutil.copytree(finished, folder / f".out.replaced-{DEAD_RUN}")
    shutil.copytree(finished, folder / f".out.incomplete-{DEAD_RUN}")
    return out


def test_fitted_reads_the_model_of_an_interrupted_commit(finished, tmp_path):
    """fc8355e: "no fitted model at ...", although the next run would have put it back."""
    out = crashed(finished, tmp_path)
    assert not out.exists()
    assert read_fitted(str(out)).k == 2
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_report_reads_an_interrupted_commit(spark, finished, tmp_path, capsys):
    out = crashed(finished, tmp_path)
    assert main(["report", str(out), "--no-data-quality"], spark=spark) == 0
    assert (out / "report" / "index.html").exists()
    listed = json.loads((out / "_MANIFEST").read_text())["files"]
    assert "report/index.html" in listed and "report/quality.json" in listed
    assert sorted(os.listdir(tmp_path)) == ["out"]
    # as an older fruits_p8 wrote it (no manifest): every name is one fruits_p8 gives
    (out / "_MANIFEST").unlink()
    assert LocalOutput(out).state() == "finished"


@pytest.mark.parametrize("asked", [["--k", "3"], ["--variance", "0.9"]])
def test_incremental_refuses_another_basis_in_one_line(spark, finished, sample_dir, cache_dir,
                                                       tmp_path, capsys, asked):
    """fc8355e kept k=2 silently, exit 0."""
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    argv = ["run", "--input", str(sample_dir), "--output", str(out), "--incremental",
            "--cache-dir", str(cache_dir), *asked]
    assert main(argv, spark=spark) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--incremental keeps" in err[0] and "--k 2" in err[0], err
    assert "--refit" in err[0]
    same = RunConfig(input=str(sample_dir), output=str(out), k=2, incremental=True,
                     cache_dir=cache_dir)
    pipeline.preflight(same)  # the same k passes

"""Ctrl-C (SIGINT to the process group) and SIGTERM, sent for real to a running command: one
line and exit 130 or 143, the output's lease and staging gone, no JVM or Python worker left,
the input and the previous output untouched, and the next run goes through.

During featurize the signal comes from outside, once the command says its tasks run; at the
start of listing, of writing and of the commit the command sends it to itself from a hook,
so that it lands exactly there.
"""

import os
import signal
import subprocess
import sys

import pytest

from tests.support.failures import (
    cli,
    cli_env,
    descendants,
    finished_output,
    left_running,
    one_error_line,
    tree_digest,
)

pytestmark = pytest.mark.spark


def run_args(root, out, cache_dir, *more):
    return ["run", "--input", str(root), "--output", str(out), "--weights", "random", "--k",
            "2", "--batch-size", "2", "--cache-dir", str(cache_dir), *more]


def leftovers(tmp_path) -> list[str]:
    """What a run left beside its output: a lease, a staging or a set-aside folder."""
    return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out"))


@pytest.mark.parametrize(("signum", "to_group"), [(signal.SIGINT, True),
                                                   (signal.SIGTERM, False)])
def test_a_signal_during_featurize_stops_the_run_cleanly(
        tmp_path, cache_dir, small_input, signum, to_group):
    out = tmp_path / "out"
    again = signum == signal.SIGINT  # then a rerun without --overwrite; else a previous output
    if not again:
        finished_output(out)
    before, images = tree_digest(out) if out.exists() else None, tree_digest(small_input)
    command = [sys.executable, "-m", "fruits_p8",
               *run_args(small_input, out, cache_dir, *([] if again else ["--overwrite"]))]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=cli_env(tmp_path / "logs"), start_new_session=True)
    seen, running = [], []
    try:
        for line in run.stderr:
            seen.append(line)
            if "featurize: " in line:  # a progress line: the tasks and their workers run
                running = descendants(run.pid)
                (os.killpg if to_group else os.kill)(run.pid, signum)
                break
        err = "".join(seen) + run.stderr.read()
        code = run.wait(timeout=300)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert running, f"the run ended before its featurize progress line:\n{err[-3000:]}"
    assert len(running) >= 3, running  # the CLI, its JVM, a Python worker at least
    assert code == 128 + signum, err[-3000:]
    one_error_line(err, f"interrupted ({signal.Signals(signum).name})")
    assert "featurize stopped after" in err and "featurize done" not in err
    assert left_running(running) == []
    assert leftovers(tmp_path) == []
    assert tree_digest(small_input) == images
    if again:
        assert not out.exists()
        rerun = cli(run_args(small_input, out, cache_dir, "--limit", "4"), tmp_path / "logs")
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert (out / "_SUCCESS").exists() and leftovers(tmp_path) == []
    else:
        assert tree_digest(out) == before


# Sends the signal to the command itself on entering a stage, then waits for it there.
HOOK = """
import os, signal, sys, time
from contextlib import contextmanager
from fruits_p8 import run_report
from fruits_p8.io import output
stage, signum = sys.argv[1], int(sys.argv[2])

def fire():
    os.kill(os.getpid(), signum)
    time.sleep(120)  # the handler raises here

if stage == "commit":
    check = output.LocalOutput._commit_check
    def commit_check(self, replace):
        fire()
        return check(self, replace)
    output.LocalOutput._commit_check = commit_check
else:
    timed = run_report.Timings.stage
    @contextmanager
    def stage_hook(self, name):
        with timed(self, name):
            if name == stage:
                fire()
            yield
    run_report.Timings.stage = stage_hook

from fruits_p8.cli import main
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.parametrize(("stage", "signum"), [("list", signal.SIGTERM),
                                               ("write", signal.SIGINT),
                                               ("commit", signal.SIGTERM)])
def test_a_signal_while_listing_writing_or_committing_leaves_the_previous_output(
        tmp_path, cache_dir, small_input, stage, signum):
    out = tmp_path / "out"
    finished_output(out)
    before, images = tree_digest(out), tree_digest(small_input)
    run = subprocess.run([sys.executable, "-c", HOOK, stage, str(int(signum)),
                          *run_args(small_input, out, cache_dir, "--overwrite", "--limit", "4",
                                    "--master", "local[2]")],
                         capture_output=True, text=True, timeout=600,
                         env=cli_env(tmp_path / "logs"))
    assert run.returncode == 128 + signum, run.stderr[-3000:]
    one_error_line(run.stderr, f"interrupted ({signal.Signals(signum).name})")
    assert tree_digest(out) == before and tree_digest(small_input) == images
    assert leftovers(tmp_path) == []

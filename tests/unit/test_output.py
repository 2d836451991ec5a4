"""Local output commit: staged, renamed into place, never half-visible, never a user's file."""

import json
import os
import socket
import subprocess
import time

import pytest

from fruits_p8.errors import OutputExistsError, OutputInUseError, UsageError
from fruits_p8.io.lease import LeaseRecord, this_machine
from fruits_p8.io.output import LocalOutput, open_output
from fruits_p8.io.s3 import S3Settings


def staged(output: LocalOutput, text: str, replace: bool = False) -> None:
    output.acquire(replace)
    output.begin()
    (output.staging / "features").mkdir()
    (output.staging / "features" / "part-00000.parquet").write_text(text)
    output.write_text("run.json", text)


def committed(out: LocalOutput, text: str, replace: bool = False) -> None:
    staged(out, text, replace)
    out.commit(replace)
    out.release()


def test_commit_makes_everything_visible_at_once(tmp_path):
    out = LocalOutput(tmp_path / "out")
    out.check(replace=False)
    staged(out, "one")
    assert not (tmp_path / "out").exists()  # nothing visible before the commit
    out.commit(replace=False)
    out.release()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "_FRUITS_P8", "_SUCCESS", "features", "run.json"]
    assert json.loads((tmp_path / "out" / "_FRUITS_P8").read_text())["made_by"] == "fruits_p8"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging, no lease left


def test_finished_output_needs_overwrite_and_is_replaced_whole(tmp_path):
    committed(LocalOutput(tmp_path / "out"), "one")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        LocalOutput(tmp_path / "out").check(replace=False)
    committed(LocalOutput(tmp_path / "out"), "two", replace=True)
    assert (tmp_path / "out" / "run.json").read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("foreign", ["notes.txt", "features/notes.txt", "report/old/x.html",
                                     "empty-folder/", "report/holiday.jpg"])
def test_a_folder_holding_a_users_files_is_never_replaced(tmp_path, foreign):
    committed(LocalOutput(tmp_path / "out"), "one")
    target = tmp_path / "out" / foreign
    if foreign.endswith("/"):
        target.mkdir(parents=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("mine")
    for replace in (False, True):
        with pytest.raises(OutputExistsError, match="never replaced"):
            LocalOutput(tmp_path / "out").check(replace=replace)
    # even a run that got past the early check refuses at commit time
    late = LocalOutput(tmp_path / "out")
    late.begin()
    late.write_text("run.json", "late")
    with pytest.raises(OutputExistsError, match="never replaced"):
        late.commit(replace=True)
    assert target.exists()
    assert (tmp_path / "out" / "run.json").read_text() == "one"


def test_a_plain_folder_or_file_of_the_user_is_refused(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "features").mkdir()
    (tmp_path / "mine" / "features" / "part-0.parquet").write_text("a user's Spark output")
    (tmp_path / "afile").write_text("x")
    for name in ("mine", "afile"):
        with pytest.raises(OutputExistsError, match="never replaced"):
            LocalOutput(tmp_path / name).check(replace=True)


def test_an_output_from_before_the_marker_is_still_ours(tmp_path):
    old = tmp_path / "out"
    (old / "features").mkdir(parents=True)
    (old / "features" / "part-00000.parquet").write_text("x")
    (old / "run.json").write_text(json.dumps({"fruits_p8": "0.1.0", "counts": {}}))
    (old / "_SUCCESS").write_text("")
    assert LocalOutput(old).state() == "finished"
    committed(LocalOutput(old), "new", replace=True)
    assert (old / "run.json").read_text() == "new"


def test_a_killed_run_leaves_nothing_marked_complete_and_a_rerun_completes(tmp_path):
    killed = LocalOutput(tmp_path / "out")
    staged(killed, "killed")  # the process dies here: no commit, its lease goes stale
    killed.lease._stop.set()
    child = subprocess.Popen(["true"])
    child.wait()  # a pid of this machine that no process has any more
    dead = LeaseRecord(killed.run_id, socket.gethostname(), child.pid, 0.0, time.time(),
                       this_machine())
    (tmp_path / ".out.lease").write_text(dead.to_text())
    assert not (tmp_path / "out").exists()
    committed(LocalOutput(tmp_path / "out"), "rerun")
    assert (tmp_path / "out" / "run.json").read_text() == "rerun"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # stale staging removed


def test_a_commit_killed_between_its_renames_is_put_back_by_the_next_run(tmp_path):
    committed(LocalOutput(tmp_path / "out"), "old")
    # the state a kill between the two renames leaves: the old output aside, the new staged
    os.rename(tmp_path / "out", tmp_path / ".out.replaced-0123456789ab")
    dead = LocalOutput(tmp_path / "out", run_id="0123456789ab")
    dead.begin()
    dead.write_text("run.json", "new")
    dead.write_text("_SUCCESS", "")
    # the next run finishes the dead run's commit (its staging is complete), then refuses
    # to replace that finished output without --overwrite
    with pytest.raises(OutputExistsError, match="--overwrite"):
        LocalOutput(tmp_path / "out").acquire(replace=False)
    assert (tmp_path / "out" / "run.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_commit_killed_after_setting_the_old_output_aside_puts_it_back(tmp_path):
    committed(LocalOutput(tmp_path / "out"), "old")
    os.rename(tmp_path / "out", tmp_path / ".out.replaced-0123456789ab")  # no staging left
    with pytest.raises(OutputExistsError, match="--overwrite"):
        LocalOutput(tmp_path / "out").acquire(replace=False)
    assert (tmp_path / "out" / "run.json").read_text() == "old"


def test_a_failed_rename_into_place_puts_the_old_output_back(tmp_path, monkeypatch):
    committed(LocalOutput(tmp_path / "out"), "old")
    out = LocalOutput(tmp_path / "out")
    staged(out, "new", replace=True)
    real = type(out.staging).rename

    def fail_into_place(self, target):
        if str(self) == str(out.staging):
            raise OSError("disk gone")
        return real(self, target)

    monkeypatch.setattr(type(out.staging), "rename", fail_into_place)
    with pytest.raises(OSError):
        out.commit(replace=True)
    assert (tmp_path / "out" / "run.json").read_text() == "old"
    assert (tmp_path / "out" / "_SUCCESS").exists()


def test_staging_like_folders_of_the_user_are_left_alone(tmp_path):
    mine = tmp_path / ".out.incomplete-mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("mine")
    committed(LocalOutput(tmp_path / "out"), "one")
    assert (mine / "thesis.tex").read_text() == "mine"


def test_a_second_run_is_refused_while_the_first_holds_the_output(tmp_path):
    first = LocalOutput(tmp_path / "out")
    first.acquire(replace=False)
    with pytest.raises(OutputInUseError, match=first.run_id):
        LocalOutput(tmp_path / "out").check(replace=True)
    with pytest.raises(OutputInUseError, match=first.run_id):
        LocalOutput(tmp_path / "out").acquire(replace=True)
    first.release()
    LocalOutput(tmp_path / "out").check(replace=False)


def test_abort_removes_the_staging_folder(tmp_path):
    out = LocalOutput(tmp_path / "out")
    staged(out, "x")
    out.abort()
    out.release()
    assert list(tmp_path.iterdir()) == []


def test_an_s3_output_needs_a_folder_inside_the_bucket():
    with pytest.raises(UsageError, match="s3://bucket/features"):
        open_output("s3://bucket/", S3Settings())
    assert open_output("s3://bucket/out", S3Settings()).prefix == "out"

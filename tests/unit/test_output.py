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
from fruits_p8.io.paths import Location
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
        "_FRUITS_P8", "_MANIFEST", "_SUCCESS", "features", "run.json"]
    assert json.loads((tmp_path / "out" / "_FRUITS_P8").read_text())["made_by"] == "fruits_p8"
    manifest = json.loads((tmp_path / "out" / "_MANIFEST").read_text())
    assert manifest["files"] == ["_FRUITS_P8", "_SUCCESS", "features/part-00000.parquet",
                                 "run.json"]
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
        open_output(Location.parse("s3://bucket/"), S3Settings())
    assert open_output(Location.parse("s3://bucket/out"), S3Settings()).prefix == "out"


LAYOUT_NAMED = ["report/my_chart.png", "features/part-my-notes.txt",
                "features/part-00007.parquet", "model/metadata/part-00001", "report/index.html"]


@pytest.mark.parametrize("mine", LAYOUT_NAMED)
def test_a_users_file_named_like_ours_is_never_deleted_by_overwrite(tmp_path, mine):
    """The manifest lists what the run wrote: anything else is the user's, whatever its
    name (fc8355e took report/my_chart.png and features/part-my-notes.txt for its own and
    deleted them with --overwrite)."""
    committed(LocalOutput(tmp_path / "out"), "one")
    target = tmp_path / "out" / mine
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("mine")
    with pytest.raises(OutputExistsError, match=f"never replaced.*{mine}|{mine}.*never"):
        LocalOutput(tmp_path / "out").check(replace=True)
    late = LocalOutput(tmp_path / "out")  # past the early check: refused at the commit
    late.begin()
    late.write_text("run.json", "late")
    with pytest.raises(OutputExistsError, match="never replaced"):
        late.commit(replace=True)
    late.abort()
    assert target.read_text() == "mine"
    assert (tmp_path / "out" / "run.json").read_text() == "one"


def test_the_refusal_names_a_few_of_the_users_files_in_one_line(tmp_path):
    committed(LocalOutput(tmp_path / "out"), "one")
    for name in ("a.txt", "b.txt", "c.txt", "d.txt", "e.txt"):
        (tmp_path / "out" / name).write_text("mine")
    with pytest.raises(OutputExistsError) as refused:
        LocalOutput(tmp_path / "out").check(replace=True)
    message = str(refused.value)
    assert "\n" not in message and "(a.txt, b.txt, c.txt and 2 more)" in message


def test_overwrite_removes_exactly_the_manifests_files_report_included(tmp_path):
    committed(LocalOutput(tmp_path / "out"), "one")
    reported = LocalOutput(tmp_path / "out")
    reported.publish("report/index.html", b"<html></html>")
    reported.publish("report/my_page.png", b"a name no layout rule knows")  # as written
    listed = json.loads((tmp_path / "out" / "_MANIFEST").read_text())["files"]
    assert {"report/index.html", "report/my_page.png"} <= set(listed)
    assert reported.state() == "finished"
    committed(LocalOutput(tmp_path / "out"), "two", replace=True)
    assert not (tmp_path / "out" / "report").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def older(root, marker: bool = True) -> None:
    """An output as fruits_p8 wrote it before the manifest (fc8355e), or before the marker."""
    (root / "features").mkdir(parents=True)
    (root / "features" / "part-00000-0a1b-c000.snappy.parquet").write_text("x")
    (root / "report").mkdir()
    (root / "report" / "index.html").write_text("x")
    (root / "run.json").write_text(json.dumps({"fruits_p8": "0.1.0", "counts": {}}))
    if marker:
        (root / "_FRUITS_P8").write_text('{"made_by": "fruits_p8"}')
    (root / "_SUCCESS").write_text("")


@pytest.mark.parametrize("marker", [True, False])
def test_an_older_output_is_replaced_only_when_every_name_is_one_we_give(tmp_path, marker):
    older(tmp_path / "out", marker)
    (tmp_path / "out" / "report" / "my_chart.png").write_text("mine")
    with pytest.raises(OutputExistsError, match="kept no list of the files it wrote"):
        LocalOutput(tmp_path / "out").check(replace=True)
    assert (tmp_path / "out" / "report" / "my_chart.png").read_text() == "mine"
    (tmp_path / "out" / "report" / "my_chart.png").unlink()
    committed(LocalOutput(tmp_path / "out"), "new", replace=True)
    assert (tmp_path / "out" / "run.json").read_text() == "new"
    assert not (tmp_path / "out" / "report").exists()


def test_a_staging_folder_an_older_version_left_without_its_marker_is_cleaned(
        tmp_path, caplog):
    """fc8355e removed a failed run's staging with rmtree, the marker among the first: a
    second Ctrl-C during it left the rest, reported on every later run as files fruits_p8
    did not write and never cleaned."""
    left = tmp_path / ".out.incomplete-0123456789ab"
    (left / "features").mkdir(parents=True)
    (left / "features" / "part-00003.parquet").write_text("x")
    (left / "model" / "metadata").mkdir(parents=True)
    (left / "model" / "metadata" / "part-00000").write_text("x")
    mine = tmp_path / ".out.incomplete-0123456789ac"  # our name, a user's file inside
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    committed(LocalOutput(tmp_path / "out"), "one")
    assert not left.exists()
    assert (mine / "notes.txt").read_text() == "mine"
    assert "did not write" in caplog.text and str(left) not in caplog.text


def test_ctrl_c_at_any_line_of_an_abort_leaves_what_the_next_run_cleans(tmp_path):
    """The staging goes _SUCCESS first and its marker last: interrupted anywhere, what is
    left is still recognisably ours, and the next run removes it."""
    from fruits_p8.io import output_base, output_local
    from tests.unit.test_lease import interrupted

    for step in range(1, 400):
        out = LocalOutput(tmp_path / "out")
        staged(out, "x")
        (out.staging / "model" / "metadata").mkdir(parents=True)
        (out.staging / "model" / "metadata" / "part-00000").write_text("x")
        out.release()
        if not interrupted(step, out.abort, {output_base.__file__, output_local.__file__}):
            break
        nxt = LocalOutput(tmp_path / "out")
        nxt.acquire(replace=False)
        nxt.release()
        assert sorted(p.name for p in tmp_path.iterdir()) == [], step
    else:
        pytest.fail("the abort never completed")
    assert step > 3 and list(tmp_path.iterdir()) == []


def test_a_reader_finishes_a_commit_a_crash_interrupted(tmp_path):
    """What `report` and `--fitted` do before reading (fc8355e: "no finished output")."""
    committed(LocalOutput(tmp_path / "out"), "old")
    os.rename(tmp_path / "out", tmp_path / ".out.replaced-0123456789ab")
    dead = LocalOutput(tmp_path / "out", run_id="0123456789ab")
    dead.begin()
    dead.write_text("run.json", "new")
    dead._seal()  # the commit was killed after its seal, before its renames
    reader = open_output(Location.of_path(tmp_path / "out"), S3Settings())
    assert reader.state() == "absent"
    reader.settle()
    assert reader.state() == "finished"
    assert (tmp_path / "out" / "run.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_reader_does_not_settle_under_a_live_run(tmp_path):
    committed(LocalOutput(tmp_path / "out"), "old")
    os.rename(tmp_path / "out", tmp_path / ".out.replaced-0123456789ab")
    holder = LocalOutput(tmp_path / "out")
    holder.lease = holder.new_lease()
    holder.lease.acquire()  # a live run in the middle of its commit
    with pytest.raises(OutputInUseError, match="being written by another run"):
        open_output(Location.of_path(tmp_path / "out"), S3Settings()).settle()
    holder.release()
    assert (tmp_path / ".out.replaced-0123456789ab" / "run.json").read_text() == "old"

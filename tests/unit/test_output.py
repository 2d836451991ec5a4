"""Local output commit: staged, renamed into place, never half-visible."""

import pytest

from fruits_p8.errors import OutputExistsError
from fruits_p8.io.output import LocalOutput, output_state


def test_output_state_from_top_level_names():
    assert output_state(set()) == "absent"
    assert output_state({"features", "errors", "run.json", "_SUCCESS"}) == "finished"
    assert output_state({"features"}) == "unfinished"
    assert output_state({"features", "notes.txt"}) == "foreign"


def staged(output: LocalOutput, text: str) -> None:
    output.begin()
    (output.staging / "features").mkdir()
    output.write_text("run.json", text)


def test_commit_makes_everything_visible_at_once(tmp_path):
    out = LocalOutput(tmp_path / "out")
    out.check(overwrite=False)
    staged(out, "one")
    assert not (tmp_path / "out").exists()  # nothing visible before the commit
    out.commit(overwrite=False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "_SUCCESS", "features", "run.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_finished_output_needs_overwrite_and_is_replaced_whole(tmp_path):
    first = LocalOutput(tmp_path / "out")
    staged(first, "one")
    first.commit(overwrite=False)
    with pytest.raises(OutputExistsError):
        LocalOutput(tmp_path / "out").check(overwrite=False)
    second = LocalOutput(tmp_path / "out")
    staged(second, "two")
    second.commit(overwrite=True)
    assert (tmp_path / "out" / "run.json").read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_killed_run_leaves_nothing_marked_complete_and_a_rerun_completes(tmp_path):
    killed = LocalOutput(tmp_path / "out")
    staged(killed, "killed")  # the process dies here: no commit
    assert not (tmp_path / "out").exists()
    rerun = LocalOutput(tmp_path / "out")
    rerun.check(overwrite=False)
    staged(rerun, "rerun")
    rerun.commit(overwrite=False)
    assert (tmp_path / "out" / "run.json").read_text() == "rerun"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # stale staging removed


def test_unfinished_output_is_replaced_without_overwrite(tmp_path):
    (tmp_path / "out" / "features").mkdir(parents=True)  # a commit interrupted mid-way
    out = LocalOutput(tmp_path / "out")
    out.check(overwrite=False)
    staged(out, "fresh")
    out.commit(overwrite=False)
    assert (tmp_path / "out" / "_SUCCESS").exists()


def test_abort_removes_the_staging_folder(tmp_path):
    out = LocalOutput(tmp_path / "out")
    staged(out, "x")
    out.abort()
    assert list(tmp_path.iterdir()) == []


def test_an_s3_output_needs_a_folder_inside_the_bucket():
    from fruits_p8.errors import UsageError
    from fruits_p8.io.output import open_output
    from fruits_p8.io.s3 import S3Settings

    with pytest.raises(UsageError, match="s3://bucket/features"):
        open_output("s3://bucket/", S3Settings(), via="boto3")
    assert open_output("s3://bucket/out", S3Settings(), via="boto3").prefix == "out"

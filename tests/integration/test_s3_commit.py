"""The S3 commit against a real moto server: a failure at any step leaves a complete output,
and two runs never write one output at once."""

from dataclasses import dataclass

import pytest

from fruits_p8.errors import OutputExistsError, OutputInUseError, StorageError
from fruits_p8.io.output import S3Output
from fruits_p8.io.ownership import MANIFEST, MARKER
from fruits_p8.io.paths import Location
from fruits_p8.io.s3 import S3Settings

MUTATING = {"put_object", "copy_object", "delete_objects", "delete_object"}


class Faults:
    """Counts the mutating S3 calls and fails the `fail_at`-th one."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail_at: int | None = None


class FailingClient:
    failure: type[BaseException] = ConnectionError

    def __init__(self, client, faults: Faults) -> None:
        self._client, self._faults = client, faults

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if name not in MUTATING:
            return attribute

        def call(*args, **kwargs):
            self._faults.calls += 1
            if self._faults.calls == self._faults.fail_at:
                raise self.failure(f"injected failure in {name}")
            return attribute(*args, **kwargs)
        return call


@dataclass(frozen=True)
class FaultySettings(S3Settings):
    faults: Faults | None = None

    def client(self):
        return FailingClient(super().client(), self.faults)


def contents(output: S3Output, where: str) -> dict[str, bytes]:
    """Every file under a location but the marker and the manifest (whose run ids differ),
    with its bytes."""
    return {name: output._read(where, name) for name in output.files(where)
            if name not in (MARKER, MANIFEST)}


def stage(output: S3Output, tag: str, parts: int) -> dict[str, bytes]:
    output.begin()
    files = {"run.json": f'{{"tag": "{tag}"}}'.encode(), "features/_SUCCESS": b"",
             "errors/part-00000.parquet": tag.encode(), "errors/_SUCCESS": b""}
    files.update({f"features/part-{i:05d}.parquet": f"{tag}{i}".encode() for i in range(parts)})
    for name, data in files.items():
        output._put(f"{output.prefix}.incomplete-{output.run_id}/{name}", data)
    return {**files, "_SUCCESS": b""}


def complete(output: S3Output, where: str, expected: dict[str, bytes]) -> bool:
    """Finished, with these files, and (where it has a manifest) a manifest of just them."""
    listed = output.owned(where).listed
    return (output.state(where) == "finished" and contents(output, where) == expected
            and (listed is None or listed == {*expected, MARKER}))


@pytest.fixture
def commit_world(s3):
    settings, bucket = s3
    faults = Faults()
    faulty = FaultySettings(settings.region, settings.endpoint_url, faults)
    settings.client().create_bucket(Bucket=bucket,
                                    CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
    return faulty, faults, f"s3://{bucket}/features/test"


def run_commit(settings, uri, tag, parts, replace, faults=None, fail_at=None):
    output = S3Output(Location.parse(uri), settings)
    output.acquire(replace)
    expected = stage(output, tag, parts)
    if faults is not None:
        faults.calls, faults.fail_at = 0, fail_at
    try:
        output.commit(replace)
    except StorageError:
        output.abort()
        raise
    finally:
        if faults is not None:
            faults.fail_at = None
        output.release()
    return output, expected


class Killed(BaseException):
    """The process dies here: nothing after it runs (no rescue, no abort, no release)."""


def make_legacy(output: S3Output, uri: str) -> None:
    """Turn a finished output into one from before the marker."""
    for name in (MARKER, MANIFEST):
        output.client.delete_object(Bucket=output.bucket, Key=f"{output.prefix}/{name}")
    output._put(f"{output.prefix}/run.json", b'{"fruits_p8": "0.1.0", "counts": {}}')


@pytest.mark.parametrize("how", ["error", "kill"])
def test_a_failure_at_every_step_of_the_commit_leaves_a_complete_output(
        commit_world, monkeypatch, how):
    """`error`: an S3 call fails, the commit rescues and the run aborts. `kill`: the process
    dies at that call, over an output from before the marker; the next run recovers."""
    settings, faults, uri = commit_world
    run_commit(settings, uri, "old", 3, replace=False)
    run_commit(settings, uri, "new", 2, replace=True, faults=faults)
    steps = faults.calls
    assert steps >= 15  # marker, copies aside, deletes, copies in, _SUCCESS, clean-up

    def put_back_old() -> dict[str, bytes]:
        output, old = run_commit(settings, uri, "old", 3, replace=True)
        if how == "kill":
            make_legacy(output, uri)
            old = {**old, "run.json": b'{"fruits_p8": "0.1.0", "counts": {}}'}
        return old

    old = put_back_old()
    if how == "kill":
        monkeypatch.setattr(FailingClient, "failure", Killed)
        monkeypatch.setattr(S3Output, "_rescue", lambda self, aside: None)  # nothing runs
    for fail_at in range(1, steps + 2):
        output = S3Output(Location.parse(uri), settings)
        output.acquire(True)
        new = stage(output, "new", 2)
        faults.calls, faults.fail_at = 0, fail_at
        try:
            output.commit(True)
        except StorageError as exc:
            assert "injected failure" in str(exc)
            output.abort()  # as the pipeline does: must not drop the only complete copy
        except Killed:
            output.lease._stop.set()
            output.lease.store.client.delete_object(  # the lease of a dead run: taken over
                Bucket=output.bucket, Key=f"{output.prefix}.lease")
            output.lease = None
        faults.fail_at = None
        staging, aside = output.staging, f"{uri}.replaced-{output.run_id}"
        assert (complete(output, uri, old) or complete(output, uri, new)
                or complete(output, staging, new) or complete(output, aside, old)), fail_at
        output.release()
        # the next run finds a complete output in place and no leftovers of ours
        nxt = S3Output(Location.parse(uri), settings)
        nxt.acquire(True)
        assert complete(nxt, uri, old) or complete(nxt, uri, new), fail_at
        assert nxt._siblings(".incomplete-") == nxt._siblings(".replaced-") == []
        moved_on = complete(nxt, uri, new)
        nxt.release()
        if moved_on:
            old = put_back_old()


def test_a_prefix_holding_other_objects_is_never_replaced(commit_world):
    settings, _, uri = commit_world
    run_commit(settings, uri, "old", 1, replace=False)
    probe = S3Output(Location.parse(uri), settings)
    probe._put(f"{probe.prefix}/notes.txt", b"mine")
    for replace in (False, True):
        with pytest.raises(OutputExistsError, match="notes.txt"):
            S3Output(Location.parse(uri), settings).check(replace)
    assert probe._read(uri, "notes.txt") == b"mine"
    assert probe.state() == "foreign"


@pytest.mark.parametrize("mine", ["report/my_chart.png", "features/part-my-notes.txt",
                                  "features/part-00009.parquet"])
def test_objects_named_like_ours_that_the_manifest_does_not_list_are_never_replaced(
        commit_world, mine):
    """fc8355e took them for its own (by their names) and deleted them with --overwrite."""
    settings, _, uri = commit_world
    output, _ = run_commit(settings, uri, "old", 1, replace=False)
    output.publish("report/index.html", b"<html></html>")  # listed before it is written
    assert "report/index.html" in output.owned().listed
    assert output.state() == "finished"
    output._put(f"{output.prefix}/{mine}", b"mine")
    with pytest.raises(OutputExistsError, match=mine):
        S3Output(Location.parse(uri), settings).check(True)
    with pytest.raises(OutputExistsError, match=mine):
        run_commit(settings, uri, "new", 1, replace=True)
    assert output._read(uri, mine) == b"mine"
    assert output._read(uri, "run.json") == b'{"tag": "old"}'


def test_emrfs_folder_markers_keep_an_output_ours_and_are_cleaned(commit_world):
    settings, _, uri = commit_world
    output, _ = run_commit(settings, uri, "old", 1, replace=False)
    output._put(f"{output.prefix}/features_$folder$", b"")
    assert output.state() == "finished"
    # EMRFS writing a staging leaves markers inside it and beside it
    emrfs = S3Output(Location.parse(uri), settings)
    emrfs.acquire(True)
    stage(emrfs, "new", 1)
    staging_prefix = f"{emrfs.prefix}.incomplete-{emrfs.run_id}"
    emrfs._put(f"{staging_prefix}/features_$folder$", b"")
    emrfs._put(f"{staging_prefix}_$folder$", b"")
    emrfs._put(f"{emrfs.prefix}.incomplete-0123456789ab_$folder$", b"")  # a killed run's
    emrfs.commit(True)
    emrfs.release()
    # the next run cleans up
    S3Output(Location.parse(uri), settings).leased(True).__enter__().release()
    bucket = output.bucket
    left = sorted(o["Key"] for o in settings.client().list_objects_v2(
        Bucket=bucket, Prefix="features/")["Contents"])
    assert [k for k in left if k.endswith("_$folder$")] == []
    assert output._read(uri, "run.json") == b'{"tag": "new"}'


def test_a_second_run_is_refused_while_the_first_holds_the_s3_output(commit_world):
    settings, _, uri = commit_world
    first = S3Output(Location.parse(uri), settings)
    first.acquire(False)
    with pytest.raises(OutputInUseError, match=first.run_id):
        S3Output(Location.parse(uri), settings).acquire(True)
    with pytest.raises(OutputInUseError, match=first.run_id):
        S3Output(Location.parse(uri), settings).check(True)
    first.release()
    run_commit(settings, uri, "second", 1, replace=False)


def test_a_missing_bucket_is_one_line_before_any_work(s3, tmp_path, capsys):
    from fruits_p8.cli import main

    settings, bucket = s3
    (tmp_path / "in" / "A").mkdir(parents=True)
    code = main(["run", "--input", str(tmp_path / "in"), "--output", f"s3://{bucket}/out",
                 "--endpoint-url", settings.endpoint_url])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 7
    assert len(err) == 1 and f"bucket {bucket} does not exist" in err[0]

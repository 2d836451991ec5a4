"""A run on a hostile tree: every matching file ends as exactly one feature or error row.

On fc8355e (Hadoop's listing) names starting with '_' or '.', folders so named, non-UTF-8
names, ':' in a name and files deleted after the listing vanished without a trace; the input
was a pattern; a symlink loop multiplied the rows; a newline gave a row and a false error.
"""

import os

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fruits_p8 import pipeline
from fruits_p8.config import RunConfig
from fruits_p8.io.listing import CountMismatch, Listing
from fruits_p8.pipeline import Featurized, check_counts
from fruits_p8.sample import STYLES, fruit_jpeg

pytestmark = pytest.mark.spark

GOOD = [b"Apple/_DSC1234.jpg", b"Apple/.hidden.jpg", b"_Label/a.jpg", b".Label/b.jpg",
        b"Apple/a:b.jpg", b"Apple/x\ny.jpg", b"Caf\xe9/latin1.jpg", b"Apple/\xff\xfe.jpg",
        b"Apple/100%25 #1 ?.jpg", b"Apple/[1]{a,b}*.jpg", b"Apple Braeburn/3_100.jpg"]


def _write(path: bytes, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)


def _shown(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


@pytest.fixture(scope="module")
def hostile_run(spark, cache_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    root = os.fsencode(base / "in[1]")
    for i, name in enumerate(GOOD):
        _write(os.path.join(root, name), fruit_jpeg(STYLES[i % 3], "Test", i))
    _write(os.path.join(root, b"Apple/gone.jpg"), fruit_jpeg(STYLES[0], "Test", 99))
    _write(os.fsencode(base / "in1" / "Apple" / "neighbour.jpg"), fruit_jpeg(STYLES[0], "Test", 1))
    os.symlink("..", os.path.join(root, b"Apple/loop"))
    os.symlink("/nowhere.jpg", os.path.join(root, b"Apple/dangling.jpg"))
    with open(os.path.join(root, b"Apple/huge.jpg"), "wb") as handle:
        handle.truncate(3 * 2**30)  # sparse: never read, an error row from its size
    _write(os.path.join(root, b"root_file.jpg"), fruit_jpeg(STYLES[0], "Test", 5))

    load = pipeline.load_images

    def load_then_delete(*args, **kwargs):  # a file deleted between listing and reading
        images = load(*args, **kwargs)
        os.unlink(os.path.join(root, b"Apple/gone.jpg"))
        return images

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(pipeline, "load_images", load_then_delete)
    try:
        out = base / "out"
        result = pipeline.run(RunConfig(input=os.fsdecode(root), output=str(out), k=3,
                                        batch_size=8, cache_dir=cache_dir), spark=spark)
    finally:
        monkeypatch.undo()
    return result, out, _shown(root)


def test_every_file_is_one_row_and_the_sums_hold(hostile_run):
    result, out, root = hostile_run
    features = pq.read_table(out / "features").to_pylist()
    errors = pq.read_table(out / "errors").to_pylist()
    paths = [r["path"] for r in features + errors]
    assert len(paths) == len(set(paths)) == result.report["counts"]["files"]
    assert result.report["counts"]["files"] == result.rows + result.errors
    assert sorted(paths) == sorted(f"file:{root}/{_shown(n)}" for n in GOOD + [
        b"Apple/gone.jpg", b"Apple/dangling.jpg", b"Apple/huge.jpg", b"root_file.jpg"])
    labels = {r["path"].removeprefix(f"file:{root}/"): r["label"] for r in features}
    assert labels == {_shown(n): _shown(n.rsplit(b"/", 1)[0]) for n in GOOD} | {
        "root_file.jpg": ""}
    kinds = {r["path"].removeprefix(f"file:{root}/"): r["error_kind"] for r in errors}
    assert kinds == {"Apple/gone.jpg": "missing", "Apple/dangling.jpg": "missing",
                     "Apple/huge.jpg": "file_too_large"}
    assert result.report["counts"]["links_not_followed"] == 1


def test_the_input_is_read_as_a_folder_never_as_a_pattern(hostile_run):
    result, out, _ = hostile_run
    paths = pq.read_table(out / "features").column("path").to_pylist()
    assert not [p for p in paths if "neighbour" in p]  # in1/ matches the pattern in[1]


def test_a_count_that_does_not_add_up_stops_the_run_before_the_commit():
    listing = Listing("file:/in", files=tuple(range(3)))  # three listed files
    check_counts(listing, Featurized(None, rows=2, errors=1, reused=None, paths=3))
    with pytest.raises(CountMismatch, match="3 files were listed"):
        check_counts(listing, Featurized(None, rows=2, errors=0, reused=None, paths=2))
    with pytest.raises(CountMismatch):  # a path twice
        check_counts(listing, Featurized(None, rows=3, errors=0, reused=None, paths=2))


NAME_BYTES = st.binary(min_size=1, max_size=30).filter(
    lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b".."))


@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(NAME_BYTES, min_size=2, max_size=4, unique=True))
def test_a_run_reads_names_of_any_bytes_and_each_file_is_one_row(spark, cache_dir,
                                                                 tmp_path_factory, names):
    base = tmp_path_factory.mktemp("bytes")
    root = os.fsencode(base / "in")
    for i, name in enumerate(names):  # a name of any bytes, as a file and as a label folder
        _write(os.path.join(root, name, name + b".jpg"), fruit_jpeg(STYLES[i % 3], "Test", i))
    result = pipeline.run(RunConfig(input=os.fsdecode(root), output=str(base / "out"), k=1,
                                    batch_size=8, weights="random", cache_dir=cache_dir),
                          spark=spark)
    rows = pq.read_table(base / "out" / "features").to_pylist()
    assert result.errors == 0 and result.rows == result.report["counts"]["files"] == len(names)
    assert sorted(r["label"] for r in rows) == sorted(_shown(n) for n in names)

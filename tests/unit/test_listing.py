"""The project's own listing: every matching file once, whatever its name, no pattern, no loop."""

import os
import threading
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fruits_p8.errors import InputError, UsageError
from fruits_p8.io.glob import compile_glob, name_matches
from fruits_p8.io.listing import display, list_local, list_s3
from fruits_p8.io.paths import label_from_path
from fruits_p8.io.reading import read_local
from fruits_p8.io.s3 import S3Object

# Bytes a Linux file name may hold: anything but '/' and NUL, up to 255 bytes.
NAME_BYTES = st.binary(min_size=1, max_size=40).filter(
    lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b".."))
PREFIXES = st.sampled_from([b"", b"_", b".", b"_DSC", b"a:b", b"x\ny", b"[1]", b"{a,b}",
                            b"%20", b"\xff\xfe", b"*?", b"#"])


def _write(path: bytes, data: bytes = b"img") -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(folders=st.lists(st.tuples(PREFIXES, NAME_BYTES), min_size=1, max_size=3),
       files=st.lists(st.tuples(PREFIXES, NAME_BYTES), min_size=1, max_size=8))
def test_every_file_is_listed_exactly_once_whatever_its_name(tmp_path_factory, folders, files):
    root = os.fsencode(tmp_path_factory.mktemp("in"))
    expected = {}
    for i, (prefix, name) in enumerate(files):
        folder_prefix, folder_name = folders[i % len(folders)]
        folder = (folder_prefix + folder_name)[:200]
        if folder in (b".", b".."):
            folder += b"x"
        path = os.path.join(root, folder, (prefix + name)[:200] + b".jpg")
        _write(path)
        expected[path] = display(folder)
    listing = list_local(os.fsdecode(root), "*.jpg")
    assert sorted(f.source for f in listing.files) == sorted(expected)
    assert len({f.path for f in listing.files}) == listing.count == len(expected)
    assert {f.source: f.label for f in listing.files} == expected
    assert all(f.problem is None for f in listing.files)


def test_names_hadoop_hides_are_counted_unless_asked(tmp_path):
    for name in ["Apple/_DSC1234.jpg", "Apple/.x.jpg", "_Label/a.jpg", ".Label/b.jpg",
                 "Apple/ok.jpg", "Apple/notes.txt"]:
        _write(os.fsencode(tmp_path / name))
    assert list_local(str(tmp_path), "*.jpg").count == 5
    hidden = list_local(str(tmp_path), "*.jpg", skip_hidden=True)
    assert hidden.count == 3 and hidden.skipped == {"hidden": 2}
    assert sorted(f.label for f in hidden.files) == ["Apple", "Apple", "_Label"]


def test_the_root_is_a_folder_not_a_pattern(tmp_path):
    for name in ["in[1]/A/x.jpg", "in1/A/y.jpg", "in1/A/z.jpg", "in{a,b}/A/w.jpg", "ina/A/v.jpg"]:
        _write(os.fsencode(tmp_path / name))
    assert [f.path.rsplit("/", 1)[1] for f in list_local(str(tmp_path / "in[1]"), "*").files] \
        == ["x.jpg"]
    assert [f.path.rsplit("/", 1)[1] for f in list_local(str(tmp_path / "in{a,b}"), "*").files] \
        == ["w.jpg"]


def test_symlink_loops_end_the_walk_and_list_no_file_twice(tmp_path):
    for i in range(20):
        _write(os.fsencode(tmp_path / "Apple" / f"{i}.jpg"))
    os.symlink("..", tmp_path / "Apple" / "loop")
    (tmp_path / "Apple" / "deep").mkdir()
    os.symlink("../..", tmp_path / "Apple" / "deep" / "loop2")
    os.symlink(tmp_path / "Apple", tmp_path / "Pear")  # a second way into the same folder
    found = {}
    walk = threading.Thread(target=lambda: found.update(
        listing=list_local(str(tmp_path), "*.jpg")), daemon=True)
    walk.start()
    walk.join(timeout=30)
    assert not walk.is_alive(), "the listing did not end"
    listing = found["listing"]
    assert listing.count == 20 and listing.links_not_followed == 3


def test_a_file_directly_under_the_root_is_read_with_an_empty_label(tmp_path):
    _write(os.fsencode(tmp_path / "loose.jpg"))
    _write(os.fsencode(tmp_path / "Kiwi" / "k.jpg"))
    listing = list_local(str(tmp_path), "*.jpg")
    problems = {f.path.rsplit("/", 1)[1]: (f.label, f.problem) for f in listing.files}
    assert problems == {"loose.jpg": ("", None), "k.jpg": ("Kiwi", None)}
    assert listing.unlabelled == 1


def test_links_to_files_are_followed_and_dangling_ones_are_errors(tmp_path):
    _write(os.fsencode(tmp_path / "Apple" / "a.jpg"))
    os.symlink(tmp_path / "Apple" / "a.jpg", tmp_path / "Apple" / "b.jpg")
    os.symlink(tmp_path / "nowhere.jpg", tmp_path / "Apple" / "c.jpg")
    os.mkfifo(tmp_path / "Apple" / "d.jpg")
    listing = list_local(str(tmp_path), "*.jpg")
    problems = {f.path.rsplit("/", 1)[1]: f.problem for f in listing.files}
    assert problems == {"a.jpg": None, "b.jpg": None, "c.jpg": "missing", "d.jpg": "not_a_file"}


def test_a_huge_file_is_an_error_from_its_listed_size_alone(tmp_path):
    huge = tmp_path / "Apple" / "huge.jpg"
    huge.parent.mkdir()
    with open(huge, "wb") as handle:
        handle.truncate(3 * 2**30)  # sparse: 3 GB that take no disk
    listing = list_local(str(tmp_path), "*.jpg", max_file_size=10 * 2**20)
    (file,) = listing.files
    assert (file.problem, file.length) == ("file_too_large", 3 * 2**30)


def test_a_file_that_changes_or_goes_after_the_listing_is_an_error_not_a_gap(tmp_path):
    for name in ("gone.jpg", "grown.jpg", "same.jpg"):
        _write(os.fsencode(tmp_path / "A" / name), b"12345")
    listing = {f.path.rsplit("/", 1)[1]: f for f in list_local(str(tmp_path), "*.jpg").files}
    (tmp_path / "A" / "gone.jpg").unlink()
    with open(tmp_path / "A" / "grown.jpg", "ab") as handle:
        handle.write(b"678")
    kinds = {name: read_local(f.source, f.length, f.modified).error
             for name, f in listing.items()}
    assert kinds == {"gone.jpg": "missing", "grown.jpg": "changed", "same.jpg": None}
    same = listing["same.jpg"]
    assert read_local(same.source, same.length, same.modified).content == b"12345"


def test_nesting_deeper_than_the_bound_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr("fruits_p8.io.listing.MAX_DEPTH", 3)
    _write(os.fsencode(tmp_path / "a" / "b" / "c" / "d" / "x.jpg"))
    with pytest.raises(InputError, match="nested deeper than 3"):
        list_local(str(tmp_path), "*.jpg")


def test_s3_keys_are_labelled_below_the_prefix_and_hidden_ones_count():
    when = datetime(2026, 1, 1, tzinfo=UTC)
    keys = ["My Fruits/Apple/_a.jpg", "My Fruits/Apple/.b.jpg", "My Fruits/c.jpg",
            "My Fruits/x\ny/d.jpg", "My Fruits/Apple/e.txt", "My Fruits/Apple/"]
    objects = [S3Object(k, 3, "etag", when) for k in keys]
    listing = list_s3("s3", "b", "My Fruits", objects, "*.jpg")
    assert {f.path: f.label for f in listing.files} == {
        "s3://b/My Fruits/Apple/_a.jpg": "Apple", "s3://b/My Fruits/Apple/.b.jpg": "Apple",
        "s3://b/My Fruits/c.jpg": "", "s3://b/My Fruits/x\ny/d.jpg": "x\ny"}
    assert list_s3("s3", "b", "My Fruits", objects, "*.jpg", skip_hidden=True).skipped == \
        {"hidden": 1}


@pytest.mark.parametrize(("glob", "name", "matches"), [
    ("*.jpg", "_DSC1.jpg", True), ("*.jpg", "a.JPG", False), ("*.{jpg,png}", "a.png", True),
    ("[0-9]*.jpg", "3_100.jpg", True), ("[0-9]*.jpg", "r_3_100.jpg", False),
    ("[!r]*", "3.jpg", True), ("[^r]*", "r.jpg", False), ("a\\*b", "a*b", True),
    ("a\\*b", "axb", False), ("?.jpg", "\n.jpg", True), ("{a,{b,c}}x", "cx", True),
])
def test_globs_keep_hadoops_syntax(glob, name, matches):
    assert name_matches(name, glob) is matches


@pytest.mark.parametrize("glob", ["{a", "[", "a}", "x/y", "", "a\\", "[z-a]"])
def test_a_bad_glob_is_a_usage_error_before_spark(glob):
    with pytest.raises(UsageError, match="--glob"):
        compile_glob(glob)


def test_a_newline_in_a_path_keeps_its_label():
    assert label_from_path("file:/in/Apple\nGreen/x\n1.jpg", root="file:/in") == "Apple\nGreen"

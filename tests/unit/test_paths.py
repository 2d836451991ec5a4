
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fruits_p8.io.paths import Location, label_from_path, parse_location

# Folder names as users make them: any printable text without '/', not '.'/'..', and no
# percent-escape look-alikes (a raw '%41' in a name would be ambiguous in a URI).
label_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/%\\"),
    min_size=1, max_size=30,
).filter(lambda s: s.strip() not in ("", ".", ".."))
file_name = st.from_regex(r"(r2?_)?[0-9]{1,4}_100\.jpg", fullmatch=True)
splits = st.lists(st.sampled_from(["Training", "Test", "fruits-360", "a b", "Ünï"]), max_size=3)


@given(splits, label_text, file_name)
def test_label_is_parent_folder_of_plain_paths(prefix, label, name):
    path = "/" + "/".join([*prefix, label, name])
    assert label_from_path(path) == label


# Names that hold '%' and escape look-alikes: 'x%41' is a folder named x%41, not xA.
raw_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"),
    min_size=1, max_size=30,
).filter(lambda s: s.strip() not in ("", ".", ".."))


@given(splits, label_text, file_name)
def test_label_from_raw_spark_paths_with_spaces_and_percent(prefix, label, name):
    # Spark's binaryFile gives raw paths: a space means nothing was encoded.
    raw = "/" + "/".join([*prefix, label + " x", name])
    assert label_from_path("file:" + raw) == label + " x"


@given(st.from_regex(r"[a-z0-9][a-z0-9.-]{2,20}", fullmatch=True), splits, label_text, file_name)
def test_label_from_s3_uris(bucket, prefix, label, name):
    for scheme in ("s3", "s3a"):
        uri = f"{scheme}://{bucket}/" + "/".join([*prefix, label, name])
        assert label_from_path(uri) == label
        location = Location.parse(uri)
        assert location.is_s3 and location.bucket == bucket


def test_file_directly_under_root_has_no_label():
    assert label_from_path("file:/data/in/1_100.jpg", root="/data/in") is None
    assert label_from_path("/data/in/Apple/1_100.jpg", root="/data/in") == "Apple"
    assert label_from_path("s3://b/in/x.jpg", root="s3://b/in") is None
    assert label_from_path("x.jpg") is None


def test_parse_location_forms():
    assert parse_location("/a/b").scheme == ""
    assert parse_location("file:///a/b").parts == ("a", "b")
    assert parse_location("file:/a/b").parts == ("a", "b")
    loc = parse_location("s3://bucket/k/x.jpg")
    assert (loc.scheme, loc.authority, loc.key) == ("s3", "bucket", "k/x.jpg")
    assert parse_location("C:/data/x.jpg").scheme == ""


def test_locations_typed_by_a_person_and_their_parts(tmp_path, monkeypatch):
    assert Location.parse("file:///tmp/a%20b").local == "/tmp/a b"
    monkeypatch.chdir(tmp_path)
    assert Location.parse("rel/dir").local == f"{tmp_path}/rel/dir"
    with pytest.raises(ValueError):
        _ = Location.parse("s3://b/k").local
    with pytest.raises(ValueError):
        _ = Location.parse("/not/s3").bucket
    bucket = Location.parse("s3://bucket/a/b/")
    assert (bucket.bucket, bucket.key) == ("bucket", "a/b")
    assert bucket.child("c d/e").key == "a/b/c d/e" and bucket.sibling("x").key == "a/x"
    assert bucket.parent.key == "a" and Location.raw("s3://b/x%20y").key == "x%20y"
    assert Location.of_path("/a/b c").uri() == "file:/a/b c"


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("/data/in", "/data/in", True),
    ("/data/in", "/data/in/out", True),
    ("/data/in", "/data", True),
    ("/data/in", "/data/input", False),
    ("/data/in", "/data/out", False),
    ("file:/data/in", "/data/in/x", True),
    ("s3://b/in", "s3a://b/in/out", True),
    ("s3://b/in", "s3://b/out", False),
    ("s3://b/in", "s3://c/in", False),
    ("s3://b/in", "/b/in", False),
])
def test_nested_locations(a, b, expected):
    la, lb = Location.parse(a), Location.parse(b)
    assert (la.within(lb) or lb.within(la)) is expected

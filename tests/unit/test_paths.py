from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fruits_p8.io.paths import (
    is_s3,
    label_from_path,
    local_path,
    parse_location,
    path_from_uri,
    split_s3,
)

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


@given(splits, raw_text | st.sampled_from(["x%41", "a%20b", "100%", "%%"]), file_name)
def test_label_of_a_raw_path_is_never_percent_decoded(prefix, label, name):
    raw = "/" + "/".join([*prefix, label, name])
    assert label_from_path("file:" + raw) == label
    assert label_from_path("s3://bucket" + raw, root="s3://bucket/" + prefix[0]
                           if prefix else None) == label


@given(splits, raw_text | st.sampled_from(["x%41", "a%20b", "100%", "%%"]), file_name)
def test_path_from_uri_gives_the_raw_spelling_sparks_path_column_has(prefix, label, name):
    raw = "/" + "/".join([*prefix, label, name])
    assert path_from_uri("file:" + quote(raw)) == path_from_uri("file://" + quote(raw)) == (
        "file:" + raw)
    assert path_from_uri("s3a://b" + quote(raw)) == "s3a://b" + raw


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
        assert is_s3(uri)
        assert split_s3(uri)[0] == bucket


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


def test_local_path_and_split_s3_errors():
    assert local_path("file:///tmp/a%20b") == "/tmp/a b"
    assert local_path("rel/dir") == "rel/dir"
    with pytest.raises(ValueError):
        local_path("s3://b/k")
    with pytest.raises(ValueError):
        split_s3("/not/s3")
    assert split_s3("s3://bucket/a/b/") == ("bucket", "a/b")

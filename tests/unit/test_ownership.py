"""Ownership rules: only what fruits_p8 wrote is ever replaced or deleted."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fruits_p8.errors import OutputExistsError
from fruits_p8.io.ownership import (
    MANIFEST,
    MARKER,
    check_replaceable,
    foreign_files,
    in_layout,
    manifest_text,
    output_state,
    read_manifest,
    removal_order,
    with_files,
)

OURS = [MARKER, "_SUCCESS", "run.json", "features/part-00000.parquet", "features/_SUCCESS",
        "errors/part-00001.parquet", "errors/_SUCCESS", "features/.part-00000.parquet.crc",
        "report/index.html", "report/quality.json", "report/pca_scatter.png",
        "features_$folder$", "features/part-00000-abc.snappy.parquet",
        "features/.part-00000.parquet.1a2b3c4d.tmp", "features/_temporary/0/_temporary/x",
        "errors/_temporary_$folder$", "features/", "report/.index.html.1a2b3c4d.tmp",
        # the fitted model: Spark ML's PipelineModel layout (as saved on 3.5 and 4.x)
        "model/fruits_p8.json", "model/metadata/part-00000",
        "model/metadata/part-00000-07debded-8fb7-c000.txt", "model/metadata/_SUCCESS",
        "model/metadata/._SUCCESS.crc", "model/stages_$folder$",
        "model/stages/0_StandardScalerModel_345b34497b87/metadata/part-00000",
        "model/stages/0_StandardScalerModel_345b34497b87/data/part-00000-cab9-c000.snappy"
        ".parquet", "model/stages/1_PCAModel_5c39dc7d5979/data/.part-00000.parquet.crc",
        "model/stages/1_PCAModel_5c39dc7d5979/data_$folder$", "model/metadata/_temporary/0/x",
        "model/.fruits_p8.json.1a2b3c4d.tmp",
        # a top-level file a killed write left aside (the report republishes run.json)
        ".run.json.1a2b3c4d.tmp", "._SUCCESS.0f9e8d7c.tmp"]
LEGACY_REPORT = {"fruits_p8": "0.1.0", "counts": {"files": 3}}


@pytest.mark.parametrize("name", OURS)
def test_the_files_we_write_are_in_the_layout(name):
    assert in_layout(name)


@pytest.mark.parametrize("name", ["notes.txt", "features/notes.txt", "features/sub/part-0",
                                  "report/sub/index.html", "images/a.jpg", "Apple/1_100.jpg",
                                  "run.json.bak", "mine/", "report/holiday.jpg",
                                  "report/notes.html", "model/notes.txt",
                                  "model/stages/0_StandardScalerModel_3/notes.txt",
                                  "model/stages/x/data/part-0", "model/data/part-0",
                                  ".notes.txt.1a2b3c4d.tmp", ".run.json.tmp", "run.json.tmp",
                                  # names that fit the layout's shape, not what we write
                                  "report/my_chart.png", "features/part-my-notes.txt",
                                  "features/part-00000.txt", "report/.my.png.1a2b3c4d.tmp",
                                  "features/.notes.crc", "model/metadata/part-00000.parquet",
                                  "model/stages/0_X_0a/data/part-00000.txt"])
def test_anything_else_is_foreign(name):
    assert not in_layout(name)
    assert output_state([MARKER, "_SUCCESS", "run.json", name]) == "foreign"


def test_states():
    assert output_state([]) == "absent"
    assert output_state(OURS) == "finished"
    assert output_state([n for n in OURS if n != "_SUCCESS"]) == "unfinished"
    # a folder of our layout without the marker (a user's Spark dataset) is not ours...
    assert output_state(["features/part-00000.parquet", "features/_SUCCESS"]) == "foreign"
    assert output_state(["_SUCCESS", "run.json", "features/_SUCCESS"], {"x": 1}) == "foreign"
    # ... but a finished output from before the marker is, by its run.json
    assert output_state(["_SUCCESS", "run.json", "features/_SUCCESS"], LEGACY_REPORT) \
        == "finished"
    assert output_state(["run.json", "features/_SUCCESS"], LEGACY_REPORT) == "foreign"


@given(st.lists(st.sampled_from(OURS), min_size=1),
       st.text(alphabet="abcdefghij._-/ ", min_size=1, max_size=12))
def test_one_foreign_file_makes_the_whole_folder_foreign(ours, extra):
    files = [*ours, MARKER]
    state = output_state([*files, extra])
    assert (state == "foreign") == (not in_layout(extra))
    assert foreign_files([*files, extra]) == ([] if in_layout(extra) else [extra])


def test_replace_rules():
    check_replaceable("absent", "out", replace=False)
    check_replaceable("unfinished", "out", replace=False)
    check_replaceable("finished", "out", replace=True)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        check_replaceable("finished", "out", replace=False)
    for replace in (False, True):
        with pytest.raises(OutputExistsError, match=r"never replaced.*notes.txt|notes.txt"):
            check_replaceable("foreign", "out", replace, [MARKER, "notes.txt"])


STAGED = [MARKER, "_SUCCESS", "run.json", "features/part-00000.parquet",
          "features/part-00001-0a1b-c000.zstd.parquet", "model/metadata/part-00000"]


def listed(files=STAGED):
    return read_manifest(manifest_text("0123456789ab", "1.0", files).encode())


def test_with_a_manifest_exactly_its_files_are_ours():
    owned = listed()
    for name in [*STAGED, MANIFEST, "features/", "model/metadata/", "features_$folder$",
                 "model_$folder$", "model/metadata_$folder$", ".run.json.0f9e8d7c.tmp",
                 "features/.part-00000.parquet.1a2b3c4d.tmp", "._MANIFEST.1a2b3c4d.tmp"]:
        assert owned(name), name
    for name in ["features/part-00002.parquet", "report/index.html", "errors/", "report/",
                 "notes.txt", "features/.part-00002.parquet.1a2b3c4d.tmp", "report_$folder$",
                 "features/part-my-notes.txt", "report/my_chart.png"]:
        assert not owned(name), name
        assert output_state([*STAGED, MANIFEST, name], owned=owned) == "foreign"
    assert output_state([*STAGED, MANIFEST], owned=owned) == "finished"
    assert output_state([MARKER, "run.json", MANIFEST], owned=owned) == "unfinished"


@given(st.lists(st.sampled_from(OURS), min_size=1),
       st.text(alphabet="abcdefghij._-/ 0123456789", min_size=1, max_size=16))
def test_with_a_manifest_a_file_it_does_not_list_is_foreign_whatever_its_name(ours, extra):
    owned = listed(ours)
    if extra in ours or extra == MANIFEST or extra.endswith(("/", "_$folder$", ".tmp")):
        return
    assert output_state([*ours, extra], owned=owned) == "foreign"
    assert foreign_files([*ours, extra], owned) == [extra]


def test_a_manifest_grows_by_what_the_report_adds():
    data = manifest_text("0123456789ab", "1.0", STAGED).encode()
    grown = read_manifest(with_files(data, ["report/index.html", MANIFEST]).encode())
    assert grown.listed == {*STAGED, "report/index.html"}


@pytest.mark.parametrize("data", [None, b"", b"[]", b"{", b'{"made_by": "x", "files": []}',
                                  b'{"made_by": "fruits_p8", "files": [1]}'])
def test_what_is_no_manifest_leaves_the_names_of_the_layout(data):
    owned = read_manifest(data)
    assert owned.listed is None
    assert owned("features/part-00000.parquet") and not owned("notes.txt")


def test_a_removal_takes_success_first_and_the_marker_last():
    names = sorted([*STAGED, MANIFEST], key=removal_order)
    assert names[0] == "_SUCCESS" and names[-2:] == [MANIFEST, MARKER]


def test_a_folder_named_as_ours_is_an_unfinished_one_of_ours_without_its_marker():
    files = ["features/part-00000.parquet", "run.json"]
    assert output_state(files) == "foreign"
    assert output_state(files, named_ours=True) == "unfinished"
    assert output_state([*files, "_SUCCESS"], named_ours=True) == "unfinished"
    assert output_state([*files, "notes.txt"], named_ours=True) == "foreign"



"""Ownership rules: only what fruits_p8 wrote is ever replaced or deleted."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fruits_p8.errors import OutputExistsError
from fruits_p8.io.ownership import (
    MARKER,
    check_replaceable,
    foreign_files,
    in_layout,
    output_state,
)
from fruits_p8.io.paths import nested

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
                                  ".notes.txt.1a2b3c4d.tmp", ".run.json.tmp", "run.json.tmp"])
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
    assert nested(a, b) is expected
    assert nested(b, a) is expected

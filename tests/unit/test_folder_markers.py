"""EMRFS directory markers (`<dir>_$folder$`): never part of an output, always cleanable."""

from fruits_p8.io.s3 import folder_marker, is_folder_marker, strip_folder_markers

# What EMRFS leaves when Spark writes s3://b/out.incomplete-1/features and the commit copies it
# to s3://b/out (the staging marker sits beside the prefix, outside it).
EMRFS_KEYS = [
    "out/_SUCCESS", "out/run.json",
    "out/features/part-0.parquet", "out/features/_SUCCESS", "out/features_$folder$",
    "out/errors/_SUCCESS", "out/errors_$folder$",
]


def top_level(keys: list[str], prefix: str = "out") -> set[str]:
    return {k[len(prefix) + 1:].split("/", 1)[0] for k in keys}


def test_markers_are_recognised_and_only_markers():
    assert is_folder_marker("out/features_$folder$")
    assert is_folder_marker("out.incomplete-1_$folder$")
    assert not is_folder_marker("out/features/part-0.parquet")
    assert not is_folder_marker("out/$folder$/x.jpg")  # a folder merely named like one
    assert not is_folder_marker("out/features_$folder$.jpg")


def test_without_markers_an_output_holds_only_its_own_names():
    assert top_level(EMRFS_KEYS) > {"_SUCCESS", "run.json", "features", "errors"}
    assert top_level(strip_folder_markers(EMRFS_KEYS)) == {"_SUCCESS", "run.json", "features",
                                                           "errors"}
    assert strip_folder_markers(EMRFS_KEYS) == [k for k in EMRFS_KEYS if "$folder$" not in k]


def test_the_marker_of_a_prefix_is_the_key_emrfs_writes():
    assert folder_marker("out.incomplete-1") == "out.incomplete-1_$folder$"
    assert folder_marker("out/features/") == "out/features_$folder$"
    assert is_folder_marker(folder_marker("anything"))

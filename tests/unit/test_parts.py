"""Parquet parts written by pyarrow: whole files, readable empty datasets, no float
dictionaries."""

import pyarrow as pa
import pyarrow.parquet as pq

from fruits_p8.io.files import Folder, LocalFiles
from fruits_p8.io.parts import dictionary_columns, encode, write_empty
from fruits_p8.io.paths import Location
from fruits_p8.schema import ARROW_SCHEMAS, ERRORS, FEATURES
from tests.conftest import dictionary_encoded


def test_folder_sink_puts_whole_files_and_replaces_them(tmp_path):
    sink = Folder(LocalFiles(), Location.of_path(tmp_path / "features"))
    sink.put("part-00000.parquet", b"first")
    sink.put("part-00000.parquet", b"second")  # a retried task writes its part again
    assert [p.name for p in (tmp_path / "features").iterdir()] == ["part-00000.parquet"]
    assert (tmp_path / "features" / "part-00000.parquet").read_bytes() == b"second"


def test_an_empty_dataset_keeps_its_columns(tmp_path):
    write_empty(ARROW_SCHEMAS[ERRORS], Folder(LocalFiles(), Location.of_path(tmp_path / "errors")))
    assert sorted(p.name for p in (tmp_path / "errors").iterdir()) == [
        "_SUCCESS", "part-00000.parquet"]
    table = pq.read_table(tmp_path / "errors")
    assert table.num_rows == 0
    assert table.schema.names == list(ARROW_SCHEMAS[ERRORS].names)


def test_only_scalar_columns_are_dictionary_encoded(tmp_path):
    schema = ARROW_SCHEMAS[FEATURES]
    assert dictionary_columns(schema) == ["path", "label", "length", "modificationTime",
                                          "digest"]
    rows = [{"path": f"/in/Kiwi/{i}.jpg", "label": "Kiwi", "features": [0.5, 0.5],
             "pca": [1.0], "length": 10, "modificationTime": None, "digest": "ab"}
            for i in range(20)]
    part = tmp_path / "part.parquet"
    part.write_bytes(encode(pa.Table.from_pylist(rows, schema=schema)))
    encoded = dictionary_encoded(part)
    assert not encoded["features.list.element"] and not encoded["pca.list.element"]
    assert encoded["label"] and encoded["path"]
    assert pq.read_table(part).to_pylist() == rows

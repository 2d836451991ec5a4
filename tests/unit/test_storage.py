"""The storage chosen once per URI, and the handles executors get: picklable, whole files."""

import pickle

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fruits_p8.errors import InputError
from fruits_p8.io.files import Folder, LocalFiles, S3Files
from fruits_p8.io.parts import encode
from fruits_p8.io.paths import Location
from fruits_p8.io.s3 import S3Settings
from fruits_p8.io.storage import HadoopStorage, LocalStorage, S3Storage, storage_for
from fruits_p8.schema import ARROW_SCHEMAS, ERRORS


@pytest.mark.parametrize("uri", ["/data/in", "file:/data/in", "file:///data/in", "rel/in"])
def test_local_paths_and_file_uris_are_local_whatever_the_io_mode(uri):
    for io in ("auto", "spark", "boto3"):
        assert isinstance(storage_for(Location.parse(uri), io=io), LocalStorage)


def test_s3_without_spark_to_ask_goes_through_boto3_unless_forced():
    settings = S3Settings(region="us-east-1", endpoint_url="http://127.0.0.1:1")
    for scheme in ("s3", "s3a", "s3n"):
        chosen = storage_for(Location.parse(f"{scheme}://bucket/in"), settings)
        assert isinstance(chosen, S3Storage) and chosen.files == S3Files(settings)
    forced = storage_for(Location.parse("s3://bucket/in"), settings, io="spark")
    assert isinstance(forced, HadoopStorage) and forced.files == S3Files(settings)
    assert isinstance(storage_for(Location.parse("s3://bucket/in"), settings, io="boto3"),
                      S3Storage)


def test_other_filesystems_are_refused_in_one_line():
    with pytest.raises(InputError, match="hdfs://namenode/data"):
        storage_for(Location.parse("hdfs://namenode/data"))


def test_every_storage_and_its_folders_pickle_for_the_executors(tmp_path):
    settings = S3Settings(region="eu-west-3", endpoint_url="http://127.0.0.1:9")
    for storage in (LocalStorage(), HadoopStorage(S3Files(settings)), S3Storage(S3Files(settings))):
        assert pickle.loads(pickle.dumps(storage)) == storage
    folder = Folder(LocalFiles(), Location.of_path(tmp_path / "features"))
    again = pickle.loads(pickle.dumps(folder))
    again.put("part-00000.parquet", b"bytes")
    assert (tmp_path / "features" / "part-00000.parquet").read_bytes() == b"bytes"


def test_local_files_appear_whole_and_are_replaced(tmp_path):
    files = LocalFiles()
    target = tmp_path / "a" / "b" / "x.bin"
    files.put(Location.parse(f"file://{target}"), b"first")
    files.put(Location.of_path(target), b"second")
    assert [p.name for p in target.parent.iterdir()] == ["x.bin"]  # no temporary file left
    assert files.get(Location.of_path(target)) == b"second"


def test_local_storage_writes_an_empty_dataset_from_the_driver(tmp_path):
    schema = ARROW_SCHEMAS[ERRORS]
    LocalStorage().write_empty(schema, Location.of_path(tmp_path / "errors"))
    table = pq.read_table(tmp_path / "errors")
    assert table.num_rows == 0 and table.schema.names == schema.names
    assert sorted(p.name for p in (tmp_path / "errors").iterdir()) == [
        "_SUCCESS", "part-00000.parquet"]


def test_folder_names_join_without_double_slashes(tmp_path):
    Folder(LocalFiles(), Location.parse(str(tmp_path) + "/")).put(
        "p.parquet", encode(pa.table({"a": [1]})))
    assert pq.read_table(tmp_path / "p.parquet").column("a").to_pylist() == [1]

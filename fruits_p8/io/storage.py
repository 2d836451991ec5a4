"""How a location's data moves, chosen once per URI by `storage_for`.

A Storage lists and reads the images under a root, and writes and reads the Parquet datasets
of an output. Executors get only its `files`, a small picklable handle that puts and gets
whole files (a local folder, or S3 through boto3), as petastorm's FilesystemResolver hands
them a filesystem factory. Three storages:

    LocalStorage   local folders: Spark's binaryFile lists and reads them; the tasks write
                   the Parquet parts themselves with pyarrow (no Hadoop committer)
    HadoopStorage  a filesystem Spark's Hadoop layer opens (EMRFS or S3A on s3://, HDFS):
                   Spark lists, reads and writes everything; `files` serves the driver's
                   single files (S3 through boto3)
    S3Storage      s3:// where Spark has no S3 filesystem (the pyspark wheel has no S3A
                   jars): the driver lists, the tasks fetch the images, write the parts and
                   read them back; nothing is collected to the driver

The commit of an output (markers, lease, staging) is io/output.py's, over the same URIs.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from fruits_p8.errors import InputError
from fruits_p8.io.listing import DEFAULT_MAX_FILE_SIZE, Listing, list_local, list_s3
from fruits_p8.io.parts import write_empty, write_parts
from fruits_p8.io.paths import local_path, parse_location, split_s3
from fruits_p8.io.reading import Reader, local_reader, s3_files_reader
from fruits_p8.io.s3 import S3Object, S3Settings, list_objects, storage_error


class Files(Protocol):
    """Whole files by URI, from the driver or a task: what executors are handed."""

    def put(self, uri: str, data: bytes) -> None: ...

    def get(self, uri: str) -> bytes: ...

    def getter(self) -> Callable[[str], bytes]: ...


@dataclass(frozen=True)
class LocalFiles:
    """Files on the local filesystem; each appears whole (written aside, then renamed)."""

    def put(self, uri: str, data: bytes) -> None:
        target = Path(local_path(uri))
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        partial.write_bytes(data)
        os.replace(partial, target)

    def get(self, uri: str) -> bytes:
        return Path(local_path(uri)).read_bytes()

    def getter(self) -> Callable[[str], bytes]:
        return self.get


@dataclass(frozen=True)
class S3Files:
    """Objects in S3 through boto3; a client per call site, as boto3 clients do not pickle."""

    settings: S3Settings = field(default_factory=S3Settings)

    def put(self, uri: str, data: bytes) -> None:
        bucket, key = split_s3(uri)
        self.settings.client().put_object(Bucket=bucket, Key=key, Body=data)

    def get(self, uri: str) -> bytes:
        return self.getter()(uri)

    def getter(self) -> Callable[[str], bytes]:
        """`get` with one client for many calls (a task's): making a client is slow."""
        client = self.settings.client()

        def get(uri: str) -> bytes:
            bucket, key = split_s3(uri)
            return client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return get

    def listing(self, root: str, glob: str | None = None) -> list[S3Object]:
        """Objects under `root` whose file name matches `glob`, in key order; a failure is
        one line."""
        try:
            return sorted(list_objects(self.settings.client(), root, glob), key=lambda o: o.key)
        except Exception as exc:
            raise storage_error(exc, root, self.settings) from None


@dataclass(frozen=True)
class Folder:
    """The files of one dataset: a `parts.Sink` over any Files, picklable for the tasks."""

    files: Files
    uri: str

    def put(self, name: str, data: bytes) -> None:
        self.files.put(f"{self.uri.rstrip('/')}/{name}", data)


class Projection(Protocol):
    """The PCA column a dataset may gain on its way out (reduce.projection.Projection)."""

    def transform(self, df): ...

    def transform_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch: ...


def _prepare(projection: Projection | None):
    return None if projection is None else projection.transform_batch


def spark_parquet_options(schema: pa.Schema) -> dict[str, str]:
    """Spark writer options that keep dictionary encoding to `parts.dictionary_columns`:
    parquet-mr builds a float dictionary for every page, then drops it."""
    return {f"parquet.enable.dictionary#{f.name}.list.element": "false"
            for f in schema if pa.types.is_list(f.type)}


def write_parquet(df, schema: pa.Schema, uri: str, projection: Projection | None = None) -> None:
    """`df`'s columns of `schema` (plus the `projection`'s), written by Spark's Parquet writer:
    for filesystems only the JVM can open (EMRFS, S3A, HDFS)."""
    if projection is not None:
        df = projection.transform(df)
    df.select(*schema.names).write.options(**spark_parquet_options(schema)).parquet(uri)


class Storage:
    """Listing, reading and writing for one kind of location (see the module docstring)."""

    files: Files | None

    def list_images(self, root: str, glob: str, max_file_size: int = DEFAULT_MAX_FILE_SIZE,
                    skip_hidden: bool = False) -> Listing:
        """Every file under `root` whose name matches `glob` (io/listing.py)."""
        if not isinstance(self.files, S3Files):
            raise InputError(f"fruits_p8 reads images from local folders and s3:// only, "
                             f"not {root}")
        scheme, bucket, prefix = _s3_parts(root)
        return list_s3(scheme, bucket, prefix, self.files.listing(root), glob,
                       max_file_size, skip_hidden)

    def reader(self, root: str) -> Reader:
        """How the tasks open the listed files of `root`."""
        if not isinstance(self.files, S3Files):
            raise InputError(f"fruits_p8 reads images from local folders and s3:// only, "
                             f"not {root}")
        return s3_files_reader(self.files.settings, _s3_parts(root)[1])

    def write_dataset(self, df, schema: pa.Schema, uri: str,
                      projection: Projection | None = None) -> None:
        """Dataset `schema` from `df` (+ the `projection` column) under `uri`, by the tasks."""
        write_parts(df, schema, Folder(self._files(uri), uri), _prepare(projection))

    def write_empty(self, schema: pa.Schema, uri: str) -> None:
        """Dataset `schema` with no rows, put from the driver without a Spark job."""
        write_empty(schema, Folder(self._files(uri), uri))

    def read_dataset(self, spark, uri: str, schema: pa.Schema):
        """The Parquet dataset under `uri` as a DataFrame, read by the tasks."""
        return spark.read.parquet(uri)

    def read_table(self, spark, uri: str, schema: pa.Schema, columns: list[str]) -> pa.Table:
        """`columns` of the dataset under `uri` as one Arrow table on the driver, in one
        Spark action (the report reads a whole output's vectors once)."""
        return to_arrow(self.read_dataset(spark, uri, schema).select(*columns))

    def put(self, uri: str, data: bytes) -> None:
        """One whole file from the driver (the HTML report's pages)."""
        self._files(uri).put(uri, data)

    def write_spark_ml(self, model, uri: str) -> None:
        """A Spark ML writable (the fitted PipelineModel) as folder `uri`, in the layout
        Spark's own writer makes, so plain PySpark loads it with `PipelineModel.load`."""
        files = self._files(uri)
        save_through_driver(model, lambda relative, data: files.put(f"{uri}/{relative}", data))

    def _files(self, uri: str) -> Files:
        if self.files is None:
            raise ValueError(f"fruits_p8 cannot write single files to {uri}")
        return self.files


@dataclass(frozen=True)
class LocalStorage(Storage):
    """Local folders: Spark reads, the tasks write the parts with pyarrow."""

    files: Files = field(default_factory=LocalFiles)

    def list_images(self, root: str, glob: str, max_file_size: int = DEFAULT_MAX_FILE_SIZE,
                    skip_hidden: bool = False) -> Listing:
        return list_local(local_path(root), glob, max_file_size, skip_hidden)

    def reader(self, root: str) -> Reader:
        return local_reader()

    def write_spark_ml(self, model, uri: str) -> None:
        model.write().save(Path(local_path(uri)).resolve().as_uri())

    def read_table(self, spark, uri: str, schema: pa.Schema, columns: list[str]) -> pa.Table:
        """As Storage.read_table, straight from the Parquet parts with pyarrow: no Spark job
        (Spark's Arrow export of the same rows is much slower, docs/data_quality.md)."""
        import pyarrow.dataset as ds

        return ds.dataset(local_path(uri), format="parquet").to_table(columns=columns)


@dataclass(frozen=True)
class HadoopStorage(Storage):
    """A filesystem Spark's Hadoop layer opens: Spark reads and writes the datasets."""

    files: Files | None = None

    def write_dataset(self, df, schema: pa.Schema, uri: str,
                      projection: Projection | None = None) -> None:
        write_parquet(df, schema, uri, projection)

    def write_spark_ml(self, model, uri: str) -> None:
        model.write().save(uri)


@dataclass(frozen=True)
class S3Storage(Storage):
    """s3:// without a Spark S3 filesystem: the driver lists, the tasks move the bytes."""

    files: S3Files = field(default_factory=S3Files)

    def read_dataset(self, spark, uri: str, schema: pa.Schema):
        from fruits_p8.io.s3_spark import read_parquet_parts

        return read_parquet_parts(spark, uri, schema, self.files)


def _s3_parts(uri: str) -> tuple[str, str, str]:
    loc = parse_location(uri)
    return loc.scheme, loc.authority, loc.key


def to_arrow(frame) -> pa.Table:
    """A Spark DataFrame as one Arrow table on the driver (PySpark 4's toArrow, or the
    method PySpark 3.5 uses inside toPandas)."""
    if hasattr(frame, "toArrow"):
        return frame.toArrow()
    batches = frame._collect_as_arrow()
    if batches:
        return pa.Table.from_batches(batches)
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(frame.schema).empty_table()


def save_through_driver(model, put: Callable[[str, bytes], None]) -> None:
    """Save a Spark ML model in a driver-side temporary folder, then `put(relative, bytes)`
    each of its files (checksums left out): for stores Spark cannot write. The model's data
    is written by a task, so the driver's folder must be the executors' (local Spark)."""
    with tempfile.TemporaryDirectory(prefix="fruits-p8-model-") as folder:
        model.write().save(Path(folder, "m").as_uri())
        top = Path(folder) / "m"
        for path in sorted(top.rglob("*")):
            if path.is_file() and not path.name.endswith(".crc"):
                put(path.relative_to(top).as_posix(), path.read_bytes())


def spark_has_filesystem(spark, uri: str) -> bool:
    """True when Spark's Hadoop layer can open this URI's scheme itself (EMRFS, S3A...)."""
    scheme = parse_location(uri).scheme
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    try:
        jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass(scheme, conf)
    except Exception:
        return False
    return True


def storage_for(uri: str, settings: S3Settings | None = None, spark=None,
                io: str = "auto") -> Storage:
    """The Storage of a location, chosen once: local paths and file: URIs are local; s3://
    goes through Spark's filesystem where it has one (EMRFS, S3A), else through boto3 (`io`
    forces either: RunConfig.io, --io); other URIs through Spark's."""
    loc = parse_location(uri)
    if loc.is_local:
        return LocalStorage()
    if not loc.is_s3:
        return HadoopStorage()
    files = S3Files(settings or S3Settings())
    through_spark = io == "spark" or (io == "auto" and spark is not None
                                      and spark_has_filesystem(spark, uri))
    return HadoopStorage(files) if through_spark else S3Storage(files)

"""How a location's data moves, chosen once per location by `storage_for`.

A Storage lists and reads the images under a root, and writes and reads the Parquet datasets
of an output. Executors get only its `files` (io/files.py), a small picklable handle that puts
and gets whole files, as petastorm's FilesystemResolver hands them a filesystem factory.
Three storages:

    LocalStorage   local folders: the driver lists (io/listing.py), the tasks read the images
                   and write the Parquet parts themselves with pyarrow (no Hadoop committer)
    HadoopStorage  s3:// through a filesystem Spark's Hadoop layer opens (EMRFS or S3A):
                   the driver lists and the tasks read the images through boto3, Spark writes
                   and reads the datasets; `files` serves the driver's single files
    S3Storage      s3:// where Spark has no S3 filesystem (the pyspark wheel has no S3A
                   jars): the driver lists, the tasks fetch the images, write the parts and
                   read them back; nothing is collected to the driver

Every location is a parsed io.paths.Location. The commit of an output (markers, lease,
staging) is io/output.py's.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from fruits_p8.errors import InputError
from fruits_p8.io.files import Files, Folder, LocalFiles, S3Files
from fruits_p8.io.listing import DEFAULT_MAX_FILE_SIZE, Listing, list_local, list_s3
from fruits_p8.io.parts import write_empty, write_parts
from fruits_p8.io.paths import Location
from fruits_p8.io.reading import Reader, local_reader, s3_files_reader
from fruits_p8.io.s3 import S3Settings


class BatchTransform(Protocol):
    """The PCA column a dataset may gain on its way out (reduce.projection.Projection)."""

    def transform(self, df): ...

    def transform_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch: ...


def _prepare(projection: BatchTransform | None):
    return None if projection is None else projection.transform_batch


def spark_parquet_options(schema: pa.Schema) -> dict[str, str]:
    """Spark writer options that keep dictionary encoding to `parts.dictionary_columns`:
    parquet-mr builds a float dictionary for every page, then drops it."""
    return {f"parquet.enable.dictionary#{f.name}.list.element": "false"
            for f in schema if pa.types.is_list(f.type)}


def write_parquet(df, schema: pa.Schema, location: Location,
                  projection: BatchTransform | None = None) -> None:
    """`df`'s columns of `schema` (plus the `projection`'s), written by Spark's Parquet writer:
    for filesystems only the JVM can open (EMRFS, S3A, HDFS)."""
    if projection is not None:
        df = projection.transform(df)
    df.select(*schema.names).write.options(**spark_parquet_options(schema)).parquet(
        location.uri())


class Storage:
    """Listing, reading and writing for one kind of location (see the module docstring)."""

    files: Files | None

    def list_images(self, root: Location, glob: str,
                    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
                    skip_hidden: bool = False) -> Listing:
        """Every file under `root` whose name matches `glob` (io/listing.py)."""
        if not isinstance(self.files, S3Files):
            raise InputError(f"fruits_p8 reads images from local folders and s3:// only, "
                             f"not {root.text()}")
        return list_s3(root.scheme, root.bucket, root.key, self.files.listing(root), glob,
                       max_file_size, skip_hidden)

    def reader(self, root: Location) -> Reader:
        """How the tasks open the listed files of `root`."""
        if not isinstance(self.files, S3Files):
            raise InputError(f"fruits_p8 reads images from local folders and s3:// only, "
                             f"not {root.text()}")
        return s3_files_reader(self.files.settings, root.bucket)

    def write_dataset(self, df, schema: pa.Schema, location: Location,
                      projection: BatchTransform | None = None) -> None:
        """Dataset `schema` from `df` (+ the `projection` column) at `location`, by the
        tasks."""
        write_parts(df, schema, Folder(self._files(location), location), _prepare(projection))

    def write_empty(self, schema: pa.Schema, location: Location) -> None:
        """Dataset `schema` with no rows, put from the driver without a Spark job."""
        write_empty(schema, Folder(self._files(location), location))

    def read_dataset(self, spark, location: Location, schema: pa.Schema):
        """The Parquet dataset at `location` as a DataFrame, read by the tasks."""
        return spark.read.parquet(location.uri())

    def read_table(self, spark, location: Location, schema: pa.Schema,
                   columns: list[str]) -> pa.Table:
        """`columns` of the dataset at `location` as one Arrow table on the driver, in one
        Spark action (the report reads a whole output's vectors once)."""
        return to_arrow(self.read_dataset(spark, location, schema).select(*columns))

    def write_spark_ml(self, model, location: Location) -> None:
        """A Spark ML writable (the fitted PipelineModel) as folder `location`, in the layout
        Spark's own writer makes, so plain PySpark loads it with `PipelineModel.load`."""
        files = self._files(location)
        save_through_driver(model, lambda relative, data: files.put(location.child(relative),
                                                                     data))

    def _files(self, location: Location) -> Files:
        if self.files is None:
            raise ValueError(f"fruits_p8 cannot write single files to {location.text()}")
        return self.files


@dataclass(frozen=True)
class LocalStorage(Storage):
    """Local folders: the driver lists, the tasks read and write the files."""

    files: Files = field(default_factory=LocalFiles)

    def list_images(self, root: Location, glob: str,
                    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
                    skip_hidden: bool = False) -> Listing:
        return list_local(root.local, glob, max_file_size, skip_hidden)

    def reader(self, root: Location) -> Reader:
        return local_reader()

    def write_spark_ml(self, model, location: Location) -> None:
        model.write().save(Path(location.local).resolve().as_uri())

    def read_table(self, spark, location: Location, schema: pa.Schema,
                   columns: list[str]) -> pa.Table:
        """As Storage.read_table, straight from the Parquet parts with pyarrow: no Spark job
        (Spark's Arrow export of the same rows is much slower, docs/data_quality.md)."""
        import pyarrow.dataset as ds

        return ds.dataset(location.local, format="parquet").to_table(columns=columns)


@dataclass(frozen=True)
class HadoopStorage(Storage):
    """s3:// through Spark's Hadoop filesystem: Spark reads and writes the datasets."""

    files: Files | None = None

    def write_dataset(self, df, schema: pa.Schema, location: Location,
                      projection: BatchTransform | None = None) -> None:
        write_parquet(df, schema, location, projection)

    def write_spark_ml(self, model, location: Location) -> None:
        model.write().save(location.uri())


@dataclass(frozen=True)
class S3Storage(Storage):
    """s3:// without a Spark S3 filesystem: the driver lists, the tasks move the bytes."""

    files: S3Files = field(default_factory=S3Files)

    def read_dataset(self, spark, location: Location, schema: pa.Schema):
        from fruits_p8.io.s3_spark import read_parquet_parts

        return read_parquet_parts(spark, location, schema, self.files)


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


def spark_has_filesystem(spark, location: Location) -> bool:
    """True when Spark's Hadoop layer can open this location's scheme itself (EMRFS, S3A)."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    try:
        jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass(location.scheme, conf)
    except Exception:
        return False
    return True


def storage_for(location: Location, settings: S3Settings | None = None, spark=None,
                io: str = "auto") -> Storage:
    """The Storage of a location, chosen once: local paths and file: URIs are local; s3://
    goes through Spark's filesystem where it has one (EMRFS, S3A), else through boto3 (`io`
    forces either: RunConfig.io, --io). Other schemes are refused."""
    if location.is_local:
        return LocalStorage()
    if not location.is_s3:
        raise InputError(f"fruits_p8 reads and writes local folders and s3:// only, not "
                         f"{location.text()}")
    files = S3Files(settings or S3Settings())
    through_spark = io == "spark" or (io == "auto" and spark is not None
                                      and spark_has_filesystem(spark, location))
    return HadoopStorage(files) if through_spark else S3Storage(files)

"""The names a run's data goes by, defined once: dataset columns with their Arrow types, the
files of an output, and the defaults several modules share. The Arrow types (ARROW_SCHEMAS,
COLUMNS, FEATURIZED_COLUMNS) are built on first use: the CLI starts without pyarrow."""

from __future__ import annotations

import functools

DEFAULT_REGION = "eu-west-3"

# An output folder: the marker first, _SUCCESS last (see io/ownership.py and io/output.py).
FEATURES, ERRORS = "features", "errors"
RUN_JSON = "run.json"  # the run record; the HTML report lives under REPORT_DIR
SUCCESS = "_SUCCESS"
MARKER = "_FRUITS_P8"
REPORT_DIR = "report"
MODEL_DIR = "model"  # the fitted scaler + PCA and what made the features (reduce/saved.py)

# The images a run reads: one row per listed file (io/listing.py, io/reading.py). Where a file
# could not be read, `content` is null and `read_error` says why (a kind, as in error rows).
IMAGE_COLUMNS = ("path", "label", "length", "modificationTime", "content", "read_error",
                 "read_detail")
IMAGE_DDL = ("path string, label string, length long, modificationTime timestamp, "
             "content binary, read_error string, read_detail string")

IO_MODES = ("auto", "spark", "boto3")  # RunConfig.io, --io: how s3:// data moves


@functools.cache
def _arrow() -> dict[str, object]:
    import pyarrow as pa

    # Provenance after the payload: file size and time identify unchanged inputs
    # (--incremental), digest (sha256 of the bytes) finds duplicate files.
    provenance = [("length", pa.int64()), ("modificationTime", pa.timestamp("us", tz="UTC")),
                  ("digest", pa.string())]
    schemas = {
        FEATURES: pa.schema([("path", pa.string()), ("label", pa.string()),
                             ("features", pa.list_(pa.float32())),
                             ("pca", pa.list_(pa.float32())), *provenance]),
        ERRORS: pa.schema([("path", pa.string()), ("label", pa.string()),
                           ("error_kind", pa.string()), ("error", pa.string()), *provenance]),
    }
    return {
        "ARROW_SCHEMAS": schemas,
        "COLUMNS": {name: tuple(schema.names) for name, schema in schemas.items()},
        # What the featurizer adds to each image row (`content` goes): name, Arrow, Spark DDL.
        "FEATURIZED_COLUMNS": (
            ("digest", pa.string(), "string"),
            ("features", pa.list_(pa.float32()), "array<float>"),
            ("error_kind", pa.string(), "string"), ("error", pa.string(), "string")),
    }


def __getattr__(name: str):
    if name in ("ARROW_SCHEMAS", "COLUMNS", "FEATURIZED_COLUMNS"):
        return _arrow()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

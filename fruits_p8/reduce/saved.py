"""The fitted basis as files: a Spark ML PipelineModel, and what made its input.

Every output holds its fit in `model/`: a `PipelineModel` (StandardScalerModel, then
PCAModel, on the vector columns `spark_ml.VECTOR_COLUMNS`: `spark_ml.pipeline_of` makes it)
that plain PySpark loads with `PipelineModel.load`, plus `model/fruits_p8.json` (MadeBy):
the backbone, weights, preprocessing and precision of the features it was fitted on, so that
it is applied only to features made the same way. `read_saved` reads those files back as a
PcaBasis with pyarrow and json, no Spark: a run checks a saved basis before Spark starts.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping

import numpy as np
import pyarrow.parquet as pq

from fruits_p8.errors import FittedModelError
from fruits_p8.reduce.basis import MadeBy, PcaBasis

MADE_BY = "fruits_p8.json"
STAGE_CLASSES = ("org.apache.spark.ml.feature.StandardScalerModel",
                 "org.apache.spark.ml.feature.PCAModel")
_STAGE_DIR = re.compile(r"stages/(\d+)_([^/]+)/")


def read_saved(files: Mapping[str, bytes], where: str) -> PcaBasis:
    """The basis held by `files` (paths relative to the model folder -> bytes), as Spark's
    writer laid it out: metadata/part-*, stages/<i>_<uid>/{metadata,data}/part-*."""
    if MADE_BY not in files:
        raise FittedModelError(f"no fitted model at {where}: {MADE_BY} is missing "
                               "(give the output folder of a fruits_p8 run)")
    made_by = MadeBy.from_json(files[MADE_BY], f"{where}/{MADE_BY}")
    try:
        stages = read_stages(files)
        scaler, pca = stages[STAGE_CLASSES[0]], stages[STAGE_CLASSES[1]]
        std, mean = vector_of(scaler["std"]), vector_of(scaler["mean"])
        axes, explained = matrix_of(pca["pc"]), vector_of(pca["explainedVariance"])
    except (KeyError, ValueError, IndexError, TypeError, OSError) as exc:
        raise FittedModelError(f"cannot read the fitted model at {where} "
                               f"({type(exc).__name__}: {exc})") from None
    if not (mean.shape == std.shape == (made_by.feature_dim,)
            and axes.shape == (made_by.feature_dim, explained.size)):
        raise FittedModelError(f"the fitted model at {where} is inconsistent: "
                               f"{mean.size} means, axes {axes.shape}, "
                               f"{made_by.feature_dim} features")
    return PcaBasis(mean, std, axes, explained, made_by)


def read_stages(files: Mapping[str, bytes]) -> dict[str, dict]:
    """Class name -> the first row of that stage's data (stages that hold data)."""
    classes: dict[str, str] = {}
    data: dict[str, bytes] = {}
    for name, content in files.items():
        match = _STAGE_DIR.match(name)
        if not match or not name.rsplit("/", 1)[-1].startswith("part-"):
            continue
        stage = match.group(0)
        if name.startswith(stage + "metadata/"):
            classes[stage] = json.loads(content.decode().splitlines()[0])["class"]
        elif name.startswith(stage + "data/") and name.endswith(".parquet"):
            data[stage] = content
    rows = {}
    for stage, cls in classes.items():
        if stage not in data:  # a stage with parameters only (IndexToString)
            continue
        table = pq.read_table(io.BytesIO(data[stage]))
        rows[cls] = table.to_pylist()[0]
    return rows


def vector_of(value: dict) -> np.ndarray:
    """A Spark ML vector as Parquet stores it (type 1 dense, 0 sparse)."""
    if value["type"] == 1:
        return np.asarray(value["values"], dtype=np.float64)
    dense = np.zeros(value["size"], dtype=np.float64)
    dense[np.asarray(value["indices"], dtype=int)] = value["values"]
    return dense


def matrix_of(value: dict) -> np.ndarray:
    """A Spark ML matrix as Parquet stores it: dense (type 1) column-major unless transposed,
    or sparse (type 0) compressed by columns, by rows when transposed."""
    shape = (value["numRows"], value["numCols"])
    if value["type"] == 1:
        order = "C" if value["isTransposed"] else "F"
        return np.asarray(value["values"], dtype=np.float64).reshape(shape, order=order)
    dense = np.zeros(shape, dtype=np.float64)
    pointers, indices = value["colPtrs"], value["rowIndices"]
    for outer in range(len(pointers) - 1):
        for at in range(pointers[outer], pointers[outer + 1]):
            where = (outer, indices[at]) if value["isTransposed"] else (indices[at], outer)
            dense[where] = value["values"][at]
    return dense

"""The fitted standardise + PCA as files: a Spark ML PipelineModel, and what made its input.

Every output holds its fit in `model/`: a `PipelineModel` (StandardScalerModel, then
PCAModel, on vector columns VECTOR_COLUMNS) that plain PySpark loads with
`PipelineModel.load`, plus `model/fruits_p8.json` (MadeBy): the backbone, weights,
preprocessing and precision of the features it was fitted on, so that it is applied only to
features made the same way. `read_saved` reads those files back with pyarrow and json, no
Spark: a run checks a saved model before Spark starts.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

import numpy as np
import pyarrow.parquet as pq

from fruits_p8.errors import FittedModelError
from fruits_p8.reduce.projection import Projection

MADE_BY = "fruits_p8.json"
# Spark ML's scaler and PCA work on vectors: array<float> `features` -> these columns.
VECTOR_COLUMNS = ("features_vector", "features_scaled", "pca_vector")
STAGE_CLASSES = ("org.apache.spark.ml.feature.StandardScalerModel",
                 "org.apache.spark.ml.feature.PCAModel")


@dataclass(frozen=True)
class MadeBy:
    """How the features a model was fitted on were made: a model applies only to features
    made the same way (other weights or preprocessing give other numbers)."""

    backbone: str
    feature_dim: int
    weights_sha256: str
    weights: str
    preprocessing: str
    precision: str
    fruits_p8: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, data: bytes, where: str) -> MadeBy:
        try:
            values = json.loads(data)
            return cls(**{f.name: values[f.name] for f in fields(cls)})
        except (ValueError, KeyError, TypeError) as exc:
            raise FittedModelError(f"{where}/{MADE_BY} is not a fruits_p8 model description "
                                   f"({type(exc).__name__}: {exc})") from None

    def differences(self, other: MadeBy) -> list[str]:
        """What makes features of `other` incomparable with this model's, in words."""
        found = []
        for name in ("backbone", "weights_sha256", "preprocessing", "precision",
                     "feature_dim"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                found.append(f"{name} {_short(mine)} (this run: {_short(theirs)})")
        return found


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 24 else text[:12] + "…"


@dataclass(frozen=True)
class SavedModel:
    """A fitted standardisation and k principal axes, with what made the features.

    >>> import numpy as np
    >>> from fruits_p8 import SavedModel
    >>> from fruits_p8.reduce.saved import MadeBy
    >>> made_by = MadeBy("efficientnet_lite0", 3, "ab12", "auto", "rgb", "float32", "0.1.0")
    >>> model = SavedModel(mean=np.zeros(3), std=np.full(3, 2.0), axes=np.eye(3)[:, :2],
    ...                    explained=np.array([0.6, 0.3]), made_by=made_by)
    >>> model.k, model.projection().project(np.array([[2.0, 4.0, 6.0]])).tolist()
    (2, [[1.0, 2.0]])
    """

    mean: np.ndarray
    std: np.ndarray
    axes: np.ndarray
    explained: np.ndarray
    made_by: MadeBy

    @property
    def k(self) -> int:
        return int(self.axes.shape[1])

    def projection(self, input_col: str = "features", output_col: str = "pca") -> Projection:
        """The same transform in numpy, for the tasks that write Parquet with pyarrow."""
        return Projection.from_fit(self.mean, self.std, self.axes, input_col, output_col)


def spark_pipeline(mean: np.ndarray, std: np.ndarray, axes: np.ndarray,
                   explained: np.ndarray):
    """The Spark ML PipelineModel that `model/` holds: standardise, then project."""
    from pyspark.ml import PipelineModel

    from fruits_p8.reduce.spark_ml import pca_model, scaler_model

    vector, scaled, projected = VECTOR_COLUMNS
    return PipelineModel(stages=[scaler_model(mean, std, vector, scaled),
                                 pca_model(axes, explained, scaled, projected)])


_STAGE_DIR = re.compile(r"stages/(\d+)_([^/]+)/")


def read_saved(files: Mapping[str, bytes], where: str) -> SavedModel:
    """The model held by `files` (paths relative to the model folder -> bytes), as Spark's
    writer laid it out: metadata/part-*, stages/<i>_<uid>/{metadata,data}/part-*."""
    if MADE_BY not in files:
        raise FittedModelError(f"no fitted model at {where}: {MADE_BY} is missing "
                               "(give the output folder of a fruits_p8 run)")
    made_by = MadeBy.from_json(files[MADE_BY], where)
    try:
        stages = _read_stages(files)
        scaler, pca = stages[STAGE_CLASSES[0]], stages[STAGE_CLASSES[1]]
        std, mean = _vector(scaler["std"]), _vector(scaler["mean"])
        axes, explained = _matrix(pca["pc"]), _vector(pca["explainedVariance"])
    except (KeyError, ValueError, IndexError, TypeError, OSError) as exc:
        raise FittedModelError(f"cannot read the fitted model at {where} "
                               f"({type(exc).__name__}: {exc})") from None
    if not (mean.shape == std.shape == (made_by.feature_dim,)
            and axes.shape == (made_by.feature_dim, explained.size)):
        raise FittedModelError(f"the fitted model at {where} is inconsistent: "
                               f"{mean.size} means, axes {axes.shape}, "
                               f"{made_by.feature_dim} features")
    return SavedModel(mean, std, axes, explained, made_by)


def _read_stages(files: Mapping[str, bytes]) -> dict[str, dict]:
    """Class name -> the first row of that stage's data."""
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
        table = pq.read_table(io.BytesIO(data[stage]))
        rows[cls] = table.to_pylist()[0]
    return rows


def _vector(value: dict) -> np.ndarray:
    """A Spark ML vector as Parquet stores it (type 1 dense, 0 sparse)."""
    if value["type"] == 1:
        return np.asarray(value["values"], dtype=np.float64)
    dense = np.zeros(value["size"], dtype=np.float64)
    dense[np.asarray(value["indices"], dtype=int)] = value["values"]
    return dense


def _matrix(value: dict) -> np.ndarray:
    """A dense Spark ML matrix as Parquet stores it (column-major unless transposed)."""
    if value["type"] != 1:
        raise ValueError("the PCA axes are stored as a sparse matrix")
    order = "C" if value["isTransposed"] else "F"
    return np.asarray(value["values"], dtype=np.float64).reshape(
        value["numRows"], value["numCols"], order=order)

"""`predict`: labels for a few photos in one process, no Spark: the backbone, the fitted
basis and the classifier's coefficients, read from what `run` and `train` wrote, applied
with the same code as the Spark path (so the same numbers)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from fruits_p8.classify.card import CARD, MODEL, ClassifierCard
from fruits_p8.errors import FittedModelError, InputError
from fruits_p8.features.backbones import WeightsContext, get_backbone, load_weights
from fruits_p8.features.featurizer import featurize_batches
from fruits_p8.features.forward import compile_forward, image_size_of
from fruits_p8.io.listing import list_local
from fruits_p8.io.models import read_fitted
from fruits_p8.io.output import open_output
from fruits_p8.io.paths import Location
from fruits_p8.io.s3 import S3Settings
from fruits_p8.reduce.saved import matrix_of, read_stages, vector_of

REGRESSION = "org.apache.spark.ml.classification.LogisticRegressionModel"
BATCH = 32
TOP = 3


@dataclass(frozen=True)
class Prediction:
    """One image: the most likely labels with their probabilities, or why it has none."""

    path: str
    top: tuple[tuple[str, float], ...] = ()
    error: str | None = None

    @property
    def label(self) -> str | None:
        return self.top[0][0] if self.top else None


@dataclass(frozen=True)
class Regression:
    """A multinomial logistic regression's numbers: probabilities = softmax(x W^T + b)."""

    coefficients: np.ndarray  # (classes, features)
    intercepts: np.ndarray  # (classes,)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        margins = np.asarray(x, dtype=np.float64) @ self.coefficients.T + self.intercepts
        margins -= margins.max(axis=1, keepdims=True)
        exp = np.exp(margins)
        return exp / exp.sum(axis=1, keepdims=True)


def read_regression(files: dict[str, bytes], where: str) -> Regression:
    """The logistic regression of a classifier folder's PipelineModel, read with pyarrow."""
    try:
        row = read_stages(files)[REGRESSION]
        return Regression(matrix_of(row["coefficientMatrix"]), vector_of(row["interceptVector"]))
    except (KeyError, ValueError, IndexError, TypeError, OSError) as exc:
        raise FittedModelError(f"cannot read the classifier at {where} "
                               f"({type(exc).__name__}: {exc})") from None


def image_files(targets: Sequence[str], glob: str = "*.jpg") -> list[Path]:
    """The files named, and the images (`glob`) under the folders named, in order."""
    found: list[Path] = []
    for target in targets:
        path = Path(target)
        if path.is_dir():
            found += [Path(f.source.decode("utf-8", "surrogateescape"))
                      for f in list_local(str(path), glob).files]
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"{target}: no such file or folder")
    if not found:
        raise InputError(f"no image ({glob}) in {', '.join(targets)}")
    return found


class Predictor:
    """A classifier ready to answer: its card, regression, basis and compiled CNN."""

    def __init__(self, classifier: str, cache_dir: Path, settings: S3Settings | None = None):
        settings = settings or S3Settings()
        location = Location.parse(classifier)
        output = open_output(location, settings)
        self.card = ClassifierCard.from_json(output.read_file(CARD), location.text())
        self.regression = read_regression(output.read_folder(MODEL) or {},
                                          f"{location.text()}/{MODEL}")
        made = self.card.made_by
        self.basis = None
        if self.card.on == "pca":
            self.basis = read_fitted(self.card.trained_on, settings)
            if self.basis.fingerprint != self.card.basis:
                raise FittedModelError(
                    f"the fitted basis at {self.card.trained_on} changed since the classifier "
                    "was trained: train it again")
        self.backbone = get_backbone(made["backbone"])
        weights = load_weights(self.backbone, made["weights"], WeightsContext(cache_dir))
        if weights.sha256 != made["weights_sha256"]:
            raise FittedModelError(f"the weights {made['weights']} are not those the "
                                   "classifier's features were made with")
        self.size = image_size_of(made["preprocessing"]) or self.backbone.input_size
        self.forward = compile_forward(self.backbone, weights.arrays,
                                       precision=made["precision"], image_size=self.size)

    def predict(self, paths: Sequence[Path]) -> list[Prediction]:
        """The top labels of each image (an error instead for a file that is no image)."""
        record = pa.RecordBatch.from_pydict({
            "label": [""] * len(paths), "content": [p.read_bytes() for p in paths]})
        out = pa.Table.from_batches(list(featurize_batches(
            [record], self.forward, self.size, BATCH, self.backbone.feature_dim)))
        errors = out.column("error").to_pylist()
        features = np.array([f if f else [0.0] * self.backbone.feature_dim
                             for f in out.column("features").to_pylist()], dtype=np.float32)
        x = self.basis.project(features) if self.basis is not None else features
        chances = self.regression.probabilities(x)
        classes = self.card.classes
        found = []
        for path, error, row in zip(paths, errors, chances, strict=True):
            if error is not None:
                found.append(Prediction(str(path), error=error))
                continue
            best = np.argsort(-row, kind="stable")[:TOP]
            found.append(Prediction(str(path), tuple((classes[i], float(row[i]))
                                                     for i in best)))
        return found


def predict(classifier: str, images: Sequence[str], cache_dir: Path | None = None,
            settings: S3Settings | None = None, glob: str = "*.jpg") -> list[Prediction]:
    """The three most likely labels of each image (files, or folders searched for `glob`),
    computed in this process without Spark.

    >>> from fruits_p8 import EMBEDDED_SAMPLE, RunConfig, predict, run, train
    >>> _ = run(RunConfig(input=str(EMBEDDED_SAMPLE), output=str(tmp / "plum"), k=20),
    ...         spark=spark)
    >>> _ = train(spark, str(tmp / "plum"), str(tmp / "plum-clf"), reg_params=[1e-3])
    >>> found = predict(str(tmp / "plum-clf"), [str(EMBEDDED_SAMPLE / "Kiwi")])
    >>> len(found), found[0].label, len(found[0].top)
    (20, 'Kiwi', 3)
    """
    from fruits_p8.config import default_cache_dir

    paths = image_files(images, glob)
    predictor = Predictor(classifier, cache_dir or default_cache_dir(os.environ), settings)
    return predictor.predict(paths)

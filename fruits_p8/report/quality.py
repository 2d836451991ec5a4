"""What the features are worth: a linear classifier on PCA features vs raw features, scored
on images that took no part in any fit.

The run's `pca` column comes from a scaler + PCA fitted on every image, test images
included, so scoring it would be optimistic: the check fits its own scaler + PCA (the same k)
on the training part only and projects the test part with them. Pure numpy on the driver
(`logistic`, `fruits_p8.reduce`): the rows come from `rows.read_rows`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from fruits_p8.reduce.moments import Moments, fit_from_moments
from fruits_p8.report import logistic
from fruits_p8.report.rows import Rows

ITERATIONS = 30


@dataclass(frozen=True)
class Accuracy:
    """Test accuracy overall and per label, with the split sizes and what was fitted on what."""

    overall: float
    per_label: dict[str, float]
    train_rows: int
    test_rows: int
    fit: str = ""
    components: int | None = None  # the PCA's k where the classifier saw PCA components

    def to_dict(self) -> dict:
        return {"overall": self.overall, "per_label": self.per_label,
                "train_rows": self.train_rows, "test_rows": self.test_rows, "fit": self.fit,
                "components": self.components}


def digest_split(hashes: np.ndarray, test_share: float = 0.2) -> np.ndarray:
    """Deterministic split by image content: True for the test rows, the `test_share` of
    images with the smallest hash of their digest (sha256 of the bytes), so the same images
    split alike wherever they are stored, and copies of one image stay on one side."""
    values = np.sort(np.asarray(hashes, dtype=np.int64))
    if not len(values):
        return np.zeros(0, dtype=bool)
    cut = values[min(len(values) - 1, int(len(values) * test_share))]
    return np.asarray(hashes) < cut


def dataset_split(splits: list[str | None]) -> tuple[np.ndarray, np.ndarray] | None:
    """(train, test) masks when the images come from the dataset's own Training/ and Test/
    folders (both present), else None."""
    named = np.array([split or "" for split in splits])
    train, test = named == "Training", named == "Test"
    return (train, test) if train.any() and test.any() else None


def reduce_on_train(train: np.ndarray, test: np.ndarray, k: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Standardise + PCA (k components) fitted on `train` only, applied to both, with the
    run's own fit. The scatter of the centred rows is taken in float32 (centring first keeps
    the rounding away from the covariance; docs/data_quality.md measures the saving)."""
    mean = train.mean(axis=0, dtype=np.float64)
    centred = np.asarray(train, dtype=np.float32) - mean.astype(np.float32)
    moments = Moments.from_centred(len(train), mean, centred.T @ centred)
    basis = fit_from_moments(moments, k=min(k, len(train), train.shape[1]))
    return basis.project(train), basis.project(test)


def accuracy(train: np.ndarray, train_labels: np.ndarray, test: np.ndarray,
             test_labels: np.ndarray, fit: str, max_iter: int = ITERATIONS) -> Accuracy:
    """Multinomial logistic regression fitted on `train`, scored on `test`; a test label
    never seen in training counts as a miss."""
    names, y = np.unique(train_labels, return_inverse=True)
    model = logistic.fit(train, y, len(names), max_iter)
    predicted = names[model.predict(test)]
    hits = predicted == test_labels
    per_label = {str(name): float(hits[test_labels == name].mean())
                 for name in np.unique(test_labels)}
    return Accuracy(float(hits.mean()), per_label, len(train), len(test), fit)


def check(rows: Rows, train: np.ndarray, test: np.ndarray, k: int, fit: str,
          max_iter: int) -> dict[str, Accuracy] | None:
    """The classifier on PCA (scaler + PCA fitted on `train`) and on raw features."""
    labels = np.asarray(rows.labels, dtype=object)
    if not test.any() or len(set(labels[train])) < 2:
        return None
    raw_train, raw_test = rows.features[train], rows.features[test]
    pca_train, pca_test = reduce_on_train(raw_train, raw_test, k)
    k = pca_train.shape[1]
    reduced = accuracy(pca_train, labels[train], pca_test, labels[test],
                       f"{fit}; scaler + PCA (k = {k}) fitted on the training images only",
                       max_iter)
    return {"pca": dataclasses.replace(reduced, components=k),
            "raw": accuracy(raw_train, labels[train], raw_test, labels[test], fit, max_iter)}


def compare(rows: Rows, k: int, max_iter: int = ITERATIONS) -> dict[str, Accuracy] | None:
    """Accuracy on PCA and on raw features, trained on 80 % of the images (by content hash)
    and tested on the rest; where the images hold the dataset's Training/ and Test/ folders,
    also trained on Training and tested on Test (keys `training_test_pca`, `..._raw`).
    None with too few images."""
    test = digest_split(rows.hashes)
    result = check(rows, ~test, test, k, "80/20 split by image content", max_iter)
    if result is None:
        return None
    folders = dataset_split(rows.splits)
    if folders is not None:
        by_folder = check(rows, *folders, k, "trained on Training/, tested on Test/", max_iter)
        for name, found in (by_folder or {}).items():
            result[f"training_test_{name}"] = found
    return result

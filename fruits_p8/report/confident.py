"""Confident learning on a run's PCA components: which label a model that never saw an image
believes, and which pairs of labels are simply alike.

Every image is scored by a multinomial logistic regression fitted on the other folds
(Northcutt et al., "Confident Learning", JAIR 2021, the idea behind cleanlab). A look-alike
pair of labels leaves its mark on all of its images (each believes the other label a little),
a photo in the wrong folder only on itself; so an image's evidence for another label is how
much more it believes that label than the other images of its folder do, minus its belief in
its own label. Pure numpy on the driver, in row chunks (memory in docs/data_quality.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fruits_p8.report import logistic

CHUNK = 65_536


@dataclass(frozen=True)
class FinderSettings:
    """The out-of-fold model: folds, components used, its fit, and the look-alike cut
    (chosen from draws on the real Test split, docs/data_quality.md)."""

    folds: int = 3
    components: int = 200
    iterations: int = 30
    l2: float = 1e-3
    max_fit_per_label: int = 25
    look_alike_share: float = 0.1
    seed: int = 30
    per_column: bool = False  # PCA components keep their variances: noise stays small


def fold_of(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each row's fold, drawn at random within its label so that every fold holds every
    label in proportion (random, not by blocks of frames: docs/data_quality.md compares)."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), dtype=np.int64)
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        fold[rows] = rng.permutation(len(rows)) % folds
    return fold


def capped(rows: np.ndarray, y: np.ndarray, per_label: int, rng: np.random.Generator
           ) -> np.ndarray:
    """At most `per_label` of the rows of each label, drawn at random, in row order."""
    kept = []
    for label in np.unique(y[rows]):
        mine = rows[y[rows] == label]
        kept.append(mine if len(mine) <= per_label else rng.choice(mine, per_label, False))
    return np.sort(np.concatenate(kept)) if kept else rows


def probabilities(model: logistic.Softmax, x: np.ndarray) -> np.ndarray:
    """Class probabilities of the rows (float32, a softmax per row), chunk by chunk."""
    out = np.empty((len(x), len(model.bias)), dtype=np.float32)
    for start in range(0, len(x), CHUNK):
        block = x[start:start + CHUNK]
        scores = ((block - model.mean) * model.scale) @ model.weights + model.bias
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        out[start:start + len(block)] = scores / scores.sum(axis=1, keepdims=True)
    return out


def out_of_fold(x: np.ndarray, y: np.ndarray, classes: int, settings: FinderSettings
                ) -> np.ndarray:
    """Rows × classes probabilities, each row's from the model fitted without its fold (on at
    most `max_fit_per_label` rows per label of the other folds, drawn at random: the cost
    then grows with the labels, not the images)."""
    x = np.ascontiguousarray(x[:, :settings.components], dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    folds = min(settings.folds, max(2, int(np.bincount(y).min()))) if len(y) else 0
    fold = fold_of(y, folds, settings.seed)
    rng = np.random.default_rng(settings.seed)
    found = np.zeros((len(x), classes), dtype=np.float32)
    for k in range(folds):
        train = capped(np.flatnonzero(fold != k), y, settings.max_fit_per_label, rng)
        model = logistic.fit(x[train], y[train], classes, settings.iterations, settings.l2,
                             per_column=settings.per_column)
        held = fold == k
        found[held] = probabilities(model, x[held])
    return found


def typical(p: np.ndarray, y: np.ndarray, classes: int) -> np.ndarray:
    """Classes × classes: row a, the mean probability of each label among the images filed
    under a (what a look-alike pair shares)."""
    sums = np.zeros((classes, classes), dtype=np.float64)
    np.add.at(sums, y, p)
    counts = np.bincount(y, minlength=classes)
    return sums / np.maximum(counts, 1)[:, None]


@dataclass(frozen=True)
class Evidence:
    """Per image: the other label it is believed to be, the belief in it and in its own
    label, and the margin (its belief in the other label beyond its folder's, minus its
    belief in its own); plus the label-by-label mean beliefs."""

    other: np.ndarray
    other_probability: np.ndarray
    own_probability: np.ndarray
    margin: np.ndarray
    mean_belief: np.ndarray


def evidence(p: np.ndarray, y: np.ndarray) -> Evidence:
    """Each image against the other images of its folder (itself left out of their mean)."""
    n, classes = p.shape
    y = np.asarray(y, dtype=np.int64)
    mean = typical(p, y, classes)
    counts = np.bincount(y, minlength=classes)
    other = np.zeros(n, dtype=np.int64)
    margin = np.zeros(n, dtype=np.float32)
    for start in range(0, n, CHUNK):
        rows = slice(start, start + CHUNK)
        block, own = p[rows], y[rows]
        size = counts[own][:, None]
        folder = (mean[own] * size - block) / np.maximum(size - 1, 1)
        beyond = block - folder
        beyond[np.arange(len(own)), own] = -np.inf
        other[rows] = beyond.argmax(axis=1)
        margin[rows] = beyond.max(axis=1) - block[np.arange(len(own)), own]
    everyone = np.arange(n)
    return Evidence(other, p[everyone, other], p[everyone, y], margin, mean)


def margins(p: np.ndarray, y: np.ndarray, mean_belief: np.ndarray, rows: np.ndarray,
            candidates: np.ndarray) -> np.ndarray:
    """`evidence`'s margin of each row in `rows` for its label in `candidates` (the
    neighbours may name another label than the model's first other)."""
    y = np.asarray(y, dtype=np.int64)
    own = y[rows]
    size = np.bincount(y, minlength=p.shape[1])[own]
    folder = (mean_belief[own, candidates] * size - p[rows, candidates]) / np.maximum(size - 1, 1)
    return p[rows, candidates] - folder - p[rows, own]


def look_alike_pairs(mean_belief: np.ndarray, share: float) -> list[tuple[int, int, float]]:
    """Pairs (a, b), a < b, whose images believe each other's label by `share` or more on
    average (mean over a of p(b) plus mean over b of p(a)), most alike first. One photo in
    a wrong folder moves this by about 1 / (images of the label): far less at 30 or more."""
    overlap = mean_belief + mean_belief.T
    a, b = np.nonzero(np.triu(overlap >= share, k=1))
    pairs = [(int(i), int(j), float(overlap[i, j])) for i, j in zip(a, b, strict=True)]
    return sorted(pairs, key=lambda pair: (-pair[2], pair[0], pair[1]))

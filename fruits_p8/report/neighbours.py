"""Suspected mislabels and near-duplicates from each image's nearest neighbours: pure numpy.

The share of an image's nearest neighbours (PCA space) that carry another label is half of
its suspect score (the other half: `confident`, a model's out-of-fold beliefs); images closer
to each other than a threshold form near-duplicate groups. Spark computes the neighbours
(`fruits_p8.report.knn`); everything here works on plain arrays, so it is tested without
Spark.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

METRICS = ("cosine", "euclidean")


def prepare(vectors: np.ndarray, metric: str) -> np.ndarray:
    """Rows as float32, unit length for cosine (an all-zero row stays zero), so that the
    search is one matrix product per block of queries."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    rows = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
    if metric == "euclidean":
        return rows
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


def largest(score: np.ndarray, k: int, width: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Columns of the k largest entries of each row, largest first (ties by column), and
    those entries; exact. A full partial sort of every row cost more than the matrix
    product: the maxima of blocks of `width` columns give each row a threshold (its k-th
    largest block maximum, never above its k-th largest entry), and only the few entries
    at or above it are sorted."""
    rows, columns = score.shape
    blocks = -(-columns // width)
    if blocks <= k:
        candidates = np.broadcast_to(np.arange(columns), (rows, columns))
        order = np.lexsort((candidates, -score), axis=1)[:, :k]
        return order, np.take_along_axis(score, order, axis=1)
    full = columns // width
    maxima = score[:, :full * width].reshape(rows, full, width).max(axis=2)
    if full < blocks:
        maxima = np.concatenate([maxima, score[:, full * width:].max(axis=1, keepdims=True)],
                                axis=1)
    threshold = np.partition(maxima, blocks - k, axis=1)[:, blocks - k]
    row, column = np.nonzero(score >= threshold[:, None])
    value = score[row, column]
    order = np.lexsort((column, -value, row))
    row, column, value = row[order], column[order], value[order]
    rank = np.arange(len(row)) - np.searchsorted(row, np.arange(rows))[row]
    keep = rank < k
    indices = np.zeros((rows, k), dtype=np.int64)
    found = np.zeros((rows, k), dtype=score.dtype)
    indices[row[keep], rank[keep]] = column[keep]
    found[row[keep], rank[keep]] = value[keep]
    return indices, found


def nearest(queries: np.ndarray, base: np.ndarray, k: int, metric: str,
            query_ids: np.ndarray | None = None, chunk: int = 1024
            ) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest rows of `base` for each query row (both from `prepare`), closest first:
    (indices, distances), each queries × min(k, candidates). `query_ids` are the queries'
    own rows in `base`, never returned as their own neighbour. Cosine distance is 1 − cos."""
    n = len(base)
    k = max(0, min(k, n - (1 if query_ids is not None else 0)))
    indices = np.zeros((len(queries), k), dtype=np.int64)
    distances = np.zeros((len(queries), k), dtype=np.float32)
    if k == 0 or len(queries) == 0:
        return indices, distances
    base_sq = None if metric == "cosine" else np.einsum("ij,ij->i", base, base)
    for start in range(0, len(queries), chunk):
        block = queries[start:start + chunk]
        score = block @ base.T  # larger is closer: cos, or 2 x.y - |y|² for Euclidean
        if metric == "euclidean":
            score *= 2.0
            score -= base_sq[None, :]
        if query_ids is not None:
            score[np.arange(len(block)), query_ids[start:start + chunk]] = -np.inf
        found, best = largest(score, k)
        indices[start:start + len(block)] = found
        if metric == "cosine":
            distances[start:start + len(block)] = 1.0 - best
        else:
            block_sq = np.einsum("ij,ij->i", block, block)
            distances[start:start + len(block)] = np.sqrt(np.maximum(block_sq[:, None] - best,
                                                                     0.0))
    return indices, distances


@dataclass(frozen=True)
class Vote:
    """What an image's neighbours say about its label: the most frequent other label and
    its share of the neighbours (0 when no neighbour carries another label), and the
    majority label (the neighbours' guess, a k-NN classifier's)."""

    neighbour_label: str | None
    score: float
    majority: str | None


def vote(label: str, neighbour_labels: Sequence[str]) -> Vote:
    """The neighbours' verdict on one image; ties go to the image's own label, then by name."""
    if not neighbour_labels:
        return Vote(None, 0.0, None)
    counts = Counter(neighbour_labels)
    majority = min(counts, key=lambda name: (-counts[name], name != label, name))
    others = {name: n for name, n in counts.items() if name != label}
    if not others:
        return Vote(None, 0.0, majority)
    other = min(others, key=lambda name: (-others[name], name))
    return Vote(other, others[other] / len(neighbour_labels), majority)


@dataclass(frozen=True)
class Suspect:
    """An image filed under `label` that the evidence gives to `neighbour_label`: the
    out-of-fold model's beliefs in it and in `label`, its margin, and the share of its
    neighbours that carry it."""

    path: str
    label: str
    neighbour_label: str
    score: float
    distance: float
    neighbours: tuple[str, ...]
    model_probability: float = 0.0
    label_probability: float = 0.0
    margin: float = 0.0
    neighbour_share: float = 0.0

    def to_dict(self) -> dict:
        return {"path": self.path, "label": self.label, "neighbour_label": self.neighbour_label,
                "score": round(self.score, 4), "distance": round(self.distance, 6),
                "model_probability": round(self.model_probability, 4),
                "label_probability": round(self.label_probability, 4),
                "margin": round(self.margin, 4),
                "neighbour_share": round(self.neighbour_share, 4),
                "neighbours": list(self.neighbours)}


def rank_suspects(suspects: Sequence[Suspect], cap: int) -> list[Suspect]:
    """Highest score first; among equal scores the image closest to the other label's
    images first (a frame of another fruit's video sits right beside its siblings)."""
    return sorted(suspects, key=lambda s: (-s.score, s.distance, s.path))[:cap]


def groups_of(n: int, pairs: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Connected components of the pairs (union-find), each sorted, only those of 2 or more,
    largest first."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for i in {i for pair in pairs for i in pair}:
        members.setdefault(root(i), []).append(i)
    groups = [sorted(g) for g in members.values() if len(g) > 1]
    return sorted(groups, key=lambda g: (-len(g), g[0]))


@dataclass(frozen=True)
class DuplicateGroup:
    """Images closer to each other than the threshold, chained."""

    paths: tuple[str, ...]
    labels: tuple[str, ...]
    splits: tuple[str, ...]

    @property
    def spans_labels(self) -> bool:
        return len(self.labels) > 1

    @property
    def spans_splits(self) -> bool:
        """Copies on both sides of a train/test split: the test measures memory, not skill."""
        return len(self.splits) > 1

    def to_dict(self, max_paths: int) -> dict:
        return {"size": len(self.paths), "labels": list(self.labels), "splits": list(self.splits),
                "spans_labels": self.spans_labels, "spans_splits": self.spans_splits,
                "paths": list(self.paths[:max_paths])}


def duplicate_groups(paths: Sequence[str], labels: Sequence[str],
                     splits: Sequence[str | None], pairs: Sequence[tuple[int, int]]
                     ) -> list[DuplicateGroup]:
    """The near-duplicate groups of the close pairs (indices into paths/labels/splits, a
    split None outside a dataset split); groups that span labels or splits first, then the
    largest."""
    found = []
    for members in groups_of(len(paths), pairs):
        spanned = {splits[i] for i in members} - {None}
        found.append(DuplicateGroup(tuple(paths[i] for i in members),
                                    tuple(sorted({labels[i] for i in members})),
                                    tuple(sorted(spanned))))
    return sorted(found, key=lambda g: (not g.spans_splits, not g.spans_labels, -len(g.paths),
                                        g.paths[0]))


def confusions(labels: Sequence[str], majorities: Sequence[str | None], top: int
               ) -> list[dict]:
    """The label pairs the neighbours mix up most: (label, what its neighbours mostly are),
    counted over the images whose neighbours' majority is another label."""
    pairs = Counter((a, b) for a, b in zip(labels, majorities, strict=True)
                    if b is not None and a != b)
    return [{"label": a, "neighbours_say": b, "images": n}
            for (a, b), n in sorted(pairs.items(), key=lambda item: (-item[1], item[0]))[:top]]


def agreement_per_label(labels: Sequence[str], majorities: Sequence[str | None]
                        ) -> dict[str, float]:
    """Per label, the share of its images whose neighbours' majority is that label (a
    leave-one-out k-NN accuracy), worst first."""
    total, hits = Counter(labels), Counter(a for a, b in zip(labels, majorities, strict=True)
                                           if a == b)
    shares = {name: hits[name] / total[name] for name in total}
    return dict(sorted(shares.items(), key=lambda item: (item[1], item[0])))

"""Every image's exact k nearest neighbours in the PCA space, searched by Spark tasks.

The reduced vectors (k components each, small beside the raw features), read once
through Arrow (`rows`), are broadcast once; each task takes one slice of the images as
queries and searches all of them with a matrix product (`neighbours.nearest`), so the
quadratic work is spread over the executors and only the k neighbour indices per image
come back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fruits_p8.report.neighbours import nearest, prepare
from fruits_p8.report.rows import Rows

TASKS_PER_CORE = 2


@dataclass(frozen=True)
class Neighbourhood:
    """The searched images (in row order: path, label, dataset split) and, per image, its
    neighbours' rows and distances, closest first."""

    paths: list[str]
    labels: list[str]
    splits: list[str | None]
    indices: np.ndarray
    distances: np.ndarray


def search(spark, vectors: np.ndarray, k: int, metric: str, tasks: int | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours of every row among all the others, in Spark tasks."""
    n = len(vectors)
    context = spark.sparkContext
    tasks = max(1, min(n, tasks or context.defaultParallelism * TASKS_PER_CORE))
    shared = context.broadcast(prepare(vectors, metric))
    bounds = np.linspace(0, n, tasks + 1).astype(np.int64)

    def slice_search(index: int, _rows):
        base = shared.value
        start, stop = int(bounds[index]), int(bounds[index + 1])
        found, distance = nearest(base[start:stop], base, k, metric,
                                  query_ids=np.arange(start, stop))
        yield start, found.astype(np.int32), distance

    try:
        parts = (context.parallelize(range(tasks), tasks)
                 .mapPartitionsWithIndex(slice_search).collect())
    finally:
        shared.unpersist()
    parts.sort(key=lambda part: part[0])
    indices = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, 0), np.int32)
    distances = np.concatenate([p[2] for p in parts]) if parts else np.zeros((0, 0), np.float32)
    return indices, distances


def neighbourhood(spark, rows: Rows, k: int, metric: str, tasks: int | None = None
                  ) -> Neighbourhood:
    """The labelled images of a run and their k nearest neighbours in the PCA space."""
    paths, labels, splits = rows.paths, rows.labels, rows.splits
    if len(paths) < 2:
        return Neighbourhood(paths, labels, splits, np.zeros((len(paths), 0), np.int32),
                             np.zeros((len(paths), 0), np.float32))
    indices, distances = search(spark, rows.pca, k, metric, tasks)
    return Neighbourhood(paths, labels, splits, indices, distances)

"""Standardisation and PCA from first and second moments: pure numpy, one pass over the data.

Each partition adds up n, the feature sums and the Gram matrix X^T X (BLAS, float64); the
driver merges them and solves the symmetric eigenproblem of the correlation matrix
(`fit_from_moments`). The result equals fitting StandardScaler(withMean, withStd) then PCA
on the scaled data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from fruits_p8.reduce.basis import PcaBasis
from fruits_p8.reduce.pca import check_k, check_rows, k_for_variance


@dataclass
class Moments:
    """Running n, sum and Gram matrix of a set of feature vectors."""

    n: int
    total: np.ndarray
    gram: np.ndarray

    @classmethod
    def empty(cls, dim: int) -> Moments:
        return cls(0, np.zeros(dim), np.zeros((dim, dim)))

    def add(self, rows: np.ndarray) -> Moments:
        """Fold in a block of rows (n_rows, dim)."""
        block = np.asarray(rows, dtype=np.float64)
        self.n += block.shape[0]
        self.total += block.sum(axis=0)
        self.gram += block.T @ block
        return self

    @classmethod
    def from_centred(cls, n: int, mean: np.ndarray, scatter: np.ndarray) -> Moments:
        """The moments of n rows given their mean and the scatter of the centred rows,
        (X - mean)^T (X - mean): what a float32 product of centred rows gives cheaply."""
        mean = np.asarray(mean, dtype=np.float64)
        return cls(n, mean * n, np.asarray(scatter, dtype=np.float64) + n * np.outer(mean, mean))

    @staticmethod
    def nbytes(dim: int) -> int:
        """Size of the Moments of `dim` features: what a task sends back when it sums them."""
        return 8 * (1 + dim + dim * dim)

    def merge(self, other: Moments) -> Moments:
        self.n += other.n
        self.total += other.total
        self.gram += other.gram
        return self

    def to_bytes(self) -> bytes:
        return np.concatenate([[float(self.n)], self.total, self.gram.ravel()]).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, dim: int) -> Moments:
        flat = np.frombuffer(data, dtype=np.float64)
        return cls(int(flat[0]), flat[1 : dim + 1].copy(), flat[dim + 1 :].reshape(dim, dim).copy())


def fit_in_results(tasks: int, dim: int, max_result_bytes: int) -> bool:
    """Whether `tasks` Moments of `dim` features stay within a quarter of a limit on task
    results (Spark's spark.driver.maxResultSize, where 0 means none)."""
    return max_result_bytes == 0 or tasks * Moments.nbytes(dim) <= max_result_bytes // 4


def merge_all(parts: Iterable[Moments], dim: int) -> Moments:
    result = Moments.empty(dim)
    for part in parts:
        result.merge(part)
    return result


@dataclass(frozen=True)
class Standardised:
    """Mean, sample std (ddof=1, as Spark's StandardScaler) and the correlation matrix."""

    mean: np.ndarray
    std: np.ndarray
    correlation: np.ndarray


def standardise(m: Moments) -> Standardised:
    """Mean, std and the covariance of the scaled features; constant features scale to 0."""
    if m.n < 2:
        raise ValueError("need at least 2 rows to estimate a standard deviation")
    mean = m.total / m.n
    covariance = (m.gram - m.n * np.outer(mean, mean)) / (m.n - 1)
    variance = np.clip(np.diag(covariance), 0.0, None)
    std = np.sqrt(variance)
    inverse = np.divide(1.0, std, out=np.zeros_like(std), where=std > 0)
    correlation = covariance * np.outer(inverse, inverse)
    return Standardised(mean, std, (correlation + correlation.T) / 2)


@dataclass(frozen=True)
class Components:
    """Principal axes (columns, by decreasing variance) and their explained-variance ratios."""

    axes: np.ndarray
    ratios: np.ndarray


def principal_components(covariance: np.ndarray) -> Components:
    """Eigen-decomposition of a covariance matrix, sorted, with a deterministic sign per axis."""
    values, vectors = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1]
    values = np.clip(values[order], 0.0, None)
    vectors = vectors[:, order]
    pivots = np.argmax(np.abs(vectors), axis=0)
    signs = np.sign(vectors[pivots, np.arange(vectors.shape[1])])
    vectors = vectors * np.where(signs == 0, 1.0, signs)
    total = values.sum()
    ratios = values / total if total > 0 else np.zeros_like(values)
    return Components(vectors, ratios)


def fit_from_moments(moments: Moments, k: int | None = None,
                     variance: float | None = None) -> PcaBasis:
    """Standardise + PCA from the moments of the rows: k axes, or the fewest that keep
    `variance` of it. No pass over the data, an eigen-solve of a d x d matrix."""
    if (k is None) == (variance is None):
        raise ValueError("give exactly one of k and variance")
    check_rows(moments.n)
    if k is not None:
        check_k(k, moments.total.shape[0], moments.n)
    stats = standardise(moments)
    components = principal_components(stats.correlation)
    if k is None:
        k = k_for_variance(components.ratios, variance)
    return PcaBasis(stats.mean, stats.std, components.axes[:, :k], components.ratios[:k])

"""Multinomial logistic regression in numpy (L-BFGS): the report's quality check on the driver.

The features of a run fit in the driver's memory (4 bytes × 1,280 per image), and a
full-batch L-BFGS on them is a few matrix products per iteration, so the check needs no
Spark job (Spark ML's LogisticRegression cost more than the rest of the report; see
docs/data_quality.md). The columns are standardised on the training rows, as Spark ML does
by default; a small L2 penalty keeps the problem bounded when the classes are separable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MEMORY = 10


@dataclass(frozen=True)
class Softmax:
    """A fitted multinomial logistic regression: standardisation, weights and biases."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    iterations: int

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The most probable class of each row."""
        scores = ((np.asarray(x, np.float32) - self.mean) * self.scale) @ self.weights
        return np.argmax(scores + self.bias, axis=1)


def _loss_and_gradient(params: np.ndarray, x: np.ndarray, onehot: np.ndarray, l2: float
                       ) -> tuple[float, np.ndarray]:
    n, d = x.shape
    classes = onehot.shape[1]
    weights = params[:d * classes].reshape(d, classes)
    bias = params[d * classes:]
    scores = x @ weights.astype(np.float32) + bias.astype(np.float32)
    scores -= scores.max(axis=1, keepdims=True)
    exp = np.exp(scores)
    total = exp.sum(axis=1, keepdims=True)
    log_likelihood = float(np.sum(onehot * (scores - np.log(total)), dtype=np.float64))
    residual = exp / total - onehot
    grad_w = (x.T @ residual).astype(np.float64) / n + l2 * weights
    grad_b = residual.sum(axis=0, dtype=np.float64) / n
    loss = -log_likelihood / n + 0.5 * l2 * float(np.sum(weights * weights))
    return loss, np.concatenate([grad_w.ravel(), grad_b])


def _direction(gradient: np.ndarray, steps: list[np.ndarray], changes: list[np.ndarray]
               ) -> np.ndarray:
    """L-BFGS two-loop recursion: -H·g from the last MEMORY (step, gradient change) pairs."""
    q = gradient.copy()
    alphas = []
    for s, y in zip(reversed(steps), reversed(changes), strict=True):
        alpha = float(s @ q) / float(y @ s)
        alphas.append(alpha)
        q -= alpha * y
    if steps:
        q *= float(steps[-1] @ changes[-1]) / float(changes[-1] @ changes[-1])
    for (s, y), alpha in zip(zip(steps, changes, strict=True), reversed(alphas), strict=True):
        beta = float(y @ q) / float(y @ s)
        q += (alpha - beta) * s
    return -q


def fit(x: np.ndarray, y: np.ndarray, classes: int, max_iter: int = 100, l2: float = 1e-4,
        tol: float = 1e-6, per_column: bool = True) -> Softmax:
    """Fit on rows `x` (n × d) with classes `y` (ints in [0, classes)); stops after
    `max_iter` iterations or once the loss moves by less than `tol` (relative). The columns
    are centred and scaled to unit variance each (`per_column`), or all by one factor (PCA
    components: their own variances say how much each matters)."""
    x = np.asarray(x, dtype=np.float32)
    mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
    std = x.std(axis=0, dtype=np.float64).astype(np.float32)
    if not per_column:
        std = np.full_like(std, float(np.sqrt(np.mean(std.astype(np.float64) ** 2))))
    scale = np.divide(1.0, std, out=np.zeros_like(std), where=std > 0).astype(np.float32)
    scaled = (x - mean) * scale
    onehot = np.zeros((len(x), classes), dtype=np.float32)
    onehot[np.arange(len(x)), np.asarray(y, dtype=np.int64)] = 1.0
    d = x.shape[1]
    params = np.zeros(d * classes + classes)
    loss, gradient = _loss_and_gradient(params, scaled, onehot, l2)
    steps: list[np.ndarray] = []
    changes: list[np.ndarray] = []
    iteration = 0
    for iteration in range(1, max_iter + 1):  # noqa: B007 (the count is returned)
        direction = _direction(gradient, steps, changes)
        slope = float(gradient @ direction)
        if slope >= 0:  # not a descent direction: restart from the gradient
            steps, changes = [], []
            direction, slope = -gradient, -float(gradient @ gradient)
        step = 1.0 if steps else min(1.0, 1.0 / max(1e-12, float(np.abs(gradient).sum())))
        for _ in range(30):  # backtracking (Armijo)
            candidate = params + step * direction
            new_loss, new_gradient = _loss_and_gradient(candidate, scaled, onehot, l2)
            if new_loss <= loss + 1e-4 * step * slope:
                break
            step *= 0.5
        else:
            break
        change = new_gradient - gradient
        if float(change @ (candidate - params)) > 1e-12:
            steps.append(candidate - params)
            changes.append(change)
            del steps[:-MEMORY], changes[:-MEMORY]
        moved = abs(loss - new_loss) / max(abs(loss), 1e-12)
        params, loss, gradient = candidate, new_loss, new_gradient
        if moved < tol:
            break
    weights = params[:d * classes].reshape(d, classes).astype(np.float32)
    return Softmax(mean, scale, weights, params[d * classes:].astype(np.float32), iteration)

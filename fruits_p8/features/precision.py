"""The arithmetic a CNN runs in: float32 (exact reference features) or bfloat16 (faster),
and `auto` (the default): bfloat16 where the CPU runs it natively, float32 elsewhere.

bfloat16 keeps float32's range with an 8-bit mantissa, so the features move a little from
float32's. Whether it is faster depends on the CPU (native bfloat16 instructions or not): measure
with `make bench`; the figures of this project's machines are in docs/performance.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

COMPUTE_PRECISIONS = ("float32", "bfloat16")  # what a CNN runs in
PRECISIONS = ("auto", *COMPUTE_PRECISIONS)  # what a user may ask for
DEFAULT_PRECISION = "auto"
REFERENCE_PRECISION = "float32"  # the exact features; older outputs were all made in it

# /proc/cpuinfo flags of the instructions that make bfloat16 convolutions fast.
NATIVE_BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def check_precision(precision: str) -> None:
    """ValueError unless `precision` is one a CNN runs in (COMPUTE_PRECISIONS)."""
    if precision not in COMPUTE_PRECISIONS:
        raise ValueError(f"precision must be one of {COMPUTE_PRECISIONS}, got {precision!r}")


def precision_of(model_report: Mapping) -> str:
    """The precision a run.json `model` section names; reports from before --precision
    existed were made in float32."""
    return model_report.get("precision", REFERENCE_PRECISION)


def resolve_precision(requested: str, native: bool | None) -> tuple[str, str]:
    """The precision a run computes in, and why: `auto` is bfloat16 where the executors'
    CPU runs it natively (`native`), float32 elsewhere (emulated bfloat16 is slower).

    >>> from fruits_p8.features.precision import resolve_precision
    >>> resolve_precision("auto", native=True)[0], resolve_precision("auto", native=False)[0]
    ('bfloat16', 'float32')
    """
    if requested != "auto":
        return requested, "asked for"
    if native:
        return "bfloat16", "auto: the executors' CPU runs bfloat16 natively (AVX512-BF16/AMX)"
    if native is None:
        return REFERENCE_PRECISION, "auto: the executors' CPU could not be read"
    return REFERENCE_PRECISION, "auto: the executors' CPU has no native bfloat16"


def with_precision(model, precision: str):
    """`model` itself for float32; for bfloat16 a copy with Keras' mixed_bfloat16 policy on
    every layer (weights kept in float32, cast as each layer computes): no process-wide
    setting, so float32 and bfloat16 models can share a Python worker."""
    check_precision(precision)
    if precision == "float32":
        return model
    import keras

    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] != "InputLayer":
            layer["config"]["dtype"] = "mixed_bfloat16"
    mixed = keras.Model.from_config(config)
    mixed.set_weights(model.get_weights())
    return mixed


def native_bfloat16(cpuinfo: str) -> bool:
    """Whether a /proc/cpuinfo text lists an instruction set that runs bfloat16 natively."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return bool(NATIVE_BFLOAT16_FLAGS & set(value.split()))
    return False


def cpu_runs_bfloat16_natively(cpuinfo_path: str = "/proc/cpuinfo") -> bool | None:
    """Whether this machine's CPU runs bfloat16 natively; None where /proc/cpuinfo is missing."""
    try:
        with open(cpuinfo_path) as stream:
            return native_bfloat16(stream.read())
    except OSError:
        return None


@dataclass(frozen=True)
class Agreement:
    """How far features made in another precision are from the float32 ones, row by row."""

    rows: int
    median_relative: float  # ‖other − reference‖ / ‖reference‖, median over rows
    max_relative: float
    min_cosine: float


def agreement(reference: np.ndarray, other: np.ndarray) -> Agreement:
    """Row-wise distance between two (n, d) feature matrices of the same images."""
    if reference.shape != other.shape or reference.ndim != 2:
        raise ValueError(f"need two (n, d) arrays of one shape, got {reference.shape} and "
                         f"{other.shape}")
    ref, oth = reference.astype(np.float64), other.astype(np.float64)
    norms, other_norms = np.linalg.norm(ref, axis=1), np.linalg.norm(oth, axis=1)
    apart = np.linalg.norm(oth - ref, axis=1)
    # a zero row agrees only with a zero row: relative 0 or inf, cosine 1 or 0
    relative = np.divide(apart, norms, out=np.where(apart > 0, np.inf, 0.0), where=norms > 0)
    both = norms * other_norms
    cosine = np.divide((ref * oth).sum(axis=1), both, out=(apart == 0).astype(np.float64),
                       where=both > 0)
    return Agreement(len(ref), float(np.median(relative)), float(relative.max()),
                     float(cosine.min()))


def nearest_neighbour_accuracy(features: np.ndarray, labels: Sequence[str],
                               chunk: int = 1024) -> float:
    """Leave-one-out 1-nearest-neighbour label accuracy (Euclidean): a task-level check of
    features that needs no training, computed in chunks of rows (memory ~ chunk × n)."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if len(x) < 2:
        raise ValueError("need at least 2 rows")
    squared = (x * x).sum(axis=1)
    hits = 0
    for start in range(0, len(x), chunk):
        block = x[start:start + chunk]
        distances = squared[start:start + chunk, None] - 2 * block @ x.T + squared[None, :]
        rows = np.arange(len(block))
        distances[rows, start + rows] = np.inf
        hits += int((y[distances.argmin(axis=1)] == y[start:start + chunk]).sum())
    return hits / len(x)

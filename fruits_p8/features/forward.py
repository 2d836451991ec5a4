"""The CNN as a Python worker runs it: compiled once per worker (WORKER_MODELS), fed uint8
pixel batches, features out; and the preprocessing string that names how pixels were made."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from fruits_p8.features.backbones import Backbone, get_backbone
from fruits_p8.features.fold import fold_batch_norms
from fruits_p8.features.precision import REFERENCE_PRECISION, with_precision
from fruits_p8.features.tf_runtime import import_tensorflow

Forward = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ModelSpec:
    """What identifies a compiled model in a worker: same spec, same model, built once."""

    backbone: str
    weights_sha256: str
    batch_size: int
    threads: int
    precision: str = REFERENCE_PRECISION
    image_size: int | None = None  # the CNN's input side; None: the backbone's own


# Part of what makes a feature: --incremental reuses features only from outputs that say so.
PREPROCESSING = ("rgb; no side over the input size: upscaled in the graph (bilinear, "
                 "rounded); larger: PIL bilinear")


def preprocessing(image_size: int | None, backbone: Backbone) -> str:
    """PREPROCESSING, with the CNN's input side where it is not the backbone's own (so that
    features made at another size are never mixed: --fitted and --incremental compare it)."""
    if image_size is None or image_size == backbone.input_size:
        return PREPROCESSING
    return f"{PREPROCESSING}; input {image_size}x{image_size}"


def image_size_of(text: str) -> int | None:
    """The CNN input side that a `preprocessing` string names; None: the backbone's own.

    >>> image_size_of(PREPROCESSING), image_size_of(PREPROCESSING + "; input 160x160")
    (None, 160)
    """
    if text == PREPROCESSING:
        return None
    head, _, side = text.rpartition("; input ")
    if head != PREPROCESSING or not side.partition("x")[0].isdigit():
        raise ValueError(f"unknown preprocessing {text!r}")
    return int(side.partition("x")[0])


def compile_forward(
    backbone: Backbone, arrays: Iterable[np.ndarray], fold_bn: bool = True,
    precision: str = REFERENCE_PRECISION, image_size: int | None = None,
) -> Forward:
    """uint8 pixels (n, h, w, 3) -> float32 features (n, d), graph-compiled once,
    with BatchNorm folded into the convolutions (same outputs to float rounding, fewer ops),
    computed in `precision` (see fruits_p8.features.precision), on `image_size` pixels a
    side (the backbone's own by default).

    Pixels of the input size go straight in; smaller images are upscaled in the graph
    (bilinear, rounded to whole pixel values as PIL would give them). The batch dimension is
    left open: a partition's last, partial batch runs at its own size instead of being padded
    (no slower than a fixed shape on CPU: docs/performance.md).
    """
    tf = import_tensorflow()

    size = image_size or backbone.input_size
    model = backbone.build_features(size)
    model.set_weights(list(arrays))
    if fold_bn:
        model = fold_batch_norms(model)
    model = with_precision(model, precision)
    scale, offset = backbone.scaling.scale, backbone.scaling.offset

    def features(pixels):
        return tf.cast(model(pixels * scale + offset, training=False), tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8)])
    def forward(pixels):
        return features(tf.cast(pixels, tf.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
    def upscale_forward(pixels):
        return features(tf.round(tf.image.resize(tf.cast(pixels, tf.float32), [size, size])))

    def run(pixels: np.ndarray) -> np.ndarray:
        exact = pixels.shape[1:3] == (size, size)
        return (forward if exact else upscale_forward)(pixels).numpy()

    return run


class WorkerModels:
    """Compiled models of one Python worker process, kept across the tasks it runs."""

    def __init__(self) -> None:
        self._models: dict[ModelSpec, Forward] = {}
        self.builds = 0

    def get(self, spec: ModelSpec, arrays: Callable[[], Iterable[np.ndarray]]) -> Forward:
        if spec not in self._models:
            import_tensorflow(spec.threads)
            self._models[spec] = compile_forward(get_backbone(spec.backbone), arrays(),
                                                 precision=spec.precision,
                                                 image_size=spec.image_size)
            self.builds += 1
        return self._models[spec]


# One per Python worker process: Spark reuses workers, so the model outlives a task.
WORKER_MODELS = WorkerModels()

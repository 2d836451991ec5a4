"""CNN features for a DataFrame of images, the `predict_batch_udf` way.

The driver loads the weights once and broadcasts them; each Python worker builds the model
once (cached for the life of the reused worker) and feeds it fixed-size batches through a
compiled `tf.function`. Rows stream through Arrow record batches: memory stays bounded and
no pandas object columns are made. Every input row comes out, with features or an error.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from fruits_p8.features.backbones import Backbone, get_backbone
from fruits_p8.features.preprocess import ImageError, decode_rgb
from fruits_p8.features.tf_runtime import import_tensorflow
from fruits_p8.features.weights import Weights

log = logging.getLogger(__name__)

OUTPUT_SCHEMA = "path string, label string, features array<float>, error_kind string, error string"
Forward = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ModelSpec:
    """What identifies a compiled model in a worker: same spec, same model, built once."""

    backbone: str
    weights_sha256: str
    batch_size: int
    threads: int


def compile_forward(backbone: Backbone, arrays: Iterable[np.ndarray], batch_size: int) -> Forward:
    """uint8 pixels (batch_size, s, s, 3) -> float32 features (batch_size, d), graph-compiled."""
    tf = import_tensorflow()

    model = backbone.build_features()
    model.set_weights(list(arrays))
    size = backbone.input_size
    scale, offset = backbone.scaling.scale, backbone.scaling.offset

    @tf.function(input_signature=[tf.TensorSpec([batch_size, size, size, 3], tf.uint8)])
    def forward(pixels):
        return model(tf.cast(pixels, tf.float32) * scale + offset, training=False)

    return lambda pixels: forward(pixels).numpy()


class WorkerModels:
    """Compiled models of one Python worker process, kept across the tasks it runs."""

    def __init__(self) -> None:
        self._models: dict[ModelSpec, Forward] = {}
        self.builds = 0

    def get(self, spec: ModelSpec, arrays: Callable[[], Iterable[np.ndarray]]) -> Forward:
        if spec not in self._models:
            import_tensorflow(spec.threads)
            self._models[spec] = compile_forward(get_backbone(spec.backbone), arrays(),
                                                 spec.batch_size)
            self.builds += 1
        return self._models[spec]


# One per Python worker process: Spark reuses workers, so the model outlives a task.
WORKER_MODELS = WorkerModels()


@dataclass
class BatchStats:
    """What one call of featurize_batches did: images through the CNN, errors, batches run."""

    images: int = 0
    errors: int = 0
    batches: int = 0


def featurize_batches(
    batches: Iterable[pa.RecordBatch],
    forward: Forward,
    input_size: int,
    batch_size: int,
    feature_dim: int,
    stats: BatchStats | None = None,
) -> Iterator[pa.RecordBatch]:
    """(path, label, content) record batches -> (path, label, features, error_kind, error).

    Decoding failures become error rows; the CNN sees only decoded images, padded to full
    batches so the compiled graph never retraces.
    """
    stats = stats if stats is not None else BatchStats()
    pixels = np.zeros((batch_size, input_size, input_size, 3), dtype=np.uint8)
    for record in batches:
        contents = record.column("content").to_pylist()
        kinds: list[str | None] = [None] * len(contents)
        messages: list[str | None] = [None] * len(contents)
        features = np.zeros((len(contents), feature_dim), dtype=np.float32)
        ok_rows: list[int] = []
        for row, data in enumerate(contents):
            try:
                pixels[len(ok_rows) % batch_size] = decode_rgb(data or b"", input_size)
            except ImageError as exc:
                kinds[row], messages[row] = exc.kind, exc.message
                stats.errors += 1
                continue
            ok_rows.append(row)
            if len(ok_rows) % batch_size == 0:
                _run_batch(forward, pixels, ok_rows[-batch_size:], features, stats)
        tail = len(ok_rows) % batch_size
        if tail:
            _run_batch(forward, pixels, ok_rows[-tail:], features, stats)
        yield _output_batch(record, features, kinds, messages, feature_dim)


def _run_batch(forward: Forward, pixels: np.ndarray, rows: list[int], features: np.ndarray,
               stats: BatchStats) -> None:
    """One CNN call on the first len(rows) images of `pixels` (the rest is zero padding)."""
    count = len(rows)
    pixels[count:] = 0
    features[rows] = forward(pixels)[:count]
    stats.images += count
    stats.batches += 1


def _output_batch(
    record: pa.RecordBatch, features: np.ndarray, kinds: list, messages: list, dim: int
) -> pa.RecordBatch:
    failed = np.array([k is not None for k in kinds], dtype=bool)
    lengths = np.where(failed, 0, dim)
    offsets = np.zeros(len(kinds) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    values = pa.array(features[~failed].reshape(-1), type=pa.float32())
    column = pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(failed))
    return pa.RecordBatch.from_arrays(
        [record.column("path"), record.column("label"), column,
         pa.array(kinds, type=pa.string()), pa.array(messages, type=pa.string())],
        names=["path", "label", "features", "error_kind", "error"],
    )


@dataclass(frozen=True)
class Counters:
    """Accumulators a task adds to: images through the CNN, error rows, models built."""

    images: object
    errors: object
    builds: object


class Featurizer:
    """Transformer: (path, label, content) -> (path, label, features, error_kind, error).

    Counters (Spark accumulators) tell afterwards how many images went through the CNN and
    how many models the workers built: the proof that the CNN ran once per image.
    """

    def __init__(
        self,
        backbone: Backbone,
        weights: Weights,
        batch_size: int = 64,
        threads_per_task: int = 1,
        arrow_batches_per_model_batch: int = 4,
    ) -> None:
        if weights.backbone != backbone.name:
            raise ValueError(f"weights are for {weights.backbone}, not {backbone.name}")
        self.backbone = backbone
        self.weights = weights
        self.batch_size = batch_size
        self.threads_per_task = threads_per_task
        self.arrow_records = batch_size * arrow_batches_per_model_batch
        self.counters: Counters | None = None

    def transform(self, images):
        """Lazily featurize a DataFrame; sets the Arrow batch size of its session."""
        spark = images.sparkSession
        sc = spark.sparkContext
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(self.arrow_records))
        shared = sc.broadcast(list(self.weights.arrays))
        self.counters = Counters(sc.accumulator(0), sc.accumulator(0), sc.accumulator(0))
        spec = ModelSpec(self.backbone.name, self.weights.sha256, self.batch_size,
                         self.threads_per_task)
        run = functools.partial(featurize_partition, spec, shared, self.counters)
        return images.select("path", "label", "content").mapInArrow(run, OUTPUT_SCHEMA)


def featurize_partition(
    spec: ModelSpec, shared, counters: Counters, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """The mapInArrow body. Module-level on purpose: Spark pickles it by reference, so
    WORKER_MODELS is the worker's own and survives from task to task."""
    backbone = get_backbone(spec.backbone)
    builds_before = WORKER_MODELS.builds
    forward = WORKER_MODELS.get(spec, lambda: shared.value)
    counters.builds.add(WORKER_MODELS.builds - builds_before)
    stats = BatchStats()
    yield from featurize_batches(batches, forward, backbone.input_size, spec.batch_size,
                                 backbone.feature_dim, stats)
    counters.images.add(stats.images)
    counters.errors.add(stats.errors)

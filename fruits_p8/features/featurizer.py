"""CNN features for a DataFrame of images, the `predict_batch_udf` way.

The driver loads the weights once and broadcasts them; each Python worker builds the model
once (cached for the life of the reused worker) and feeds it batches of `batch_size` images
through a compiled `tf.function`. Rows stream through Arrow record batches: memory stays bounded and
no pandas object columns are made. Every input row comes out, with features or an error.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from fruits_p8.features.backbones import Backbone, get_backbone
from fruits_p8.features.forward import WORKER_MODELS, Forward, ModelSpec
from fruits_p8.features.precision import REFERENCE_PRECISION, check_precision
from fruits_p8.features.preprocess import ImageError, decode_for_cnn
from fruits_p8.features.weights import Weights
from fruits_p8.progress import TallyAddress, send_tally
from fruits_p8.reduce.moments import Moments
from fruits_p8.schema import FEATURIZED_COLUMNS


@dataclass
class BatchStats:
    """What one call of featurize_batches did: images through the CNN, errors, batches run,
    and (when given a Moments) the moments of the features it emitted; `report` is told the
    images so far after each CNN batch."""

    images: int = 0
    errors: int = 0
    batches: int = 0
    moments: Moments | None = None
    report: Callable[[int], None] | None = None


def featurize_batches(
    batches: Iterable[pa.RecordBatch],
    forward: Forward,
    input_size: int,
    batch_size: int,
    feature_dim: int,
    stats: BatchStats | None = None,
) -> Iterator[pa.RecordBatch]:
    """Record batches with `label` and `content` (other columns pass through) -> the same rows
    without `content`, plus `digest`, `features`, `error_kind` and `error`.

    A file without a label folder and a file that does not decode become error rows; the CNN
    sees only decoded images, `batch_size` of one shape at a time (fewer for the last of a
    shape in a record batch): small images go in at their own size, see decode_for_cnn.
    """
    stats = stats if stats is not None else BatchStats()
    for record in batches:
        contents = record.column("content").to_pylist()
        problems = _read_problems(record)
        kinds: list[str | None] = [None] * len(contents)
        messages: list[str | None] = [None] * len(contents)
        features = np.zeros((len(contents), feature_dim), dtype=np.float32)
        by_shape: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = {}
        for row, data in enumerate(contents):
            try:
                if problems[row] is not None:
                    raise ImageError(*problems[row])
                if data is None:
                    raise ImageError("unreadable", "cannot be read by this process "
                                     "(permissions)")
                pixels = decode_for_cnn(data, input_size)
            except ImageError as exc:
                kinds[row], messages[row] = exc.kind, exc.message
                stats.errors += 1
                continue
            waiting = by_shape.setdefault(pixels.shape, [])
            waiting.append((row, pixels))
            if len(waiting) == batch_size:
                _run_batch(forward, waiting, batch_size, features, stats)
                waiting.clear()
        for waiting in by_shape.values():
            if waiting:
                _run_batch(forward, waiting, batch_size, features, stats)
        ok_rows = [row for row, kind in enumerate(kinds) if kind is None]
        if stats.moments is not None and ok_rows:
            stats.moments.add(features[ok_rows])
        digests = [hashlib.sha256(data).hexdigest() if data is not None else None
                   for data in contents]
        yield _output_batch(record, digests, features, kinds, messages, feature_dim)


def _read_problems(record: pa.RecordBatch) -> list[tuple[str, str] | None]:
    """Per row, the (kind, message) the reader gave instead of bytes (io/reading.py)."""
    if "read_error" not in record.schema.names:
        return [None] * record.num_rows
    kinds = record.column("read_error").to_pylist()
    details = (record.column("read_detail").to_pylist() if "read_detail" in record.schema.names
               else [None] * len(kinds))
    return [None if kind is None else (kind, detail or kind)
            for kind, detail in zip(kinds, details, strict=True)]


# Input columns the featurized rows do not keep: the bytes, and how they were read.
CONSUMED = ("content", "source", "read_error", "read_detail")
SHAPE_STEP = 8


def _run_batch(forward: Forward, images: list[tuple[int, np.ndarray]], batch_size: int,
               features: np.ndarray, stats: BatchStats) -> None:
    """One CNN call on (row, pixels) pairs of one shape. A call of SHAPE_STEP images or more
    is padded up to a multiple of SHAPE_STEP (at most batch_size): few distinct batch shapes,
    so the CPU kernels prepared for them are reused; a smaller one runs as it is (no 8x
    waste when a record batch holds many image shapes)."""
    count = len(images)
    padded = count if count < SHAPE_STEP else min(batch_size, -(-count // SHAPE_STEP) * SHAPE_STEP)
    pixels = np.zeros((padded, *images[0][1].shape), dtype=np.uint8)
    for slot, (_, image) in enumerate(images):
        pixels[slot] = image
    features[[row for row, _ in images]] = forward(pixels)[:count]
    stats.images += count
    stats.batches += 1
    if stats.report is not None:
        stats.report(stats.images)


def _output_batch(record: pa.RecordBatch, digests: list, features: np.ndarray, kinds: list,
                  messages: list, dim: int) -> pa.RecordBatch:
    failed = np.array([k is not None for k in kinds], dtype=bool)
    lengths = np.where(failed, 0, dim)
    offsets = np.zeros(len(kinds) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    values = pa.array(features[~failed].reshape(-1), type=pa.float32())
    column = pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(failed))
    kept = [name for name in record.schema.names if name not in CONSUMED]
    return pa.RecordBatch.from_arrays(
        [record.column(name) for name in kept]
        + [pa.array(digests, type=pa.string()), column, pa.array(kinds, type=pa.string()),
           pa.array(messages, type=pa.string())],
        names=kept + [name for name, _, _ in FEATURIZED_COLUMNS],
    )


def output_schema(input_schema) -> str:
    """Spark DDL of the featurized frame: the input columns but CONSUMED, then the added ones."""
    kept = [f"`{f.name}` {f.dataType.simpleString()}" for f in input_schema.fields
            if f.name not in CONSUMED]
    return ", ".join(kept + [f"{name} {ddl}" for name, _, ddl in FEATURIZED_COLUMNS])


@dataclass(frozen=True)
class Counters:
    """Accumulators a task adds to: images through the CNN, error rows, models built, and the
    moments (n, sum, X^T X) of the features made, so that a Reducer needs no pass of its own."""

    images: object
    errors: object
    builds: object
    moments: object | None


class MomentsSum:
    """AccumulatorParam for Moments; None is the zero, so no task ships a zero matrix."""

    def zero(self, value: Moments | None) -> None:
        return None

    def addInPlace(self, total: Moments | None, part: Moments | None) -> Moments | None:
        if total is None or part is None:
            return part if total is None else total
        return total.merge(part)


ARROW_RECORDS = "spark.sql.execution.arrow.maxRecordsPerBatch"


class Featurizer:
    """Transformer: images (path, label, content, ...) -> the same rows without content, plus
    digest (sha256 of the bytes), features (array<float>), error_kind and error.

    Counters (Spark accumulators, summed over every frame this featurizer made) tell
    afterwards how many images went through the CNN and how many models the workers built
    (the proof that the CNN ran once per image), and, with `sum_moments`, the moments of the
    features for `Reducer.fit(..., moments=)`. `precision` is the CNN's arithmetic
    (fruits_p8.features.precision); features come out float32 either way. The weights are
    broadcast once, on the first transform; `close()` frees them on the workers. Each Arrow
    batch holds image bytes: run with `session_settings()` (the pipeline does). With
    `tally`, each task sends its image count there after every CNN batch (progress).
    """

    def __init__(
        self,
        backbone: Backbone,
        weights: Weights,
        batch_size: int = 64,
        threads_per_task: int = 1,
        arrow_batches_per_model_batch: int = 4,
        sum_moments: bool = True,
        precision: str = REFERENCE_PRECISION,
        tally: TallyAddress | None = None,
        image_size: int | None = None,
    ) -> None:
        if weights.backbone != backbone.name:
            raise ValueError(f"weights are for {weights.backbone}, not {backbone.name}")
        check_precision(precision)
        self.backbone = backbone
        self.weights = weights
        self.batch_size = batch_size
        self.threads_per_task = threads_per_task
        self.arrow_records = batch_size * arrow_batches_per_model_batch
        self.sum_moments = sum_moments
        self.precision = precision
        self.image_size = image_size
        self.tally = tally
        self.counters: Counters | None = None
        self._shared = None

    def session_settings(self) -> dict[str, str]:
        """Spark settings the featurizer is meant to run with: Arrow batches of a few model
        batches, not Spark's 10,000 rows of image bytes."""
        return {ARROW_RECORDS: str(self.arrow_records)}

    def transform(self, images, read: Callable[[Iterator[pa.RecordBatch]],
                                           Iterator[pa.RecordBatch]] | None = None):
        """Lazily featurize a DataFrame (its session's settings are left as they are).

        With `read` (io.reading.Reader.batches), `images` is a listing without `content`
        and the featurizer's own tasks read the bytes: they never travel through the JVM."""
        sc = images.sparkSession.sparkContext
        if self._shared is None:
            self._shared = sc.broadcast(list(self.weights.arrays))
            self.counters = Counters(
                sc.accumulator(0), sc.accumulator(0), sc.accumulator(0),
                sc.accumulator(None, MomentsSum()) if self.sum_moments else None)
        spec = ModelSpec(self.backbone.name, self.weights.sha256, self.batch_size,
                         self.threads_per_task, self.precision, self.image_size)
        run = functools.partial(featurize_partition, spec, self._shared, self.counters,
                                self.tally, read)
        return images.mapInArrow(run, output_schema(images.schema))

    def close(self) -> None:
        """Free the broadcast weights (after the last action on a transformed frame)."""
        if self._shared is not None:
            self._shared.destroy()
            self._shared = None


def featurize_partition(
    spec: ModelSpec, shared, counters: Counters, tally: TallyAddress | None,
    read: Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]] | None,
    batches: Iterator[pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    """The mapInArrow body. Module-level on purpose: Spark pickles it by reference, so
    WORKER_MODELS is the worker's own and survives from task to task."""
    backbone = get_backbone(spec.backbone)
    builds_before = WORKER_MODELS.builds
    forward = WORKER_MODELS.get(spec, lambda: shared.value)
    counters.builds.add(WORKER_MODELS.builds - builds_before)
    summing = counters.moments is not None
    stats = BatchStats(moments=Moments.empty(backbone.feature_dim) if summing else None,
                       report=_task_report(tally))
    if read is not None:
        batches = read(batches)
    yield from featurize_batches(batches, forward, spec.image_size or backbone.input_size,
                                 spec.batch_size,
                                 backbone.feature_dim, stats)
    counters.images.add(stats.images)
    counters.errors.add(stats.errors)
    if summing:
        counters.moments.add(stats.moments)


def _task_report(tally: TallyAddress | None) -> Callable[[int], None] | None:
    if tally is None:
        return None
    from pyspark import TaskContext

    task = TaskContext.get()
    if task is None:
        return None
    return functools.partial(send_tally, tally, task.partitionId(), task.attemptNumber())

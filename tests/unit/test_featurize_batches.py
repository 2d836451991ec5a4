"""The batch loop of the featurizer, with a stand-in CNN: no TensorFlow, no Spark."""

import hashlib
import io

import numpy as np
import pyarrow as pa
from PIL import Image

from fruits_p8.features.featurizer import BatchStats, MomentsSum, featurize_batches
from fruits_p8.reduce.moments import Moments

SIZE, DIM = 8, 3


def jpeg(color, size=(20, 20)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def fake_cnn(calls, shapes=None):
    def forward(pixels: np.ndarray) -> np.ndarray:
        calls.append(pixels.shape[0])
        if shapes is not None:
            shapes.append(pixels.shape[1:])
        return pixels.reshape(pixels.shape[0], -1, 3).mean(axis=1).astype(np.float32)

    return forward


def record(contents):
    n = len(contents)
    return pa.RecordBatch.from_arrays(
        [pa.array([f"/in/L/{i}.jpg" for i in range(n)], type=pa.string()),
         pa.array(["L"] * n, type=pa.string()),
         pa.array(contents, type=pa.binary())],
        names=["path", "label", "content"],
    )


def test_rows_keep_their_order_and_errors_become_rows():
    colors = [(10, 20, 30), (200, 100, 0), (0, 0, 255), (5, 5, 5), (255, 255, 255)]
    contents = [jpeg(c) for c in colors]
    contents.insert(2, b"garbage")
    contents.insert(4, b"")
    calls, stats = [], BatchStats()
    out = list(featurize_batches([record(contents)], fake_cnn(calls), SIZE, 2, DIM, stats))
    table = pa.Table.from_batches(out)
    assert table.column_names == ["path", "label", "digest", "features", "error_kind", "error"]
    assert table.column("digest").to_pylist()[2] == hashlib.sha256(b"garbage").hexdigest()
    assert table.num_rows == 7
    kinds = table.column("error_kind").to_pylist()
    assert kinds == [None, None, "not_an_image", None, "empty", None, None]
    features = table.column("features").to_pylist()
    assert features[2] is None and features[4] is None
    good = [f for f in features if f is not None]
    assert np.allclose(good, colors, atol=1)
    assert calls == [2, 2, 1]  # a call of fewer than 8 images is not padded
    assert (stats.images, stats.errors, stats.batches) == (5, 2, 3)


def test_several_record_batches_lose_no_rows():
    batches = [record([jpeg((i, i, i)) for i in range(n)]) for n in (3, 0, 5)]
    calls, stats = [], BatchStats()
    out = pa.Table.from_batches(
        list(featurize_batches(batches, fake_cnn(calls), SIZE, 4, DIM, stats))
    )
    assert out.num_rows == 8
    assert stats.images == 8 and stats.errors == 0
    assert calls == [3, 4, 1]  # per record batch: 3, then 4 + 1
    assert out.column("path").to_pylist()[:3] == ["/in/L/0.jpg", "/in/L/1.jpg", "/in/L/2.jpg"]
    assert all(len(f) == DIM for f in out.column("features").to_pylist())


def test_all_errors_still_yield_rows():
    out = list(featurize_batches([record([b"x", b"y"])], fake_cnn([]), SIZE, 4, DIM))
    assert out[0].num_rows == 2
    assert out[0].column("features").null_count == 2


def test_a_short_tail_is_padded_to_a_multiple_of_eight_only():
    calls = []
    out = list(featurize_batches([record([jpeg((i, 0, 0)) for i in range(10)])],
                                 fake_cnn(calls), SIZE, 64, DIM))
    assert calls == [16]
    assert np.allclose([f[0] for f in out[0].column("features").to_pylist()], range(10), atol=1)


def test_small_images_go_in_at_their_own_shape_one_shape_per_call():
    # SIZE = 8: 4x4 and 6x5 go in as they are, 20x20 is downscaled to 8x8
    sizes = [(4, 4), (20, 20), (6, 5), (4, 4), (8, 8), (6, 5), (4, 4)]
    colors = [(10 * i, 200 - 10 * i, 7) for i in range(len(sizes))]
    calls, shapes = [], []
    out = list(featurize_batches([record([jpeg(c, s) for c, s in zip(colors, sizes, strict=True)])],
                                 fake_cnn(calls, shapes), SIZE, 2, DIM))
    features = out[0].column("features").to_pylist()
    assert np.allclose(features, colors, atol=1)  # each row got its own image's features
    assert sorted(zip(shapes, calls, strict=True)) == [
        ((4, 4, 3), 1), ((4, 4, 3), 2), ((5, 6, 3), 2), ((8, 8, 3), 2)]


def test_a_row_the_listing_or_reader_marked_is_an_error_row_and_skips_the_cnn():
    batch = record([jpeg((1, 2, 3)), jpeg((4, 5, 6))])
    batch = batch.append_column("read_error", pa.array([None, "changed"], pa.string()))
    batch = batch.append_column("read_detail", pa.array([None, "size changed"], pa.string()))
    calls, stats = [], BatchStats()
    out = list(featurize_batches([batch], fake_cnn(calls), SIZE, 8, DIM, stats))[0]
    assert out.column("error_kind").to_pylist() == [None, "changed"]
    assert out.column("error").to_pylist()[1] == "size changed"
    assert "read_error" not in out.schema.names and "read_detail" not in out.schema.names
    assert stats.images == 1 and stats.errors == 1


def test_moments_cover_exactly_the_emitted_features():
    contents = [jpeg((i * 40, 255 - i * 30, 7 * i)) for i in range(6)]
    contents.insert(3, b"not an image")
    stats = BatchStats(moments=Moments.empty(DIM))
    out = list(featurize_batches([record(contents[:4]), record(contents[4:])], fake_cnn([]),
                                 SIZE, 4, DIM, stats))
    emitted = np.array([f for b in out for f in b.column("features").to_pylist()
                        if f is not None], dtype=np.float64)
    assert stats.moments.n == len(emitted) == 6
    assert np.allclose(stats.moments.total, emitted.sum(axis=0))
    assert np.allclose(stats.moments.gram, emitted.T @ emitted)


def test_moments_accumulator_merges_and_starts_from_nothing():
    total = MomentsSum()
    one = Moments.empty(2).add(np.array([[1.0, 2.0]]))
    two = Moments.empty(2).add(np.array([[3.0, 4.0], [5.0, 6.0]]))
    assert total.zero(one) is None
    assert total.addInPlace(None, None) is None
    assert total.addInPlace(None, one) is one
    merged = total.addInPlace(total.addInPlace(None, one), two)
    assert merged.n == 3 and np.allclose(merged.total, [9.0, 12.0])

"""The featurizer on local Spark: same numbers as the model called directly, every row out."""

import shutil
import time

import numpy as np
import pytest

from fruits_p8.features.backbones import WeightsContext, get_backbone, load_weights
from fruits_p8.features.featurizer import Featurizer
from fruits_p8.features.forward import compile_forward
from fruits_p8.features.preprocess import decode_for_cnn
from fruits_p8.io.images import read_images
from fruits_p8.progress import ImageTally

pytestmark = [pytest.mark.spark, pytest.mark.parity]


@pytest.fixture(scope="module")
def lite0(cache_dir):
    backbone = get_backbone("efficientnet_lite0")
    return backbone, load_weights(backbone, "package", WeightsContext(cache_dir))


def test_features_equal_a_direct_model_call_and_models_are_built_once(spark, sample_dir, lite0):
    backbone, weights = lite0
    images = read_images(spark, str(sample_dir)).frame
    featurizer = Featurizer(backbone, weights, batch_size=4)
    rows = featurizer.transform(images.repartition(6)).collect()
    files = sorted(sample_dir.rglob("*.jpg"))
    assert len(rows) == len(files) == 24
    assert featurizer.counters.images.value == 24
    assert featurizer.counters.moments.value.n == 24
    # One model per Python worker (a pool Spark keeps across jobs), not one per task.
    assert 1 <= featurizer.counters.builds.value < 6
    by_path = {r.path.removeprefix("file:"): r for r in rows}
    forward = compile_forward(backbone, weights.arrays)
    pixels = np.stack([decode_for_cnn(f.read_bytes(), 224) for f in files[:8]])
    expected = forward(pixels)
    for file, want in zip(files[:8], expected, strict=True):
        row = by_path[str(file)]
        assert row.error_kind is None and row.label == file.parent.name
        assert np.allclose(row.features, want, atol=1e-4)

    again = Featurizer(backbone, weights, batch_size=4, sum_moments=False)
    assert again.transform(images.repartition(4)).count() == 24
    assert again.counters.builds.value == 0  # the workers kept their compiled model
    assert again.counters.moments is None


class RecordingTally(ImageTally):
    def __init__(self, host: str) -> None:
        super().__init__(host)
        self.reports: list[tuple[int, int, int]] = []

    def add(self, partition: int, attempt: int, images: int) -> None:
        self.reports.append((partition, attempt, images))
        super().add(partition, attempt, images)


def test_tasks_report_their_images_after_every_cnn_batch(spark, sample_dir, lite0):
    backbone, weights = lite0
    images = read_images(spark, str(sample_dir)).frame.repartition(2)
    with RecordingTally("127.0.0.1") as tally:
        featurizer = Featurizer(backbone, weights, batch_size=4, tally=tally.address)
        assert featurizer.transform(images).count() == 24
        deadline = time.monotonic() + 5
        while tally.done() < 24 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert tally.done() == featurizer.counters.images.value == 24
    for partition in (0, 1):
        counts = [n for p, _, n in tally.reports if p == partition]
        assert counts == sorted(counts) and len(counts) >= 3  # not one report per task
        assert all(n % 4 == 0 for n in counts[:-1])


def test_unreadable_files_become_error_rows(spark, sample_dir, tmp_path, lite0):
    backbone, weights = lite0
    root = tmp_path / "in"
    shutil.copytree(sample_dir / "Test", root)
    (root / "Banana" / "broken_100.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (root / "Banana" / "empty_100.jpg").write_bytes(b"")
    (root / "Banana" / "notes_100.jpg").write_text("not an image")
    featurizer = Featurizer(backbone, weights, batch_size=4)
    rows = featurizer.transform(read_images(spark, str(root)).frame).collect()
    errors = {r.path.rsplit("/", 1)[1]: r for r in rows if r.error_kind is not None}
    assert len(rows) == 9 + 3
    assert set(errors) == {"broken_100.jpg", "empty_100.jpg", "notes_100.jpg"}
    assert errors["empty_100.jpg"].error_kind == "empty"
    assert errors["notes_100.jpg"].error_kind == "not_an_image"
    assert all(r.features is None and r.label == "Banana" for r in errors.values())
    assert featurizer.counters.errors.value == 3 and featurizer.counters.images.value == 9

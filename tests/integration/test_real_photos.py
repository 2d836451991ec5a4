"""The pipeline on the real Fruits 360 Test split in ../shared (skipped where it is absent)."""

import json
import os
import shutil
from pathlib import Path

import pytest

from fruits_p8 import pipeline
from fruits_p8.config import RunConfig
from fruits_p8.io.images import read_images
from fruits_p8.io.output import LocalOutput
from fruits_p8.report import make_report
from tests.conftest import real_counts

pytestmark = pytest.mark.spark

# Red apples, tomatoes and cherries side by side, and fruit that nothing resembles.
QUALITY_LABELS = ("Apple Braeburn", "Apple Red 1", "Apple Red Delicious", "Apple Pink Lady",
                  "Tomato 1", "Tomato 2", "Tomato Cherry Red", "Cherry 2", "Pepper Green",
                  "Banana", "Kiwi", "Walnut")
QUALITY_PER_LABEL = 30


def test_spark_lists_every_real_photo_under_its_name_and_label(real_photos, spark):
    images = read_images(spark, str(real_photos))
    listed = [(r.path, r.label) for r in images.frame.select("path", "label").collect()]
    assert images.count == len(listed) == 17_845
    on_disk = {f"file:{folder}/{name}": Path(folder).name
               for folder, _, names in os.walk(real_photos.resolve()) for name in names}
    assert dict(listed) == on_disk
    counts: dict[str, int] = {}
    for _, label in listed:
        counts[label] = counts.get(label, 0) + 1
    assert counts == real_counts(real_photos)


def _spread(names: list[str], count: int) -> list[str]:
    names = sorted(names)
    return [names[i * len(names) // count] for i in range(count)]


def test_logistic_regression_on_pca_of_real_photos_reaches_95_percent(
        real_photos, spark, cache_dir, tmp_path):
    subset = tmp_path / "in"
    for label in QUALITY_LABELS:
        (subset / label).mkdir(parents=True)
        for name in _spread([p.name for p in (real_photos / label).glob("*.jpg")],
                            QUALITY_PER_LABEL):
            shutil.copyfile(real_photos / label / name, subset / label / name)
    out = tmp_path / "out"
    # 20 components for 288 training images: the report's logistic regression standardises
    # every column, so at k=200 the noise components weigh as much as the first ones.
    result = pipeline.run(RunConfig(input=str(subset), output=str(out), k=20,
                                    cache_dir=cache_dir), spark=spark)
    assert (result.rows, result.errors) == (360, 0)
    quality = make_report(spark, LocalOutput(out)).quality
    assert quality == json.loads((out / "report" / "quality.json").read_text())
    assert quality["pca"]["test_rows"] + quality["pca"]["train_rows"] == 360
    assert set(quality["pca"]["per_label"]) <= set(QUALITY_LABELS)
    assert quality["pca"]["overall"] >= 0.95, quality["pca"]
    assert quality["raw"]["overall"] >= 0.95, quality["raw"]


def test_training_and_test_folders_are_scored_as_the_dataset_splits_them(
        real_photos, spark, cache_dir, tmp_path):
    data = tmp_path / "fruits-360"
    expected = {"Training": 0, "Test": 0}
    for label in QUALITY_LABELS[:6]:
        names = _spread([p.name for p in (real_photos / label).glob("*.jpg")], 20)
        for i, name in enumerate(names):  # one stretch of each video for training
            split = "Training" if i < 15 else "Test"
            (data / split / label).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(real_photos / label / name, data / split / label / name)
            expected[split] += 1
    out = tmp_path / "out"
    pipeline.run(RunConfig(input=str(data), output=str(out), k=10, cache_dir=cache_dir),
                 spark=spark)
    quality = make_report(spark, LocalOutput(out)).quality
    folders, folders_raw = quality["training_test_pca"], quality["training_test_raw"]
    assert (folders["train_rows"], folders["test_rows"]) == (expected["Training"],
                                                             expected["Test"])
    assert (folders_raw["train_rows"], folders_raw["test_rows"]) == (90, 30)
    assert "Training/" in folders["fit"] and "training images only" in folders["fit"]
    assert folders["overall"] >= 0.8 and folders_raw["overall"] >= 0.8, quality
    assert quality["pca"]["train_rows"] + quality["pca"]["test_rows"] == 120
    html = (out / "report" / "index.html").read_text(encoding="utf-8")
    assert "under Training/, tested on the 30 under Test/" in html

"""Done-when of issue 22: real photos moved into wrong label folders rank among the top
suspects of `fruits-p8 run --report`."""

import json
import random
import shutil

from fruits_p8.cli import main

LABELS = ("Apple Braeburn", "Banana", "Cherry 1", "Kiwi", "Lemon", "Pear", "Plum", "Walnut")
PER_LABEL = 40
MOVED = 24


def test_moved_images_rank_among_the_top_suspects(real_photos, tmp_path, spark):
    rng = random.Random(22)
    data = tmp_path / "photos"
    for label in LABELS:
        (data / label).mkdir(parents=True)
        for photo in sorted((real_photos / label).glob("*.jpg"))[:PER_LABEL]:
            shutil.copyfile(photo, data / label / photo.name)
    moved = set()
    for photo in rng.sample(sorted(data.glob("*/*.jpg")), MOVED):
        wrong = rng.choice([name for name in LABELS if name != photo.parent.name])
        target = data / wrong / f"moved_{photo.parent.name.replace(' ', '_')}_{photo.name}"
        photo.rename(target)
        moved.add(target.name)
    out = tmp_path / "out"
    assert main(["run", "--input", str(data), "--output", str(out), "--k", "50",
                 "--report"], spark=spark) == 0
    quality = json.loads((out / "report" / "data_quality.json").read_text())
    top = [s["path"].rsplit("/", 1)[1] for s in quality["suspected_mislabels"][:2 * MOVED]]
    recall = len(moved & set(top)) / MOVED
    assert recall >= 0.9, (recall, quality["counts"])
    assert "suspect-case" in (out / "report" / "index.html").read_text()
    run = json.loads((out / "run.json").read_text())
    assert run["report"]["data_quality"] == quality["counts"]
    assert run["report"]["data_quality"]["suspected_mislabels"] >= MOVED * 0.9

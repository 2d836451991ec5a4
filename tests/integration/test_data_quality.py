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


PER_LABEL_ALL = 30
MOVED_ALL = 20


def test_moved_photos_among_3090_of_103_labels_lead_the_suspects(real_photos, tmp_path, spark):
    """Issue 30: 30 photos of each of the 103 labels (spread over each label's video, so
    look-alike labels are fully there), 20 moved into wrong folders: >= 19 of them in the top
    40 suspects and >= 18 of the top 20 suspects moved (precision, not only recall)."""
    rng = random.Random(30)
    data = tmp_path / "photos"
    for folder in sorted(p for p in real_photos.iterdir() if p.is_dir()):
        photos = sorted(folder.glob("*.jpg"))
        (data / folder.name).mkdir(parents=True)
        for i in range(PER_LABEL_ALL):
            photo = photos[i * len(photos) // PER_LABEL_ALL]
            shutil.copyfile(photo, data / folder.name / photo.name)
    labels = sorted(p.name for p in data.iterdir())
    moved = set()
    for photo in rng.sample(sorted(data.glob("*/*.jpg")), MOVED_ALL):
        wrong = rng.choice([name for name in labels if name != photo.parent.name])
        target = data / wrong / f"moved_{photo.name}"
        photo.rename(target)
        moved.add(f"{wrong}/{target.name}")
    out = tmp_path / "out"
    assert main(["run", "--input", str(data), "--output", str(out), "--report"],
                spark=spark) == 0
    quality = json.loads((out / "report" / "data_quality.json").read_text())
    ranked = ["/".join(s["path"].rsplit("/", 2)[1:]) for s in quality["suspected_mislabels"]]
    found_40, found_20 = len(moved & set(ranked[:40])), len(moved & set(ranked[:20]))
    counts = quality["counts"]
    print(f"moved in the top 40: {found_40}, among the top 20: {found_20}, suspects "
          f"{counts['suspected_mislabels']}, pairs {counts['look_alike_pairs']}")
    assert quality["counts"]["images"] == 103 * PER_LABEL_ALL
    assert found_40 >= 19 and found_20 >= 18, (found_40, found_20, ranked[:40])
    first = quality["suspected_mislabels"][0]
    assert {"path", "label", "neighbour_label", "score", "model_probability",
            "label_probability", "margin", "neighbour_share"} <= set(first)
    html = (out / "report" / "index.html").read_text()
    assert html.index("id='suspects'") < html.index("Quality check per label")
    assert html.index("id='look-alike'") < html.index("Images per label")

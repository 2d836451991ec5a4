"""The data-quality section shows suspects and near-duplicates as pictures, in a real browser."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fruits_p8.report.data_quality_html import STYLE, section, shown_paths
from fruits_p8.report.thumbnails import thumbnails

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "chrome-headless-shell")
COUNT_SCRIPT = """<script>window.addEventListener('load', () => {
 const shown = [...document.querySelectorAll('img.thumb')].filter(i => i.naturalWidth > 0);
 document.body.setAttribute('data-rendered', shown.length);
 document.body.setAttribute('data-total', document.querySelectorAll('img.thumb').length);
});</script>"""


def quality_of(photos):
    paths = [str(p) for p in sorted(photos.glob("Apple Braeburn/*.jpg"))[:4]]
    pears = [str(p) for p in sorted(photos.glob("Pear/*.jpg"))[:3]]
    return {
        "settings": {"neighbours": 3, "metric": "cosine", "min_score": 0.6,
                     "duplicate_distance": 0.02},
        "counts": {"images": 7, "suspected_mislabels": 1, "near_duplicate_groups": 1,
                   "near_duplicate_images": 2, "groups_across_labels": 0,
                   "groups_across_splits": 0},
        "suspected_mislabels": [{"path": paths[0], "label": "Apple Braeburn",
                                 "neighbour_label": "Pear", "score": 1.0, "neighbours": pears}],
        "near_duplicates": [{"size": 2, "labels": ["Apple Braeburn"], "splits": [],
                             "spans_labels": False, "spans_splits": False,
                             "paths": paths[1:3]}],
        "confusions": [{"label": "Apple Braeburn", "neighbours_say": "Pear", "images": 1}],
    }


def labels_of(quality) -> dict[str, str]:
    """Each shown image's stored label (here: its folder's name, as a run stores it)."""
    return {p: Path(p).parent.name for p in shown_paths(quality)}


def test_captions_are_the_stored_labels_not_a_folder_name():
    quality = {
        "settings": {"neighbours": 2, "metric": "cosine", "min_score": 0.6,
                     "duplicate_distance": 0.02},
        "counts": {"images": 3, "suspected_mislabels": 1, "near_duplicate_groups": 1,
                   "near_duplicate_images": 2, "groups_across_labels": 1,
                   "groups_across_splits": 0},
        "suspected_mislabels": [{"path": "s3://b/Pear/x.jpg", "label": "Pear",
                                 "neighbour_label": "Apple", "score": 1.0,
                                 "neighbours": ["s3://b/photos/1.jpg", "s3://b/photos/2.jpg"]}],
        "near_duplicates": [{"size": 2, "labels": ["Apple", "Pear"], "splits": [],
                             "spans_labels": True, "spans_splits": False,
                             "paths": ["s3://b/photos/1.jpg", "s3://b/Pear/x.jpg"]}],
    }
    labels = {"s3://b/photos/1.jpg": "Apple", "s3://b/photos/2.jpg": "Apple",
              "s3://b/Pear/x.jpg": "Pear"}
    html = section(quality, {}, labels)
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", html)
    assert captions == ["Pear", "Apple", "Apple", "Apple", "Pear"]
    assert html.count('class="thumb other"') == 2  # the neighbours carry the suggested label
    assert "photos" not in captions


def test_every_shown_image_gets_a_thumbnail_and_a_missing_one_a_placeholder(real_photos,
                                                                             tmp_path):
    quality = quality_of(real_photos)
    quality["near_duplicates"][0]["paths"].append(str(tmp_path / "gone.jpg"))
    thumbs = thumbnails(shown_paths(quality))
    html = section(quality, thumbs, labels_of(quality))
    assert html.count('class="thumb"') == 6
    assert html.count('class="missing"') == 1
    assert "<b>Pear</b>" in html


def test_the_suspects_and_groups_render_in_chromium(real_photos, tmp_path):
    browser = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no Chromium binary (apt-get install chromium-headless-shell)")
    quality = quality_of(real_photos)
    page = tmp_path / "index.html"
    body = section(quality, thumbnails(shown_paths(quality)), labels_of(quality))
    page.write_text(f"<!doctype html><html><head><meta charset='utf-8'><style>{STYLE}</style>"
                    f"</head><body>{body}"
                    f"{COUNT_SCRIPT}</body></html>", encoding="utf-8")
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                          "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    rendered = re.search(r'data-rendered="(\d+)"', dom)
    total = re.search(r'data-total="(\d+)"', dom)
    assert rendered and total, dom[-500:]
    assert int(total.group(1)) == 6
    assert int(rendered.group(1)) == 6

"""The page at 100+ labels: findings first, the per-label table and the counts compact."""

import re

from fruits_p8.report import label_counts
from fruits_p8.report.page import render
from fruits_p8.report.quality import Accuracy
from tests.unit.test_page import REPORT

LABELS = [f"Fruit {i:03d}" for i in range(103)]


def accuracies(below: dict[str, float]) -> dict[str, Accuracy]:
    per_label = {name: below.get(name, 1.0) for name in LABELS}
    return {"pca": Accuracy(0.99, per_label, 800, 200, "", 50),
            "raw": Accuracy(1.0, dict.fromkeys(LABELS, 1.0), 800, 200, "")}


def test_only_the_labels_below_100_percent_get_a_row_the_rest_one_line():
    html = render(REPORT, {}, {}, accuracies({"Fruit 007": 0.8, "Fruit 050": 0.95}))
    table = html[html.index("Quality check per label"):]
    rows = re.findall(r"<tr><td>(Fruit \d+)</td>", table)
    assert rows == ["Fruit 007", "Fruit 050"]  # worst first
    assert "The other 101 labels: 100 % on both" in table


def test_the_findings_come_right_after_the_accuracy_and_before_the_figures():
    images = {"images_per_label.png": b"png", "explained_variance.png": b"png"}
    html = render(REPORT, images, {}, accuracies({}), "<p>EXTRA</p>", "", "<p>FIRST</p>",
                  {"images_per_label.png": "<p>NOTE</p>"})
    order = [html.index(mark) for mark in ("Accuracy:", "FIRST", "Quality check per label",
                                           "Images per label", "NOTE", "Explained variance",
                                           "EXTRA", "Errors")]
    assert order == sorted(order)
    assert "All 103 labels: 100 % on both" in html


def test_a_histogram_and_only_the_unusual_labels_named_at_103_labels():
    counts = {name: 160 + i % 7 for i, name in enumerate(LABELS)}
    counts["Fruit 010"], counts["Fruit 020"] = 12, 700
    png, note = label_counts.figure(counts, {"Fruit 030": 2})
    assert png.startswith(b"\x89PNG")
    assert "Unusually few: Fruit 010 (12)" in note
    assert "Unusually many: Fruit 020 (700)" in note
    assert "Errors</span> in Fruit 030 (2)" in note
    assert note.count("Fruit") == 3 + 2  # fewest and most named in the range, nothing else
    bars, nothing = label_counts.figure(dict(list(counts.items())[:12]), {})
    assert bars.startswith(b"\x89PNG") and nothing == ""

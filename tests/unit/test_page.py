"""The report page from plain data: no Spark."""

from fruits_p8.report.page import render

REPORT = {
    "input": "in", "output": "out",
    "counts": {"files": 5003, "rows_written": 3, "errors": 5000},
    "model": {"backbone": "efficientnet_lite0", "feature_dim": 1280, "random_weights": False,
              "weights": {"source": "package:x", "sha256": "ab" * 32}},
    "pca": {"k": 2, "explained_variance": {"total": 0.9}},
    "timings_s": {"total": 1.0},
    "versions": {"python": "3.11"},
}


def test_errors_are_counted_per_kind_beyond_the_examples_shown():
    html = render(REPORT, {}, {"corrupt": (4990, ["a/1.jpg", "a/2.jpg", "a/3.jpg"]),
                               "empty": (10, ["b/<0>.jpg"])}, None)
    assert "<td>corrupt</td><td class=\"num\">4990</td><td>a/1.jpg, a/2.jpg, a/3.jpg</td>" in html
    assert "<td>empty</td><td class=\"num\">10</td><td>b/&lt;0&gt;.jpg</td>" in html


def test_no_errors_says_so():
    assert "Every file gave features." in render(REPORT, {}, {}, None)


def test_the_precision_is_shown_and_an_older_report_was_float32():
    bfloat16 = {**REPORT, "model": {**REPORT["model"], "precision": "bfloat16"}}
    assert "<td>precision</td><td>bfloat16</td>" in render(bfloat16, {}, {}, None)
    assert "<td>precision</td><td>float32</td>" in render(REPORT, {}, {}, None)

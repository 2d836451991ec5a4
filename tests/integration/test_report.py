"""The HTML report: valid PNGs, a self-contained page that shows them, a quality check."""

import base64
import io
import json
from html.parser import HTMLParser

import pytest
from PIL import Image

from fruits_p8 import pipeline
from fruits_p8.config import RunConfig
from fruits_p8.errors import InputError
from fruits_p8.io.output import LocalOutput
from fruits_p8.report import make_report
from fruits_p8.sample import STYLES, make_sample

pytestmark = pytest.mark.spark


class Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        for key in ("href", "src"):
            if attrs.get(key, "").startswith(("http:", "https:", "//")):
                self.links.append(attrs[key])


@pytest.fixture(scope="module")
def reported(spark, cache_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("report-sample")
    make_sample(root, styles=STYLES[:4], splits={"Test": 15})
    out = tmp_path_factory.mktemp("report") / "out"
    (root / "Banana").mkdir(exist_ok=True)
    (root / "Test" / "Banana" / "bad_100.jpg").write_bytes(b"<html>not an image</html>")
    pipeline.run(RunConfig(input=str(root), output=str(out), k=6, batch_size=16,
                           cache_dir=cache_dir), spark=spark)
    return make_report(spark, LocalOutput(out)), out


def test_pngs_are_valid_and_the_page_embeds_exactly_them(reported):
    result, out = reported
    folder = out / "report"
    assert sorted(p.name for p in folder.iterdir()) == [
        "data_quality.json", "explained_variance.png", "images_per_label.png", "index.html",
        "pca_scatter.png", "quality.json", "timings.png"]
    sizes = {"explained_variance.png": (800, 400), "pca_scatter.png": (800, 600)}
    for name, size in sizes.items():
        assert Image.open(folder / name).size == size
    parser = Images()
    parser.feed((folder / "index.html").read_text(encoding="utf-8"))
    assert parser.links == []  # self-contained: nothing fetched from elsewhere
    figures = [img for img in parser.images if "data-file" in img]
    thumbs = [img for img in parser.images if "data-file" not in img]
    assert {img["data-file"] for img in figures} == {p.name for p in folder.glob("*.png")}
    assert thumbs and all(img["src"].startswith("data:image/jpeg;base64,") for img in thumbs)
    for img in figures:
        assert img["src"].startswith("data:image/png;base64,")
        embedded = base64.b64decode(img["src"].split(",", 1)[1])
        assert embedded == (folder / img["data-file"]).read_bytes()
        Image.open(io.BytesIO(embedded)).verify()
    assert result.location == f"{out}/report/index.html"


def test_page_tells_the_facts_of_the_run(reported):
    _, out = reported
    html = (out / "report" / "index.html").read_text(encoding="utf-8")
    run = json.loads((out / "run.json").read_text())
    assert run["model"]["weights"]["source"] in html
    assert "efficientnet_lite0" in html and "k = 6" in html
    assert "not_an_image" in html and "bad_100.jpg" in html  # the error summary
    assert "RANDOM" not in html


def test_quality_check_compares_pca_and_raw_features(reported):
    result, out = reported
    quality = json.loads((out / "report" / "quality.json").read_text())
    assert quality == result.quality
    labels = {s.label for s in STYLES[:4]}
    for name in ("pca", "raw"):
        per_label = quality[name]["per_label"]
        assert per_label and set(per_label) <= labels
        assert all(0.0 <= accuracy <= 1.0 for accuracy in per_label.values())
        assert (quality[name]["train_rows"], quality[name]["test_rows"]) == (48, 12)
    # drawn fruit of four kinds are easy to tell apart from ImageNet features
    assert quality["raw"]["overall"] >= 0.8
    assert quality["pca"]["overall"] >= 0.7


def test_report_of_a_missing_output_is_an_input_error(spark, tmp_path):
    with pytest.raises(InputError, match="no finished run output"):
        make_report(spark, LocalOutput(tmp_path / "nothing"))


def test_run_json_gains_the_reports_counts_and_seconds_and_stays_a_finished_output(reported):
    result, out = reported
    run = json.loads((out / "run.json").read_text())
    data_quality = json.loads((out / "report" / "data_quality.json").read_text())
    quality = json.loads((out / "report" / "quality.json").read_text())
    assert run["report"]["data_quality"] == data_quality["counts"] == result.data_quality
    assert run["report"]["quality"] == {name: a["overall"] for name, a in quality.items()}
    steps = run["report"]["timings_s"]
    assert {"read", "quality", "data_quality", "plots", "thumbnails", "page"} <= set(steps)
    assert steps["total"] >= max(v for k, v in steps.items() if k != "total") > 0
    output = LocalOutput(out)
    assert output.state() == "finished" and output.read_report() == run
    output.check(replace=True)  # still ours: a later --overwrite may replace it

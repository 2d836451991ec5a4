"""`fruits-p8 report OUTPUT`: an HTML page and PNGs that show what a run's features are worth.

Reads a finished output (run.json, features, errors), draws the explained variance, a 2-D
PCA scatter, images per label and stage timings, runs a linear-classifier quality check on
the PCA and the raw features, looks for suspected mislabels and near-duplicates among the
images' nearest neighbours, and writes report/index.html (self-contained), the PNGs,
report/quality.json and report/data_quality.json inside the output.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass

import numpy as np

from fruits_p8.config import MAX_POINTS
from fruits_p8.errors import InputError
from fruits_p8.io.output import dumps_report
from fruits_p8.io.s3 import S3Settings
from fruits_p8.report import data_quality_html, label_counts, page, plots
from fruits_p8.report.data_quality import assess
from fruits_p8.report.quality import ITERATIONS, compare
from fruits_p8.report.rows import Rows, read_rows
from fruits_p8.report.thumbnails import thumbnails
from fruits_p8.run_report import Timings
from fruits_p8.schema import ERRORS, REPORT_DIR, RUN_JSON

log = logging.getLogger(__name__)
ERROR_EXAMPLES = 3


@dataclass(frozen=True)
class ReportResult:
    location: str
    files: list[str]
    quality: dict | None
    data_quality: dict | None = None
    timings_s: dict[str, float] | None = None


def sample_points(rows: Rows, max_points: int, seed: int = 7
                  ) -> tuple[np.ndarray, list[str]]:
    """Up to max_points (pc1, pc2) points and their labels, sampled at random (the same
    each time)."""
    if len(rows) == 0 or rows.pca.shape[1] < 2:
        return np.zeros((0, 2)), []
    chosen = np.sort(np.random.default_rng(seed).permutation(len(rows))[:max_points])
    return (rows.pca[chosen, :2].astype(np.float64),
            [rows.labels[i] or "(none)" for i in chosen])


def read_errors(spark, output) -> tuple[dict[str, int], dict[str, tuple[int, list[str]]]]:
    """Errors per label, and per kind their count and the first few paths."""
    table = output.read_table(spark, ERRORS, ["path", "label", "error_kind"])
    per_label: Counter[str] = Counter()
    kinds: dict[str, list[str]] = {}
    for path, label, kind in zip(*(table.column(c).to_pylist()
                                   for c in ("path", "label", "error_kind")), strict=True):
        per_label[label or "(none)"] += 1
        kinds.setdefault(kind, []).append(path)
    return dict(per_label), {kind: (len(paths), sorted(paths)[:ERROR_EXAMPLES])
                       for kind, paths in kinds.items()}


def summary(quality: dict | None, neighbours: dict | None, timings: dict[str, float]) -> dict:
    """What run.json keeps of the report: accuracies, data-quality counts, seconds."""
    return {"quality": None if quality is None else {name: a["overall"]
                                                     for name, a in quality.items()},
            "data_quality": None if neighbours is None else neighbours["counts"],
            "timings_s": timings}


def make_report(spark, output, max_points: int = MAX_POINTS,
                quality_iterations: int = ITERATIONS, data_quality: bool = True,
                settings: S3Settings | None = None) -> ReportResult:
    """Build the report of a finished output (LocalOutput or S3Output) and publish it there,
    its summary added to run.json; `settings` reach images in S3 for the thumbnails."""
    report = output.read_report()
    if report is None:
        raise InputError(f"no finished run output at {output.uri} (run `fruits-p8 run` first)")
    timings = Timings()
    with timings.stage("read"):
        rows = read_rows(spark, output)
        errors_per_label, error_kinds = read_errors(spark, output)
    labelled = rows.labelled()
    per_label = dict(Counter(label or "(none)" for label in rows.labels))
    with timings.stage("quality"):
        log.info("quality check: logistic regression on PCA and on raw features ...")
        quality = compare(labelled, int(report["pca"]["k"]), quality_iterations)
    neighbours = None
    if data_quality:
        with timings.stage("data_quality"):
            log.info("data quality: nearest neighbours, suspected mislabels, "
                     "near-duplicates ...")
            neighbours = assess(spark, labelled)
    examples: dict[str, str] = {}
    for path, label in zip(labelled.paths, labelled.labels, strict=True):
        examples.setdefault(label, path)  # rows are ordered by path: the first is the least

    with timings.stage("plots"):
        variance = report["pca"]["explained_variance"]
        counts_png, counts_note = label_counts.figure(per_label, errors_per_label)
        images = {
            "explained_variance.png": plots.explained_variance(
                variance["per_component"], variance["cumulative"],
                report["pca"].get("requested_variance")),
            "images_per_label.png": counts_png,
            "timings.png": plots.stage_timings(report["timings_s"]),
        }
        points, labels = sample_points(rows, max_points)
        if len(points) and len(set(labels)) <= plots.LEGEND_MAX:
            images["pca_scatter.png"] = plots.pca_scatter(points, labels)
    with timings.stage("thumbnails"):
        thumbs = thumbnails(data_quality_html.shown_paths(neighbours or {}, examples), settings)
    quality_json = None if quality is None else {name: a.to_dict()
                                                 for name, a in quality.items()}
    with timings.stage("page"):
        extra = ["<h2>Labels</h2>", data_quality_html.label_gallery(examples, per_label, thumbs)]
        first = ""
        if neighbours is not None:
            labels = dict(zip(labelled.paths, labelled.labels, strict=True))
            first = data_quality_html.findings(neighbours, thumbs, labels)
            extra.append(data_quality_html.duplicates(neighbours, thumbs, labels))
        html = page.render(report, images, error_kinds, quality, "\n".join(extra),
                           data_quality_html.STYLE, first,
                           {"images_per_label.png": counts_note})
        files = {f"{REPORT_DIR}/{name}": data for name, data in images.items()}
        files[f"{REPORT_DIR}/quality.json"] = (json.dumps(quality_json, indent=2) + "\n"
                                               ).encode()
        if neighbours is not None:
            files[f"{REPORT_DIR}/data_quality.json"] = (json.dumps(neighbours, indent=2)
                                                        + "\n").encode()
        files[f"{REPORT_DIR}/index.html"] = html.encode("utf-8")
        for name, data in files.items():
            output.publish(name, data)
    timings.stages["total"] = timings.total
    # run.json last, with the lease held: it says what the report found and what it cost
    output.publish(RUN_JSON, dumps_report({**report, "report": summary(
        quality_json, neighbours, timings.stages)}).encode())
    return ReportResult(f"{output.uri}/{REPORT_DIR}/index.html", sorted(files), quality_json,
                        None if neighbours is None else neighbours["counts"], timings.stages)

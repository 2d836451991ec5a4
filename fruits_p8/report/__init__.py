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
from dataclasses import dataclass

import numpy as np

from fruits_p8.errors import InputError
from fruits_p8.io.output import ERRORS, FEATURES
from fruits_p8.io.s3 import S3Settings
from fruits_p8.report import data_quality_html, page, plots
from fruits_p8.report.data_quality import assess
from fruits_p8.report.quality import compare
from fruits_p8.report.thumbnails import thumbnails
from fruits_p8.schema import REPORT_DIR

log = logging.getLogger(__name__)
ERROR_EXAMPLES = 3


@dataclass(frozen=True)
class ReportResult:
    location: str
    files: list[str]
    quality: dict | None
    data_quality: dict | None = None


def sample_points(features, max_points: int, seed: int = 7):
    """Up to max_points (label, pc1, pc2) rows, sampled at random (the same each time)."""
    from pyspark.sql import functions as F

    rows = (features.where(F.size("pca") >= 2)
            .select("label", F.col("pca")[0].alias("x"), F.col("pca")[1].alias("y"))
            .orderBy(F.rand(seed)).limit(max_points).collect())
    points = np.array([[r.x, r.y] for r in rows], dtype=np.float64).reshape(-1, 2)
    return points, [r.label or "(none)" for r in rows]


def make_report(spark, output, max_points: int = 2000, quality_iterations: int = 100,
                data_quality: bool = True, settings: S3Settings | None = None) -> ReportResult:
    """Build the report of a finished output (LocalOutput or S3Output) and publish it there;
    `settings` reach images in S3 for the thumbnails."""
    from pyspark.sql import functions as F

    report = output.read_report()
    if report is None:
        raise InputError(f"no finished run output at {output.uri} (run `fruits-p8 run` first)")
    features = output.read_dataset(spark, FEATURES).cache()
    errors = output.read_dataset(spark, ERRORS)
    per_label = {r.label or "(none)": r["count"]
                 for r in features.groupBy("label").count().collect()}
    errors_per_label = {r.label or "(none)": r["count"]
                        for r in errors.groupBy("label").count().collect()}
    error_kinds = {r.error_kind: (r.n, list(r.examples)) for r in errors.groupBy("error_kind")
                   .agg(F.count("*").alias("n"),
                        F.slice(F.sort_array(F.collect_list("path")), 1, ERROR_EXAMPLES)
                        .alias("examples")).collect()}
    points, labels = sample_points(features, max_points)
    log.info("quality check: logistic regression on PCA and on raw features ...")
    quality = compare(features, quality_iterations)
    neighbours = None
    if data_quality:
        log.info("data quality: nearest neighbours, suspected mislabels, near-duplicates ...")
        neighbours = assess(spark, features)
    examples = {r.label: r.path for r in features.where(F.col("label").isNotNull())
                .groupBy("label").agg(F.min("path").alias("path")).collect()}
    features.unpersist()

    variance = report["pca"]["explained_variance"]
    images = {
        "explained_variance.png": plots.explained_variance(
            variance["per_component"], variance["cumulative"],
            report["pca"].get("requested_variance")),
        "images_per_label.png": plots.counts_per_label(per_label, errors_per_label),
        "timings.png": plots.stage_timings(report["timings_s"]),
    }
    if len(points) and len(set(labels)) <= plots.LEGEND_MAX:
        images["pca_scatter.png"] = plots.pca_scatter(points, labels)
    thumbs = thumbnails(data_quality_html.shown_paths(neighbours or {}, examples), settings)
    extra = ["<h2>Labels</h2>", data_quality_html.label_gallery(examples, per_label, thumbs)]
    if neighbours is not None:
        extra.append(data_quality_html.section(neighbours, thumbs))
    html = page.render(report, images, error_kinds, quality, "\n".join(extra),
                       data_quality_html.STYLE)
    quality_json = None if quality is None else {
        name: {"overall": a.overall, "per_label": a.per_label, "train_rows": a.train_rows,
               "test_rows": a.test_rows} for name, a in quality.items()}
    files = {f"{REPORT_DIR}/{name}": data for name, data in images.items()}
    files[f"{REPORT_DIR}/quality.json"] = (json.dumps(quality_json, indent=2) + "\n").encode()
    if neighbours is not None:
        files[f"{REPORT_DIR}/data_quality.json"] = (json.dumps(neighbours, indent=2) + "\n"
                                                    ).encode()
    files[f"{REPORT_DIR}/index.html"] = html.encode("utf-8")
    for name, data in files.items():
        output.publish(name, data)
    return ReportResult(f"{output.uri}/{REPORT_DIR}/index.html", sorted(files), quality_json,
                        None if neighbours is None else neighbours["counts"])

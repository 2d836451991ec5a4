"""The report as one self-contained HTML page (images inlined as data: URIs)."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from html import escape

from fruits_p8.features.precision import precision_of
from fruits_p8.report.quality import Accuracy

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 980px; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0; } td, th { padding: .2rem .7rem;
border-bottom: 1px solid #ddd; text-align: left; } th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.warn { color: #a61b29; font-weight: 600; } img { max-width: 100%; }
code { background: #f4f4f4; padding: 0 .2rem; }
"""


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="num">{_fmt(c)}</td>' if isinstance(c, int | float)
            else f"<td>{escape(str(c))}</td>" for c in row) + "</tr>"
        for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return escape(str(value))


def _image(name: str, png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{escape(alt)}" data-file="{name}">'


def per_label_table(reduced: Accuracy, raw: Accuracy) -> str:
    """The labels below 100 % on either features, worst first; the rest in one line."""
    labels = sorted(set(reduced.per_label) | set(raw.per_label),
                    key=lambda name: (reduced.per_label.get(name, -1.0), name))
    below = [name for name in labels
             if min(reduced.per_label.get(name, 0.0), raw.per_label.get(name, 0.0)) < 1.0]
    perfect = [name for name in labels if name not in below]
    parts = []
    if below:
        parts += ["<p>Per label, the labels below 100 %, worst first (on the PCA "
                  "components):</p>", _table(["label", "accuracy (PCA)", "accuracy (raw)"], [
                      (name, reduced.per_label.get(name, float("nan")),
                       raw.per_label.get(name, float("nan"))) for name in below])]
    if perfect:
        parts.append(f"<details><summary>{'All' if not below else 'The other'} "
                     f"{len(perfect)} labels: 100 % on both</summary><p>"
                     f"{escape(', '.join(perfect))}</p></details>")
    return "\n".join(parts)


def render(report: Mapping, images: Mapping[str, bytes],
           errors: Mapping[str, tuple[int, Sequence[str]]],
           quality: Mapping[str, Accuracy] | None, extra: str = "", extra_style: str = "",
           first: str = "", notes: Mapping[str, str] | None = None) -> str:
    """The page: summary, the quality check's accuracy, `first` (what a reader acts on:
    suspects...), the labels below 100 %, figures (each followed by its `notes` entry),
    `extra`, errors (files and a few examples per kind). `first`, `extra` and `notes` are
    HTML made elsewhere and escaped there; every other value is escaped here."""
    counts, model, pca = report["counts"], report["model"], report["pca"]
    weights = model["weights"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>fruits_p8 report: {escape(str(report.get('output', '')))}</title>",
        f"<style>{STYLE}{extra_style}</style></head><body>",
        "<h1>fruits_p8 run report</h1>",
        _table(["", ""], [
            ("input", report.get("input", "")), ("output", report.get("output", "")),
            ("files", counts["files"]), ("rows with features", counts["rows_written"]),
            ("errors", counts["errors"]),
            ("backbone", f"{model['backbone']} ({model['feature_dim']} features)"),
            ("weights", f"{weights['source']} (sha256 {weights['sha256'][:16]}...)"),
            ("precision", precision_of(model)),
            ("PCA", f"k = {pca['k']}, {pca['explained_variance']['total']:.1%} of the variance"),
            ("run time", f"{report['timings_s'].get('total', 0):.1f} s"),
        ]),
    ]
    if model.get("random_weights"):
        parts.append("<p class='warn'>These features come from RANDOM weights (a test run): "
                     "they carry no ImageNet knowledge.</p>")
    parts.append("<h2>Quality check: a linear classifier on the features</h2>")
    if quality is None:
        parts.append("<p>Not enough labelled images for a train/test split.</p>")
    else:
        reduced, raw = quality["pca"], quality["raw"]
        parts.append(
            f"<p>Multinomial logistic regression, trained on {reduced.train_rows} images and "
            f"tested on {reduced.test_rows} others (split by image content). Accuracy: "
            f"<b>{reduced.overall:.1%}</b> on {reduced.components} PCA components (scaler and PCA "
            "fitted on the training images only, as a new image would meet them), "
            f"<b>{raw.overall:.1%}</b> on the {model['feature_dim']} raw features.</p>")
        if "training_test_pca" in quality:
            folders, folders_raw = quality["training_test_pca"], quality["training_test_raw"]
            parts.append(
                f"<p>The dataset's own split: trained on the {folders.train_rows} images "
                f"under Training/, tested on the {folders.test_rows} under Test/: "
                f"<b>{folders.overall:.1%}</b> on PCA components (fitted on Training/), "
                f"<b>{folders_raw.overall:.1%}</b> on raw features.</p>")
    if first:
        parts.append(first)
    if quality is not None:
        parts += ["<h2>Quality check per label</h2>",
                  per_label_table(quality["pca"], quality["raw"])]
    sections = (("images_per_label.png", "Images per label"),
                ("explained_variance.png", "Explained variance"),
                ("pca_scatter.png", "PCA projection"),
                ("timings.png", "Time per stage"))
    for name, title in sections:
        if name in images:
            parts += [f"<h2>{escape(title)}</h2>", _image(name, images[name], title)]
            parts.append((notes or {}).get(name, ""))
    if extra:
        parts.append(extra)
    parts.append("<h2>Errors</h2>")
    if not errors:
        parts.append("<p>Every file gave features.</p>")
    else:
        parts.append(_table(["kind", "files", "examples"], [
            (kind, files, ", ".join(examples))
            for kind, (files, examples) in sorted(errors.items())]))
    duplicates = report.get("duplicates")
    if duplicates and duplicates.get("files"):
        parts.append(f"<p class='warn'>{duplicates['files']} files share their content with "
                     f"another file ({duplicates['groups_across_labels']} groups across "
                     "labels): see run.json.</p>")
    parts.append("<h2>Versions</h2>")
    parts.append(_table(["package", "version"], sorted(report.get("versions", {}).items())))
    parts.append("</body></html>")
    return "\n".join(parts)

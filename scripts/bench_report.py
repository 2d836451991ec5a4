"""The bench's report: the table it prints, the JSON it keeps, and the accuracy check of one
output's features against another's (scripts/bench.py measures)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path


def _rows(output: Path):
    """An output's feature rows (paths, labels, features, pca) in path order."""
    import pyarrow.parquet as pq

    from fruits_p8.report.rows import READ_COLUMNS, to_rows

    return to_rows(pq.read_table(output / "features", columns=READ_COLUMNS))


def compare_outputs(reference: Path, other: Path) -> dict:
    """The accuracy check of one output's features against another's, same images."""
    from fruits_p8.features.precision import agreement, nearest_neighbour_accuracy

    ours, theirs = _rows(reference), _rows(other)
    if ours.paths != theirs.paths:
        raise SystemExit(f"{reference} and {other} do not hold the same images")
    labels = ours.labels
    found = agreement(ours.features, theirs.features)
    return {
        "rows": found.rows,
        "median_relative_difference": round(found.median_relative, 4),
        "max_relative_difference": round(found.max_relative, 4),
        "min_cosine": round(found.min_cosine, 5),
        "nn_accuracy_pca_float32": round(nearest_neighbour_accuracy(ours.pca, labels), 4),
        "nn_accuracy_pca_bfloat16": round(nearest_neighbour_accuracy(theirs.pca, labels), 4),
    }


def median_run(runs: list[dict]) -> dict:
    """The run with the median end-to-end time (the lower middle one for an even count):
    a warm session still speeds up from run to run as the JVM compiles more code."""
    return sorted(runs, key=lambda run: run["seconds"])[(len(runs) - 1) // 2]


def write_results(results: dict, out: Path) -> Path:
    """The figures as JSON: out/latest.json and a timestamped copy, for comparing commits."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(results, indent=2) + "\n"
    (out / "latest.json").write_text(text)
    (out / f"bench-{stamp}.json").write_text(text)
    return out / "latest.json"


def table(r: dict) -> str:
    limit = r["limit"]["images_per_s"]
    rows = [("limit: CNN forward alone, pre-decoded", limit, None, "")]
    fresh = r["fresh_run"]
    rows.append(("fresh `fruits-p8 run` end to end", fresh["images_per_s"], None,
                 f"{fresh['seconds']:.1f} s"))
    rows.append(("  featurize stage", fresh["featurize_images_per_s"], None,
                 f"{fresh['featurize_s']:.1f} s"))
    warm_runs = r["pipeline_warm_runs"]
    warm_label = f"pipeline end to end, warm (median of {len(warm_runs)})"
    for key, label in (("pipeline_cold", "pipeline end to end, cold session"),
                       ("pipeline_warm", warm_label)):
        run = r[key]
        rows.append((label, run["images_per_s"], None, f"{run['seconds']:.1f} s"))
        rows.append(("  featurize stage", run["featurize_images_per_s"],
                     None, f"{run['featurize_s']:.1f} s"))
    q = r["scaling_quarter_warm"]
    rows.append((f"pipeline warm, {q['images']} images", q["images_per_s"], None,
                 f"{q['seconds']:.1f} s"))
    if "bfloat16" in r:
        bf = r["bfloat16"]
        rows.append(("limit, bfloat16: CNN forward alone", bf["limit"]["images_per_s"], None,
                     f"{bf['limit']['images_per_s'] / limit:.2f} x the float32 limit"))
        run, own = bf["pipeline_warm"], bf["limit"]["images_per_s"]
        rows.append(("pipeline warm, --precision bfloat16", run["images_per_s"], None,
                     f"{run['seconds']:.1f} s; {run['images_per_s'] / own:.2f} x the bfloat16 "
                     "limit"))
        rows.append(("  featurize stage", run["featurize_images_per_s"], None,
                     f"{run['featurize_s']:.1f} s; {run['featurize_images_per_s'] / own:.2f} x "
                     "the bfloat16 limit"))
    if "predict_batch_udf" in r:
        b = r["predict_batch_udf"]
        rows.append(("predict_batch_udf (featurize only)", b["images_per_s"], None,
                     f"{b['seconds']:.1f} s"))
    if "reference_style" in r:
        b = r["reference_style"]
        rows.append(("reference-style (3 actions, no persist)", b["images_per_s"], None,
                     f"{b['seconds']:.1f} s, CNN x{b['cnn_passes']}"))
    lines = [f"{'':44s} {'images/s':>9s} {'x limit':>8s}  note",
             "-" * 80]
    for label, rate, _, note in rows:
        lines.append(f"{label:44s} {rate:9.1f} {rate / limit:8.2f}  {note}")
    cold, warm = r["pipeline_cold"], r["pipeline_warm"]
    lines += [
        "-" * 80,
        f"limit: the higher of {r['limit']['before']} (before the pipeline) and "
        f"{r['limit']['after']} (after); layouts (processes x threads): "
        f"{r['limit']['layouts']}",
        "warm runs, end to end / featurize images/s: " + ", ".join(
            f"{w['images_per_s']:.1f} / {w['featurize_images_per_s']:.1f}" for w in warm_runs),
        f"session start {r['session_start_s']} s; first result (fresh `fruits-p8 run --limit "
        f"64`) {r['first_result_s']} s",
        f"fresh run: stages {fresh['stages_s']}; first progress line with an ETA "
        f"{fresh['first_eta_after_s']} s after featurize began; tracebacks on stderr: "
        f"{fresh['tracebacks']}",
        f"CNN images {warm['cnn_images']} for {warm['images']} rows; model builds cold "
        f"{cold['model_builds']}, warm {warm['model_builds']}",
        f"seconds per 1000 images, warm: {1000 * warm['seconds'] / warm['images']:.2f} "
        f"({warm['images']} images) vs {1000 * q['seconds'] / q['images']:.2f} "
        f"({q['images']} images)",
        *([f"report (--report) {r['report']['seconds']:.1f} s, "
           f"{100 * r['report']['share_of_warm_run']:.1f} % of the last warm run; steps s: "
           f"{r['report']['steps_s']}"] if "report" in r else []),
        f"peak RSS MiB (cold run): {cold['memory_mib']}",
        f"peak RSS MiB (warm, {warm['images']} images): {warm['memory_mib']}",
        f"peak RSS MiB (warm, {q['images']} images): {q['memory_mib']}",
    ]
    if "bfloat16" in r:
        bf, a = r["bfloat16"], r["bfloat16"]["accuracy"]
        lines += [
            "bfloat16 warm runs, end to end / featurize images/s: " + ", ".join(
                f"{w['images_per_s']:.1f} / {w['featurize_images_per_s']:.1f}"
                for w in bf["pipeline_warm_runs"]),
            f"bfloat16 limit: the higher of {bf['limit']['before']} and {bf['limit']['after']}; "
            f"layouts {bf['limit']['layouts']}",
            f"bfloat16 features against float32 ({a['rows']} images): relative difference "
            f"median {100 * a['median_relative_difference']:.1f} %, max "
            f"{100 * a['max_relative_difference']:.1f} %; min cosine {a['min_cosine']}",
            f"1-NN label accuracy on pca (leave one out): float32 "
            f"{100 * a['nn_accuracy_pca_float32']:.2f} %, bfloat16 "
            f"{100 * a['nn_accuracy_pca_bfloat16']:.2f} %",
        ]
    return "\n".join(lines)

"""What a person reads after a run: a few lines naming what was written where."""

from __future__ import annotations

from fruits_p8.schema import MODEL_DIR


def summary(result) -> str:
    """What a person wants to know after a run, in a few lines."""
    report = result.report
    weights = report["model"]["weights"]
    timing = report["timings_s"]
    cnn_images = report["counts"]["cnn_images"]
    rate = cnn_images / timing["featurize"] if timing.get("featurize") else 0.0
    lines = [
        f"wrote {result.rows} feature rows and {result.errors} error rows "
        f"({result.files} files) to {result.output}",
        f"  features  {result.output}/features  (Parquet: path, label, "
        f"features[{report['model']['feature_dim']}], pca[{result.k}])",
        f"  errors    {result.output}/errors",
        f"  run.json  {result.output}/run.json",
        f"  PCA       k={result.k}, explained variance {100 * result.explained_variance:.1f} %"
        f" ({report['pca']['basis']})",
        f"  basis     {result.output}/{MODEL_DIR}  (the fitted scaler + PCA, a Spark ML "
        "PipelineModel: apply it with --fitted)",
        f"  backbone  {weights['backbone']}, weights {weights['source']}, "
        f"{report['model']['precision']}{_chosen(report['model'])}"
        + ("  (RANDOM: not for real use)" if not weights["pretrained"] else ""),
        f"  time      {timing['total']:.1f} s in all, featurize {timing.get('featurize', 0):.1f} s"
        f" ({cnn_images} images through the CNN, {rate:.0f} images/s)",
    ]
    skipped = report["counts"].get("skipped", 0)
    if skipped:
        lines.append(f"  skipped   {skipped} matching files under hidden names (--skip-hidden)")
    if "reused" in report["counts"]:
        lines.append(f"  reused    the features of {report['counts']['reused']} unchanged images")
    return "\n".join(lines)


def _chosen(model: dict) -> str:
    """' (auto: why)' where the precision was chosen for the user."""
    choice = model.get("precision_choice", {})
    return f" ({choice['why']})" if choice.get("requested") == "auto" else ""

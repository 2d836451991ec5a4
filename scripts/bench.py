"""Benchmark: the pipeline against the bare CNN, on the same images.

    make bench                       # 2,100 generated images (350 per label), all figures
    make bench ARGS="--images 6000 --skip-baselines"
    make bench ARGS="--input ../shared/data/fruits-360/Test --skip-baselines"   # real photos

Without --input the images are drawn (fruits_p8.sample) under --data; with --input every
*.jpg under that folder is benchmarked (or the first --images in path order), read only.

Prints a table and writes the same figures as JSON (bench-results/latest.json and a
timestamped copy) for comparison across commits (bench_report.py: the table, the JSON and
the accuracy check; this script measures). Everything runs in one process tree:
this script, its Spark JVM and Python workers, and the child processes of the limit.

Figures:
  limit              the CNN's forward pass alone on pre-decoded uint8 batches, in float32:
                     the best of one process x all cores threads and one process per core x
                     1 thread, measured before and after the pipeline runs; the higher one
                     counts. Every "x limit" figure divides by it
  pipeline cold/warm read -> decode -> featurize -> scale -> PCA -> write (pipeline.run); cold
                     is the first run of a session (workers import TensorFlow and compile),
                     warm the median of the next --warm-runs (3) runs (workers and models
                     reused; the JVM keeps compiling, so later runs are faster)
  featurize stage    the pipeline's featurize stage alone (from run.json timings)
  report             `--report` on the last warm run's output (fruits_p8.report.make_report):
                     seconds per step and its share of that run
  first result       wall seconds of a fresh `fruits-p8 run --limit 64` (all cold)
  fresh run          a fresh `fruits-p8 run` on all the images, as a user runs it (its own
                     process and session, no report): wall seconds, its featurize stage,
                     when its first progress line with an ETA came, tracebacks on stderr
  reference-style    one Keras model per partition, model.predict, no persist, then the
                     scaler and PCA fits as three actions: the CNN runs again for each
  predict_batch_udf  Spark's pyspark.ml.functions.predict_batch_udf on the same (folded)
                     model, fed decoded pixel arrays by a pandas UDF
  scaling            a warm run on a quarter of the images: time per image and memory
  bfloat16           the same limit and warm runs with --precision bfloat16 (after one run
                     that builds the bfloat16 models), and the accuracy check of its
                     features against float32's: row-wise distance, and leave-one-out
                     1-nearest-neighbour label accuracy on each output's PCA features
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_baselines import backbone_weights, predict_batch, reference_style  # noqa: E402
from bench_memory import MemorySampler  # noqa: E402
from bench_report import compare_outputs, median_run, table, write_results  # noqa: E402

from fruits_p8 import pipeline  # noqa: E402
from fruits_p8.config import DEFAULT_K, RunConfig, default_cache_dir  # noqa: E402
from fruits_p8.features.backbones import BACKBONES  # noqa: E402
from fruits_p8.sample import STYLES, make_sample  # noqa: E402
from fruits_p8.stages.featurize import default_partitions  # noqa: E402

# ----------------------------------------------------------------------------------- limit

def _forward_rate(model: str, threads: int, batch: int, seconds: float, cache: str,
                  precision: str, queue) -> None:
    from fruits_p8.features.tf_runtime import import_tensorflow

    import_tensorflow(threads)
    from fruits_p8.features.forward import compile_forward

    backbone, weights = backbone_weights(model, cache)
    forward = compile_forward(backbone, weights.arrays, precision=precision)
    pixels = np.random.default_rng(0).integers(0, 256, (batch, 224, 224, 3), dtype=np.uint8)
    forward(pixels)
    forward(pixels)
    done, begin = 0, time.perf_counter()
    while time.perf_counter() - begin < seconds:
        forward(pixels)
        done += batch
    queue.put(done / (time.perf_counter() - begin))


def measure_limit(model: str, cores: int, batch: int, seconds: float, cache: Path,
                  precision: str = "float32") -> dict:
    context = mp.get_context("spawn")
    layouts = {}
    for processes, threads in ((1, cores), (cores, 1)):
        queue = context.Queue()
        children = [context.Process(target=_forward_rate,
                                    args=(model, threads, batch, seconds, str(cache),
                                          precision, queue))
                    for _ in range(processes)]
        for child in children:
            child.start()
        rates = [queue.get() for _ in children]
        for child in children:
            child.join()
        layouts[f"{processes}x{threads}"] = round(sum(rates), 1)
    return {"images_per_s": max(layouts.values()), "layouts": layouts}


def combined_limit(before: dict, after: dict) -> dict:
    """The higher of the limits measured before and after the pipeline runs: this shared
    machine's speed drifts by up to ~12 % within a bench, and a low limit would flatter
    every ratio."""
    best = max(before, after, key=lambda m: m["images_per_s"])
    return {"images_per_s": best["images_per_s"], "layouts": best["layouts"],
            "before": before["images_per_s"], "after": after["images_per_s"]}


# ------------------------------------------------------------------------ first result

def cli_run(root: Path, output: Path, model: str, cores: int, cache: Path,
            *options: str, log_level: str = "INFO") -> list[str]:
    """The `fruits-p8 run` command line a user would type, on the bench's images."""
    return [sys.executable, "-m", "fruits_p8", "--log-level", log_level, "run",
            "--input", str(root), "--output",
            str(output), "--overwrite", "--backbone", model, "--master", f"local[{cores}]",
            "--cache-dir", str(cache), *options]


def run_figures(rows: int, seconds: float, timings: dict[str, float]) -> dict:
    """Images, wall seconds and rates of a run, and its stages from run.json's timings."""
    return {
        "images": rows,
        "seconds": round(seconds, 2),
        "images_per_s": round(rows / seconds, 1),
        "featurize_s": timings["featurize"],
        "featurize_images_per_s": round(rows / timings["featurize"], 1),
        "stages_s": {k: v for k, v in timings.items() if k != "total"},
    }


def first_result(root: Path, model: str, cache: Path, cores: int, scratch: Path) -> float:
    """Wall seconds of a fresh `fruits-p8 run --limit 64` (JVM, workers and model all cold):
    how long a user waits for a first look at real features. Its output goes under
    `scratch` (--data), never beside a user's --input."""
    out = scratch / "first-result"
    begin = time.perf_counter()
    subprocess.run(cli_run(root, out, model, cores, cache, "--limit", "64", "--k", "8",
                           log_level="WARNING"),
                   check=True, capture_output=True)
    return round(time.perf_counter() - begin, 2)


def fresh_run(root: Path, model: str, cache: Path, cores: int, limit: int | None,
              output: Path) -> dict:
    """A fresh `fruits-p8 run` on all the bench's images, as a user starts it (no report):
    wall seconds, the featurize stage from its run.json, when its first progress line with
    an ETA came (seconds after the featurize stage began), and Python tracebacks on stderr."""
    command = cli_run(root, output, model, cores, cache,
                      *([] if limit is None else ["--limit", str(limit)]))
    begin = time.perf_counter()
    lines: list[tuple[float, str]] = []
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True) as process:
        for line in process.stderr:
            lines.append((time.perf_counter() - begin, line.rstrip("\n")))
    seconds = time.perf_counter() - begin
    if process.returncode != 0:
        raise SystemExit("fresh run failed:\n" + "\n".join(text for _, text in lines[-20:]))
    report = json.loads((output / "run.json").read_text())
    started = next((at for at, text in lines if text.endswith("INFO    featurize ...")), None)
    eta = next((at for at, text in lines if "featurize:" in text and "ETA" in text), None)
    return {
        **run_figures(report["counts"]["rows_written"], seconds, report["timings_s"]),
        "first_eta_after_s": None if started is None or eta is None else round(eta - started, 1),
        "tracebacks": sum("Traceback" in text for _, text in lines),
    }


# --------------------------------------------------------------------------------- main

def run_pipeline(spark, config: RunConfig, sampler: MemorySampler) -> dict:
    sampler.reset()
    begin = time.perf_counter()
    result = pipeline.run(config, spark=spark)
    total = time.perf_counter() - begin
    return {
        **run_figures(result.rows, total, result.report["timings_s"]),
        "cnn_images": result.report["counts"]["cnn_images"],
        "model_builds": result.report["counts"]["model_builds"],
        "memory_mib": sampler.snapshot(),
    }


def report_cost(spark, out: Path, run_seconds: float) -> dict:
    """The report (`--report`) of the last warm run's output: its seconds per step, and its
    share of that warm run's time."""
    from fruits_p8.io.output import LocalOutput
    from fruits_p8.report import make_report

    output = LocalOutput(out)
    with output.leased(replace=True):
        steps = make_report(spark, output).timings_s
    return {"seconds": steps["total"], "steps_s": steps,
            "share_of_warm_run": round(steps["total"] / run_seconds, 3)}


def warm_series(spark, config: RunConfig, sampler: MemorySampler, count: int,
                name: str) -> list[dict]:
    """`count` runs of `config` in a warm session, each printed as it ends."""
    runs = []
    for number in range(1, count + 1):
        runs.append(run_pipeline(spark, config, sampler))
        print(f"{name} ({number} of {count}): {runs[-1]}", flush=True)
    return runs


def bfloat16_runs(spark, config: RunConfig, sampler: MemorySampler, warm_runs: int,
                   output: Path) -> dict:
    """--precision bfloat16 in the same warm session: one run that builds the bfloat16 models,
    then `warm_runs` runs, then its features against the float32 output at config.output."""
    bf16 = config.with_(precision="bfloat16", output=str(output))
    first = run_pipeline(spark, bf16, sampler)
    print(f"bfloat16 first run (builds the models): {first}", flush=True)
    runs = warm_series(spark, bf16, sampler, warm_runs, "bfloat16 warm")
    accuracy = compare_outputs(Path(config.output), output)
    print(f"bfloat16 against float32: {accuracy}", flush=True)
    return {"pipeline_first": first, "pipeline_warm_runs": runs,
            "pipeline_warm": median_run(runs), "accuracy": accuracy}


def bench_images(folder: Path | None, images: int | None,
                 data: Path) -> tuple[Path, int, int | None]:
    """Where the bench reads, how many images, and the pipeline's --limit: a user's folder
    as it is (never written), else drawn images generated under `data`."""
    if folder is None:
        per_label = math.ceil((images or 2100) / len(STYLES))
        root = data / f"{per_label}-per-label"
        return root, make_sample(root, splits={"Bench": per_label}), None
    if not folder.is_dir():
        raise ValueError(f"--input must be a folder of <Label>/<image> files: {folder}")
    files = sum(1 for path in folder.rglob("*.jpg") if path.is_file())
    if files == 0:
        raise ValueError(f"no *.jpg file under {folder}")
    count = min(files, images) if images else files
    return folder.resolve(), count, count if count < files else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, default=None,
                        help="benchmark the *.jpg files under this folder (<Label>/<image>, "
                        "e.g. ../shared/data/fruits-360/Test) instead of generated images "
                        "[default: generate --images under --data]")
    parser.add_argument("--images", type=int, default=None,
                        help="images to generate and process (rounded up to 6 labels) "
                        "[default: 2100]; with --input, the first N files in path order "
                        "[default: all]")
    parser.add_argument("--model", default="efficientnet_lite0", choices=list(BACKBONES))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--limit-seconds", type=float, default=10.0)
    parser.add_argument("--warm-runs", type=int, default=3,
                        help="warm runs after the cold one; the table shows their median")
    parser.add_argument("--skip-baselines", action="store_true",
                        help="skip the reference-style and predict_batch_udf runs (slow)")
    parser.add_argument("--skip-bfloat16", action="store_true",
                        help="skip the --precision bfloat16 limit, runs and accuracy check")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "bench",
                        help="generated images and the bench's outputs")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    args = parser.parse_args(argv)
    if args.warm_runs < 1:
        parser.error("--warm-runs must be at least 1")
    if args.images is not None and args.images < 1:
        parser.error("--images must be at least 1")
    try:
        root, count, limit = bench_images(args.input, args.images, args.data)
    except ValueError as exc:
        parser.error(str(exc))
    cache = default_cache_dir(os.environ)
    print(f"{count} images in {root}; {args.cores} cores; model {args.model}; "
          f"batch {args.batch_size}", flush=True)

    results: dict = {"images": count, "input": str(root), "cores": args.cores,
                     "model": args.model,
                     "batch_size": args.batch_size,
                     "date": datetime.now(UTC).isoformat(timespec="seconds")}
    results["first_result_s"] = first_result(root, args.model, cache, args.cores, args.data)
    print(f"first result (64 images, cold process): {results['first_result_s']} s", flush=True)
    results["fresh_run"] = fresh_run(root, args.model, cache, args.cores, limit,
                                     args.data / "output-fresh")
    print(f"fresh `fruits-p8 run`: {results['fresh_run']}", flush=True)
    precisions = ["float32"] + ([] if args.skip_bfloat16 else ["bfloat16"])
    before = {}
    for precision in precisions:
        before[precision] = measure_limit(args.model, args.cores, args.batch_size,
                                          args.limit_seconds, cache, precision)
        print(f"limit, {precision} (before the pipeline): {before[precision]}", flush=True)

    sampler = MemorySampler()
    from fruits_p8.spark import build_session

    begin = time.perf_counter()
    spark = build_session(f"local[{args.cores}]", os.environ, cache)
    results["session_start_s"] = round(time.perf_counter() - begin, 2)
    out = args.data / "output"
    config = RunConfig(input=str(root), output=str(out), overwrite=True, backbone=args.model,
                       batch_size=args.batch_size, cache_dir=cache, k=min(DEFAULT_K, count),
                       limit=limit)
    results["pipeline_cold"] = run_pipeline(spark, config, sampler)
    print(f"pipeline cold: {results['pipeline_cold']}", flush=True)
    warm = warm_series(spark, config, sampler, args.warm_runs, "pipeline warm")
    results["pipeline_warm_runs"] = warm
    results["pipeline_warm"] = median_run(warm)
    results["report"] = report_cost(spark, out, warm[-1]["seconds"])
    print(f"report: {results['report']}", flush=True)
    quarter = max(1, count // 4)
    results["scaling_quarter_warm"] = run_pipeline(
        spark, config.with_(limit=quarter, k=min(config.k, quarter),
                            output=str(args.data / "output-quarter")), sampler)
    print(f"quarter warm: {results['scaling_quarter_warm']}", flush=True)
    if not args.skip_bfloat16:
        results["bfloat16"] = bfloat16_runs(spark, config, sampler, args.warm_runs,
                                            args.data / "output-bfloat16")
    partitions = default_partitions(spark, count, args.batch_size)
    if not args.skip_baselines:
        sampler.reset()
        results["predict_batch_udf"] = predict_batch(spark, str(root), args.model,
                                                     args.batch_size, partitions, cache, limit)
        results["predict_batch_udf"]["memory_mib"] = sampler.snapshot()
        print(f"predict_batch_udf: {results['predict_batch_udf']}", flush=True)
        sampler.reset()
        results["reference_style"] = reference_style(spark, str(root), args.model,
                                                     args.batch_size, partitions, 200, cache,
                                                     args.data / "reference-features", limit)
        results["reference_style"]["memory_mib"] = sampler.snapshot()
        print(f"reference-style: {results['reference_style']}", flush=True)
    spark.stop()
    sampler.stop()
    for precision in precisions:
        after = measure_limit(args.model, args.cores, args.batch_size, args.limit_seconds,
                              cache, precision)
        print(f"limit, {precision} (after): {after}", flush=True)
        limit = combined_limit(before[precision], after)
        if precision == "float32":
            results["limit"] = limit
        else:
            results[precision]["limit"] = limit

    print()
    print(table(results))
    print(f"\nfigures written to {write_results(results, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

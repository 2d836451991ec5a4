"""Benchmark: the report's nearest-neighbour search against the featurization, on a run's output.

    python scripts/bench_neighbours.py OUTPUT            # an output of `fruits-p8 run`
    python scripts/bench_neighbours.py OUTPUT --scale 3  # the vectors 3x (jittered copies)

Times, in one local Spark session (median of --repeat runs after one warm-up):
  exact       fruits_p8.report.knn: the PCA vectors broadcast, each task searches one slice
              of the images against all of them (matrix product + partial sort), k = 10
  judge       the verdicts from the neighbours (suspects, groups), on the driver
  lsh join    pyspark.ml BucketedRandomProjectionLSH.approxSimilarityJoin of the unit
              vectors with themselves at the near-duplicate radius (which finds pairs only,
              not the k nearest: less than the exact search does)
and prints them beside the run's featurize stage (run.json), and the exact search's recall
for the LSH join's pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fruits_p8.io.output import LocalOutput  # noqa: E402
from fruits_p8.report.data_quality import QualitySettings, judge  # noqa: E402
from fruits_p8.report.knn import Neighbourhood, search  # noqa: E402
from fruits_p8.report.neighbours import prepare  # noqa: E402
from fruits_p8.report.rows import read_rows  # noqa: E402


def timed(action, repeat: int):
    action()
    times, result = [], None
    for _ in range(repeat):
        begin = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - begin)
    return statistics.median(times), times, result


def lsh_pairs(spark, unit: np.ndarray, radius: float, tables: int, bucket: float):
    from pyspark.ml.feature import BucketedRandomProjectionLSH
    from pyspark.ml.linalg import Vectors, VectorUDT
    from pyspark.sql.types import LongType, StructField, StructType

    schema = StructType([StructField("id", LongType()), StructField("v", VectorUDT())])
    frame = spark.createDataFrame([(i, Vectors.dense(v.astype(float))) for i, v in
                                   enumerate(unit)], schema).cache()
    frame.count()
    model = BucketedRandomProjectionLSH(inputCol="v", outputCol="h", bucketLength=bucket,
                                        numHashTables=tables, seed=7).fit(frame)

    def join():
        return (model.approxSimilarityJoin(frame, frame, radius, distCol="d")
                .where("datasetA.id < datasetB.id")
                .selectExpr("datasetA.id a", "datasetB.id b").collect())

    return join


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--skip-lsh", action="store_true")
    args = parser.parse_args()

    from fruits_p8.config import default_cache_dir
    from fruits_p8.spark import build_session

    spark = build_session(f"local[{args.cores}]", os.environ, default_cache_dir(os.environ))
    settings = QualitySettings()
    begin = time.perf_counter()
    rows = read_rows(spark, LocalOutput(args.output)).labelled()
    paths, labels, splits, vectors = rows.paths, rows.labels, rows.splits, rows.pca
    read_s = time.perf_counter() - begin
    if args.scale > 1:
        rng = np.random.default_rng(0)
        noise = vectors.std() * 0.05
        vectors = np.concatenate([vectors] + [vectors + rng.normal(0, noise, vectors.shape)
                                              .astype(np.float32)
                                              for _ in range(args.scale - 1)])
        paths = [f"{p}#{c}" for c in range(args.scale) for p in paths]
        labels = labels * args.scale
        splits = splits * args.scale
    n = len(vectors)
    exact_s, exact_all, (indices, distances) = timed(
        lambda: search(spark, vectors, settings.neighbours, settings.metric), args.repeat)
    found = Neighbourhood(paths, labels, splits, indices, distances)
    judge_s, _, verdict = timed(lambda: judge(found, vectors, settings), 1)
    run = json.loads((args.output / "run.json").read_text())
    featurize = run["timings_s"]["featurize"]
    figures = {"images": n, "dimensions": int(vectors.shape[1]), "cores": args.cores,
               "read_vectors_s": round(read_s, 3), "exact_search_s": round(exact_s, 3),
               "exact_search_runs_s": [round(t, 3) for t in exact_all],
               "judge_s": round(judge_s, 3), "run_featurize_s": featurize,
               "run_featurize_images": run["counts"]["cnn_images"],
               "counts": verdict["counts"]}
    print(json.dumps(figures), flush=True)
    if not args.skip_lsh:
        unit = prepare(vectors, "cosine")
        radius = float(np.sqrt(2 * settings.duplicate_distance))  # cosine -> euclidean, unit
        close = {(int(a), int(b)) for a in range(n) for b, d in
                 zip(indices[a], distances[a], strict=True)
                 if d <= settings.duplicate_distance}
        close = {(min(a, b), max(a, b)) for a, b in close}
        for tables, bucket in ((2, 2 * radius), (4, 4 * radius)):
            lsh_s, _, pairs = timed(lsh_pairs(spark, unit, radius, tables, bucket),
                                    args.repeat)
            got = {(r.a, r.b) for r in pairs}
            figures[f"lsh_join_{tables}x{bucket / radius:.0f}r_s"] = round(lsh_s, 3)
            figures[f"lsh_join_{tables}x{bucket / radius:.0f}r_recall"] = round(
                len(got & close) / max(1, len(close)), 4)
    spark.stop()
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

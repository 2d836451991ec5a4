"""Measure the mislabel finder over random draws, on the features of a run of the real Test split.

    python scripts/mislabel_draws.py OUTPUT                  # `fruits-p8 run` of the Test split
    python scripts/mislabel_draws.py OUTPUT --draws 10 --selection random

Each draw takes --per-label images of every label (spread: evenly over each label's sorted
names, i.e. over its video; random: at random), moves --moved of them to another label at
random (the label column rewritten in memory: the same as moving the files, whose folder is
their only label), fits standardise + PCA on the draw as a run would (the run's own fit, k of
the output), searches the neighbours exactly and calls the report's own `judge`. It prints,
per draw, the moved images in the top 40 suspects (recall) and among the top 20 (precision),
the suspects in all and the look-alike pairs, beside the neighbour vote alone (main before
issue 30: suspects at >= 60 % of the 10 neighbours under one other label, ranked by share).
Then, on the whole untouched output: the finder's seconds (out-of-fold fits + evidence, one
run) against the run's own total (run.json), and the suspects and pairs it lists.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fruits_p8.io.output import LocalOutput  # noqa: E402
from fruits_p8.report.confident import evidence, look_alike_pairs, out_of_fold  # noqa: E402
from fruits_p8.report.data_quality import QualitySettings, judge  # noqa: E402
from fruits_p8.report.knn import Neighbourhood  # noqa: E402
from fruits_p8.report.neighbours import nearest, prepare, vote  # noqa: E402
from fruits_p8.report.quality import reduce_on_train  # noqa: E402
from fruits_p8.report.rows import read_rows  # noqa: E402


def draw(labels: np.ndarray, seed: int, per_label: int, moved: int, selection: str
         ) -> tuple[np.ndarray, np.ndarray, set[int]]:
    """Rows chosen (in path order), their labels after the moves, and the moved positions."""
    rng = np.random.default_rng(seed)
    chosen = []
    for name in np.unique(labels):
        rows = np.flatnonzero(labels == name)  # path order: along the label's video
        if selection == "spread":
            chosen += [rows[i * len(rows) // per_label] for i in range(per_label)]
        else:
            chosen += rng.choice(rows, per_label, replace=False).tolist()
    chosen = np.sort(np.array(chosen))
    given = labels[chosen].copy()
    names = np.unique(labels)
    wrong = rng.choice(len(chosen), moved, replace=False)
    for row in wrong:
        given[row] = rng.choice([n for n in names if n != given[row]])
    return chosen, given, {int(r) for r in wrong}


def neighbourhood(paths: list[str], labels: list[str], vectors: np.ndarray, k: int
                  ) -> Neighbourhood:
    """The exact search of `knn`, in this process."""
    unit = prepare(vectors, "cosine")
    indices, distances = nearest(unit, unit, k, "cosine", query_ids=np.arange(len(unit)))
    return Neighbourhood(paths, labels, [None] * len(paths), indices, distances)


def vote_only(found: Neighbourhood) -> list[int]:
    """Main's ranking before issue 30: share of the most common other label >= 0.6."""
    scored = []
    for row, label in enumerate(found.labels):
        verdict = vote(label, [found.labels[i] for i in found.indices[row]])
        if verdict.neighbour_label is not None and verdict.score >= 0.6:
            scored.append((-verdict.score, float(found.distances[row][0]), row))
    return [row for *_, row in sorted(scored)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--per-label", type=int, default=30)
    parser.add_argument("--moved", type=int, default=20)
    parser.add_argument("--selection", choices=("spread", "random"), default="spread")
    args = parser.parse_args()
    rows = read_rows(None, LocalOutput(args.output)).labelled()
    labels = np.asarray(rows.labels, dtype=object)
    k = rows.pca.shape[1]
    settings = QualitySettings()
    print(f"{len(rows)} images, {len(set(rows.labels))} labels; draws of {args.per_label} per "
          f"label ({args.selection}), {args.moved} moved; PCA k = {k} fitted per draw")
    table = []
    for seed in range(args.draws):
        chosen, given, moved = draw(labels, seed, args.per_label, args.moved, args.selection)
        pca, _ = reduce_on_train(rows.features[chosen], rows.features[chosen[:1]], k)
        paths = [rows.paths[i] for i in chosen]
        found = neighbourhood(paths, list(given), pca, settings.neighbours)
        verdict = judge(found, pca, settings)
        position = {p: i for i, p in enumerate(paths)}
        ranked = [position[s["path"]] for s in verdict["suspected_mislabels"]]
        old = vote_only(found)
        figures = {"seed": seed, "top40": len(moved & set(ranked[:40])),
                   "top20": len(moved & set(ranked[:20])),
                   "suspects": verdict["counts"]["suspected_mislabels"],
                   "pairs": [p["labels"] for p in verdict["look_alike_pairs"]],
                   "vote_top40": len(moved & set(old[:40])),
                   "vote_top20": len(moved & set(old[:20])), "vote_suspects": len(old)}
        table.append(figures)
        print(json.dumps(figures), flush=True)
    for key in ("top40", "top20", "suspects", "vote_top40", "vote_top20", "vote_suspects"):
        values = [f[key] for f in table]
        print(f"{key}: min {min(values)}, mean {np.mean(values):.1f}, max {max(values)}")

    names, y = np.unique(labels.astype(str), return_inverse=True)
    begin = time.perf_counter()
    p = out_of_fold(rows.pca, y, len(names), settings.finder)
    beliefs = evidence(p, y)
    pairs = look_alike_pairs(beliefs.mean_belief, settings.finder.look_alike_share)
    finder_s = time.perf_counter() - begin
    run = json.loads((args.output / "run.json").read_text())
    total = run["timings_s"]["total"]
    print(f"finder on all {len(rows)} images: {finder_s:.2f} s (one run) = "
          f"{finder_s / total:.1%} of the run's {total:.1f} s (run.json)")
    verdict = judge(neighbourhood(rows.paths, rows.labels, rows.pca, settings.neighbours),
                    rows.pca, settings)
    print(f"untouched: {verdict['counts']['suspected_mislabels']} suspects, {len(pairs)} pairs")
    for suspect in verdict["suspected_mislabels"]:
        print(f"  {suspect['score']:.3f} {suspect['path']} -> {suspect['neighbour_label']} "
              f"(model {suspect['model_probability']:.2f} vs {suspect['label_probability']:.2f},"
              f" neighbours {suspect['neighbour_share']:.1f})")
    for pair in verdict["look_alike_pairs"]:
        print(f"  pair {pair['labels']} overlap {pair['overlap']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

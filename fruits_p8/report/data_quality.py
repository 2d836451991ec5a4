"""Suspected mislabels, look-alike labels and near-duplicate groups of a run's images
(report/data_quality.json).

The neighbours come from Spark (`knn`), the out-of-fold beliefs of a linear model from
`confident`, the verdicts from pure functions (`neighbours`); a suspect's score joins both,
the model's part taken beyond what its folder's other images believe (so what a look-alike
pair of labels shares cancels; the pairs themselves are `look_alike_pairs`). The thresholds
below were chosen from measurements on the real Fruits 360 Test split (docs/data_quality.md).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from fruits_p8.report.confident import (
    Evidence,
    FinderSettings,
    evidence,
    look_alike_pairs,
    margins,
    out_of_fold,
)
from fruits_p8.report.knn import Neighbourhood, neighbourhood
from fruits_p8.report.neighbours import (
    Suspect,
    agreement_per_label,
    confusions,
    duplicate_groups,
    rank_suspects,
    vote,
)
from fruits_p8.report.rows import Rows


@dataclass(frozen=True)
class QualitySettings:
    """How neighbours are found and judged."""

    neighbours: int = 10
    metric: str = "cosine"
    min_score: float = 0.3
    duplicate_distance: float = 0.02
    max_suspects: int = 500
    max_groups: int = 200
    max_group_paths: int = 20
    max_confusions: int = 20
    max_pairs: int = 30
    pairs_apart: bool = False  # True: a suspect between a look-alike pair only counts there
    pair_examples: int = 3
    finder: FinderSettings = field(default_factory=FinderSettings)


def look_alikes(pairs: list[tuple[int, int, float]], names: np.ndarray, p: np.ndarray,
                y: np.ndarray, paths: list[str], examples: int) -> list[dict]:
    """Each look-alike pair with, per side, how many of its images the out-of-fold model
    gives to the other label and the images that believe the other label most; `judge`
    adds the images that would be suspects between the two (`flagged`)."""
    predicted = p.argmax(axis=1)
    found = []
    for a, b, overlap in pairs:
        sides = []
        for own, other in ((a, b), (b, a)):
            rows = np.flatnonzero(y == own)
            ranked = rows[np.argsort(-p[rows, other], kind="stable")][:examples]
            sides.append({"label": str(names[own]), "images": len(rows),
                          "given_to_other": int((predicted[rows] == other).sum()),
                          "mean_belief_in_other": round(float(p[rows, other].mean()), 4),
                          "examples": [paths[i] for i in ranked]})
        found.append({"labels": [str(names[a]), str(names[b])],
                      "overlap": round(overlap, 4), "sides": sides, "flagged": []})
    return found


def best_other(row: int, around: list[str], beliefs: Evidence, p: np.ndarray, y: np.ndarray,
               names: np.ndarray) -> tuple[str, float, float]:
    """The other label with the most evidence for one image: the model's first other or one
    its neighbours carry, whichever gives the larger mean of margin and neighbour share
    (an overfitted model may name a third label while the neighbours agree on one)."""
    own = names[y[row]]
    candidates = sorted({str(names[beliefs.other[row]])} | {n for n in around if n != own})
    index = names.searchsorted(candidates)
    found = margins(p, y, beliefs.mean_belief, np.full(len(index), row), index)
    shares = [sum(n == c for n in around) / len(around) for c in candidates]
    best = max(range(len(candidates)), key=lambda i: (found[i] + shares[i], -i))
    return candidates[best], float(found[best]), shares[best]


def judge(found: Neighbourhood, vectors: np.ndarray, settings: QualitySettings) -> dict:
    """data_quality.json's content from the neighbours and the images' PCA `vectors` (rows
    as in `found`): suspects, look-alike label pairs, near-duplicate groups, the label pairs
    the neighbours mix up most, the neighbours' agreement per label, and counts.

    An image's score is the mean of two shares of evidence for the same other label: the
    out-of-fold model's margin (`confident.evidence`) and the share of its neighbours that
    carry that label; a suspect scores `min_score` or more."""
    paths, labels = found.paths, found.labels
    names, y = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)
    checked = len(names) >= 2 and len(paths) >= 2 * settings.finder.folds
    if checked:
        p = out_of_fold(vectors, y, len(names), settings.finder)
        beliefs = evidence(p, y)
        pairs = look_alike_pairs(beliefs.mean_belief, settings.finder.look_alike_share)
    suspects, majorities = [], []
    for row, label in enumerate(labels):
        around = [int(i) for i in found.indices[row]]
        verdict = vote(label, [labels[i] for i in around])
        majorities.append(verdict.majority)
        if not checked or not around:
            continue
        other, margin, share = best_other(row, [labels[i] for i in around], beliefs, p, y,
                                          names)
        score = (margin + share) / 2
        if score < settings.min_score:
            continue
        closest = min((float(d) for i, d in zip(around, found.distances[row], strict=True)
                       if labels[i] == other), default=float(found.distances[row][-1]))
        suspects.append(Suspect(paths[row], label, other, score, closest,
                                tuple(paths[i] for i in around),
                                float(p[row, names.searchsorted(other)]),
                                float(beliefs.own_probability[row]), margin, share))
    alike = (look_alikes(pairs[:settings.max_pairs], names, p, y, paths,
                         settings.pair_examples) if checked else [])
    within = {frozenset(pair["labels"]): pair for pair in alike}
    for suspect in rank_suspects(suspects, len(suspects)):  # a look-alike pair's own
        pair = within.get(frozenset((suspect.label, suspect.neighbour_label)))
        if pair is not None:
            pair["flagged"].append(suspect.path)
    if settings.pairs_apart:  # measured: hides moved photos (a move can make a pair)
        suspects = [s for s in suspects
                    if frozenset((s.label, s.neighbour_label)) not in within]
    ranked = rank_suspects(suspects, settings.max_suspects)
    close = [(row, int(i)) for row in range(len(paths))
             for i, d in zip(found.indices[row], found.distances[row], strict=True)
             if d <= settings.duplicate_distance and row < i]
    groups = duplicate_groups(paths, labels, found.splits, close)
    return {
        "settings": {"neighbours": settings.neighbours, "metric": settings.metric,
                     "space": "pca", "min_score": settings.min_score,
                     "duplicate_distance": settings.duplicate_distance,
                     "finder": asdict(settings.finder)},
        "counts": {
            "images": len(paths),
            "suspected_mislabels": len(suspects),
            "look_alike_pairs": len(pairs) if checked else 0,
            "near_duplicate_groups": len(groups),
            "near_duplicate_images": sum(len(g.paths) for g in groups),
            "groups_across_labels": sum(g.spans_labels for g in groups),
            "groups_across_splits": sum(g.spans_splits for g in groups),
        },
        "suspected_mislabels": [{**s.to_dict(), "look_alike_pair": frozenset(
            (s.label, s.neighbour_label)) in within} for s in ranked],
        "look_alike_pairs": alike,
        "near_duplicates": [g.to_dict(settings.max_group_paths)
                            for g in groups[:settings.max_groups]],
        "confusions": confusions(labels, majorities, settings.max_confusions),
        "neighbour_agreement": {name: round(share, 4) for name, share
                                in agreement_per_label(labels, majorities).items()},
    }


def assess(spark, rows: Rows, settings: QualitySettings | None = None) -> dict:
    """Search every labelled image's neighbours in Spark and judge them; seconds included
    (`judge` holds the out-of-fold model's fits)."""
    settings = settings or QualitySettings()
    begin = time.perf_counter()
    found = neighbourhood(spark, rows, settings.neighbours, settings.metric)
    searched = time.perf_counter()
    result = judge(found, rows.pca, settings)
    result["timings_s"] = {"search": round(searched - begin, 3),
                           "judge": round(time.perf_counter() - searched, 3)}
    return result

"""Suspected mislabels and near-duplicate groups of a run's images (report/data_quality.json).

The neighbours come from Spark (`knn`), the verdicts from pure functions (`neighbours`); the
thresholds below were chosen from measurements on the real Fruits 360 Test split
(docs/data_quality.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

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
    min_score: float = 0.6
    duplicate_distance: float = 0.02
    max_suspects: int = 500
    max_groups: int = 200
    max_group_paths: int = 20
    max_confusions: int = 20


def judge(found: Neighbourhood, settings: QualitySettings) -> dict:
    """data_quality.json's content from the neighbours: suspects, near-duplicate groups,
    the label pairs mixed up most, the neighbours' agreement per label, and counts."""
    paths, labels = found.paths, found.labels
    suspects, majorities = [], []
    for row, label in enumerate(labels):
        around = [int(i) for i in found.indices[row]]
        verdict = vote(label, [labels[i] for i in around])
        majorities.append(verdict.majority)
        if verdict.neighbour_label is None or verdict.score < settings.min_score:
            continue
        closest = min(float(d) for i, d in zip(around, found.distances[row], strict=True)
                      if labels[i] == verdict.neighbour_label)
        suspects.append(Suspect(paths[row], label, verdict.neighbour_label, verdict.score,
                                closest, tuple(paths[i] for i in around)))
    ranked = rank_suspects(suspects, settings.max_suspects)
    close = [(row, int(i)) for row in range(len(paths))
             for i, d in zip(found.indices[row], found.distances[row], strict=True)
             if d <= settings.duplicate_distance and row < i]
    groups = duplicate_groups(paths, labels, found.splits, close)
    return {
        "settings": {"neighbours": settings.neighbours, "metric": settings.metric,
                     "space": "pca", "min_score": settings.min_score,
                     "duplicate_distance": settings.duplicate_distance},
        "counts": {
            "images": len(paths),
            "suspected_mislabels": len(suspects),
            "near_duplicate_groups": len(groups),
            "near_duplicate_images": sum(len(g.paths) for g in groups),
            "groups_across_labels": sum(g.spans_labels for g in groups),
            "groups_across_splits": sum(g.spans_splits for g in groups),
        },
        "suspected_mislabels": [s.to_dict() for s in ranked],
        "near_duplicates": [g.to_dict(settings.max_group_paths)
                            for g in groups[:settings.max_groups]],
        "confusions": confusions(labels, majorities, settings.max_confusions),
        "neighbour_agreement": {name: round(share, 4) for name, share
                                in agreement_per_label(labels, majorities).items()},
    }


def assess(spark, rows: Rows, settings: QualitySettings | None = None) -> dict:
    """Search every labelled image's neighbours in Spark and judge them; seconds included."""
    settings = settings or QualitySettings()
    begin = time.perf_counter()
    found = neighbourhood(spark, rows, settings.neighbours, settings.metric)
    searched = time.perf_counter()
    result = judge(found, settings)
    result["timings_s"] = {"search": round(searched - begin, 3),
                           "judge": round(time.perf_counter() - searched, 3)}
    return result

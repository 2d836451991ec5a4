"""Figures of a run as PNG bytes (matplotlib, headless): plain data in, no Spark."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np

DPI = 100
LEGEND_MAX = 20  # labels a colour legend can tell apart; beyond, the page shows thumbnails


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(width, height), dpi=DPI)


def _png(figure) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return buffer.getvalue()


def explained_variance(per_component: Sequence[float], cumulative: Sequence[float],
                       target: float | None = None) -> bytes:
    """Bars per component, the cumulative curve, the chosen k (and the target) marked."""
    figure = _figure(8, 4)
    axis = figure.add_subplot()
    k = len(per_component)
    x = np.arange(1, k + 1)
    axis.bar(x, per_component, color="#9bbbd4", label="per component")
    axis.plot(x, cumulative, color="#1f4e79", label="cumulative")
    axis.axvline(k, color="#c0392b", linestyle="--", label=f"k = {k}")
    if target is not None:
        axis.axhline(target, color="#7f8c8d", linestyle=":", label=f"target {target:.0%}")
    axis.set_xlabel("principal component")
    axis.set_ylabel("share of the variance")
    axis.set_ylim(0, 1.02)
    axis.set_title(f"Explained variance: {cumulative[-1]:.1%} with k = {k}" if k else
                   "Explained variance")
    axis.legend(loc="center right")
    return _png(figure)


def pca_scatter(points: np.ndarray, labels: Sequence[str], legend_max: int = LEGEND_MAX
                ) -> bytes:
    """The first two PCA components, one colour per label (legend when it stays readable)."""
    import matplotlib

    figure = _figure(8, 6)
    axis = figure.add_subplot()
    names = sorted(set(labels))
    colours = matplotlib.colormaps["tab20"].resampled(max(len(names), 1))
    label_array = np.asarray(labels)
    for index, name in enumerate(names):
        mask = label_array == name
        axis.scatter(points[mask, 0], points[mask, 1], s=12, alpha=0.75,
                     color=colours(index), label=name)
    axis.set_xlabel("PC 1")
    axis.set_ylabel("PC 2")
    axis.set_title(f"First two PCA components ({len(labels)} images, {len(names)} labels)")
    if len(names) <= legend_max:
        axis.legend(fontsize=8, markerscale=1.5, loc="best")
    return _png(figure)


def counts_per_label(counts: Mapping[str, int], errors: Mapping[str, int]) -> bytes:
    """Horizontal bars: images with features per label, and errors where there are any."""
    names = sorted(counts, key=lambda n: (-counts[n], n))
    height = max(2.5, 0.28 * len(names) + 1)
    figure = _figure(8, height)
    axis = figure.add_subplot()
    y = np.arange(len(names))
    axis.barh(y, [counts[n] for n in names], color="#4c956c", label="with features")
    if any(errors.get(n) for n in names):
        axis.barh(y, [errors.get(n, 0) for n in names], left=[counts[n] for n in names],
                  color="#d1495b", label="errors")
        axis.legend(loc="lower right")
    axis.set_yticks(y, names, fontsize=8)
    axis.set_ylim(len(names) - 0.5, -0.5)  # largest on top, no empty margin band
    axis.set_xlabel("images")
    axis.set_title("Images per label")
    return _png(figure)


def stage_timings(timings: Mapping[str, float]) -> bytes:
    """Seconds per stage of the run."""
    stages = [(name, seconds) for name, seconds in timings.items() if name != "total"]
    figure = _figure(8, 0.45 * len(stages) + 1.2)
    axis = figure.add_subplot()
    y = np.arange(len(stages))
    axis.barh(y, [s for _, s in stages], color="#6c757d")
    axis.set_yticks(y, [n for n, _ in stages])
    axis.invert_yaxis()
    for row, (_, seconds) in enumerate(stages):
        axis.text(seconds, row, f" {seconds:.1f} s", va="center", fontsize=8)
    axis.set_xlabel("seconds")
    axis.set_title(f"Time per stage ({timings.get('total', sum(s for _, s in stages)):.1f} s "
                   "in all)")
    return _png(figure)


def counts_histogram(counts: Mapping[str, int], errors: Mapping[str, int]) -> bytes:
    """Images per label as a histogram (how many labels hold how many images), for runs with
    too many labels for a bar each; the page names the unusual ones beside it."""
    values = np.array([counts[n] for n in counts])
    figure = _figure(8, 2.2)
    axis = figure.add_subplot()
    axis.hist(values, bins=min(40, max(5, len(values) // 3)), color="#4c956c")
    if any(errors.values()):
        axis.set_title(f"Images per label ({len(values)} labels; "
                       f"{sum(errors.values())} errors, named below)")
    else:
        axis.set_title(f"Images per label ({len(values)} labels)")
    axis.set_xlabel("images in the label")
    axis.set_ylabel("labels")
    return _png(figure)

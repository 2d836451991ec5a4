"""Images per label for a page with 100+ labels: a histogram and the unusual labels named,
instead of a bar per label (3,000 pixels of equal bars at 103 labels)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

import numpy as np

from fruits_p8.report import plots

BARS_MAX = 30  # labels a bar chart shows readably; beyond, the histogram
NAMED = 8


def unusual(counts: Mapping[str, int], factor: float = 2.0) -> tuple[list[str], list[str]]:
    """Labels with under 1 / `factor` or over `factor` times the median count, fewest first /
    most first (a spread like Fruits 360's 102-328 around 164 is not unusual: a quartile
    rule named 20 of its 103 labels)."""
    if not counts:
        return [], []
    median = float(np.median(list(counts.values())))
    low, high = median / factor, median * factor
    order = sorted(counts, key=lambda n: (counts[n], n))
    return ([n for n in order if counts[n] < low],
            [n for n in reversed(order) if counts[n] > high])


def _named(names: list[str], counts: Mapping[str, int]) -> str:
    shown = ", ".join(f"{escape(n)} ({counts[n]})" for n in names[:NAMED])
    return shown + (f" and {len(names) - NAMED} more" if len(names) > NAMED else "")


def note(counts: Mapping[str, int], errors: Mapping[str, int]) -> str:
    """One paragraph: the range, the median, the unusual labels and those with errors."""
    if not counts:
        return ""
    values = sorted(counts.values())
    fewest, most = min(counts, key=lambda n: (counts[n], n)), max(counts, key=counts.get)
    few, many = unusual(counts)
    parts = [f"{len(counts)} labels, {values[0]} ({escape(fewest)}) to {values[-1]} "
             f"({escape(most)}) images per label, median {int(np.median(values))}."]
    parts.append(f" Unusually few: {_named(few, counts)}." if few else
                 " No label has unusually few images.")
    parts.append(f" Unusually many: {_named(many, counts)}." if many else "")
    failed = sorted((n for n in errors if errors[n]), key=lambda n: (-errors[n], n))
    if failed:
        parts.append(" <span class='warn'>Errors</span> in " + _named(failed, errors) + ".")
    return "<p>" + "".join(parts) + "</p>"


def figure(counts: Mapping[str, int], errors: Mapping[str, int]) -> tuple[bytes, str]:
    """The PNG and the HTML note under it: bars up to BARS_MAX labels, else the histogram."""
    if len(counts) <= BARS_MAX:
        return plots.counts_per_label(counts, errors), ""
    return plots.counts_histogram(counts, errors), note(counts, errors)

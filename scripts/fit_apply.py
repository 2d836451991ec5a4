"""Train, then apply, measured: fit scaler + PCA on one folder of real photos, apply it to
another with `--fitted`, and compare a logistic regression on `pca` with one on raw features.

    python scripts/fit_apply.py                      # ../shared/data/fruits-360/Test
    python scripts/fit_apply.py --per-label 30 --work /tmp/fit-apply

The split is copied (not linked) under --work: A = --per-label photos of each label spread
evenly over its rotation sequences and frames (as a Training split samples each fruit's
videos), B = all the others; `--contiguous` takes each label's first photos in name order
instead (one stretch of frames: a harder split). Prints the figures; writes nothing into the
input.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "fruits-360" / "Test"


_NAME = re.compile(r"(?:(r\d?)_)?(\d+)_100\.jpg")


def sequence_order(photo: Path) -> tuple[str, int]:
    """Rotation sequence ('', 'r', 'r2', ...) then frame number."""
    match = _NAME.fullmatch(photo.name)
    return (match.group(1) or "", int(match.group(2))) if match else ("~", 0)


def split(source: Path, work: Path, per_label: int, contiguous: bool) -> tuple[Path, Path]:
    """Copy `per_label` photos of each label to work/A, the rest to work/B."""
    a, b = work / "A", work / "B"
    if a.exists() or b.exists():
        raise SystemExit(f"{work} holds an earlier split: choose another --work")
    for label in sorted(p for p in source.iterdir() if p.is_dir()):
        photos = sorted(label.glob("*.jpg"), key=sequence_order)
        step = 1 if contiguous else len(photos) / per_label
        chosen = {int(i * step) for i in range(min(per_label, len(photos)))}
        for i, photo in enumerate(photos):
            target = (a if i in chosen else b) / label.name / photo.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                shutil.copyfile(photo, target)
    return a, b


def fruits_p8(*args: str) -> float:
    """Run the CLI as a user does; its wall time."""
    begin = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fruits_p8", "run", *args], check=True)
    return time.perf_counter() - begin


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=SOURCE)
    parser.add_argument("--work", type=Path, default=Path("/tmp/fruits-p8-fit-apply"))
    parser.add_argument("--per-label", type=int, default=30)
    parser.add_argument("--k", type=int, default=200)
    parser.add_argument("--contiguous", action="store_true",
                        help="each label's first photos in name order, not spread")
    args = parser.parse_args()
    if not args.input.is_dir():
        print(f"no photos at {args.input}", file=sys.stderr)
        return 3
    a, b = split(args.input, args.work, args.per_label, args.contiguous)
    train, test = args.work / "out-A", args.work / "out-B"
    fit_s = fruits_p8("--input", str(a), "--output", str(train), "--k", str(args.k),
                      "--overwrite")
    apply_s = fruits_p8("--input", str(b), "--output", str(test), "--fitted", str(train),
                        "--overwrite")

    import numpy as np
    import pyarrow.parquet as pq

    from fruits_p8.report.quality import accuracy
    from fruits_p8.report.rows import READ_COLUMNS, to_rows

    rows_a = to_rows(pq.read_table(train / "features", columns=READ_COLUMNS))
    rows_b = to_rows(pq.read_table(test / "features", columns=READ_COLUMNS))
    labels_a, labels_b = np.asarray(rows_a.labels), np.asarray(rows_b.labels)
    figures = {"split": "contiguous" if args.contiguous else "spread",
               "train_images": len(rows_a), "test_images": len(rows_b),
               "labels": len(set(rows_a.labels)), "k": args.k,
               "fit_run_s": round(fit_s, 1), "apply_run_s": round(apply_s, 1)}
    for column in ("pca", "features"):
        begin = time.perf_counter()
        result = accuracy(getattr(rows_a, column), labels_a, getattr(rows_b, column), labels_b,
                          "fit on A, apply to B")
        figures[f"accuracy_{column}"] = round(result.overall, 4)
        figures[f"lr_{column}_s"] = round(time.perf_counter() - begin, 1)
    figures["gap_points"] = round(100 * (figures["accuracy_features"] - figures["accuracy_pca"]),
                                  2)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

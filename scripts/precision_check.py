"""Does bfloat16 cost a classifier accuracy? Two outputs of the same photos (float32 and
bfloat16, or two --image-size runs), one logistic regression each, trained and scored on
the same split by video blocks, never by random frames.

    fruits-p8 run --input ../shared/data/fruits-360/Test --output /tmp/f32 --precision float32
    fruits-p8 run --input ../shared/data/fruits-360/Test --output /tmp/bf16 --precision bfloat16
    python scripts/precision_check.py /tmp/f32 /tmp/bf16

Splits (Fruits 360 names: `<frame>_100.jpg`, `r_<frame>_100.jpg`, `r2_...`: a rotation sequence
and a frame of its video):
  blocks     each sequence cut into blocks of --block frames; even blocks train, odd ones
             score (neighbouring frames never land on both sides but at a block's edge)
  rotation   the plain sequence trains, the rotated ones (r, r2, r3) score
Prints accuracy on raw features and on a scaler + PCA (k) fitted on the training rows only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fruits_p8.classify.blocks import video_frame  # noqa: E402
from fruits_p8.report.quality import accuracy, reduce_on_train  # noqa: E402


def splits(paths: list[str], block: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Boolean (train, test) masks of each split over `paths`."""
    frames = [video_frame(p) for p in paths]
    known = np.array([f is not None for f in frames])
    blocks = np.array([f is not None and (f[1] // block) % 2 == 0 for f in frames])
    plain = np.array([f is not None and f[0] == "" for f in frames])
    return {"blocks": (known & blocks, known & ~blocks),
            "rotation": (known & plain, known & ~plain)}


def load(output: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    table = pq.read_table(output / "features", columns=["path", "label", "features"])
    table = table.sort_by("path")
    paths = table.column("path").to_pylist()
    labels = np.array(table.column("label").to_pylist())
    values = table.column("features").combine_chunks().values.to_numpy(zero_copy_only=False)
    return paths, labels, values.reshape(len(paths), -1).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outputs", nargs=2, type=Path, help="two run outputs of the same photos")
    parser.add_argument("--block", type=int, default=40, help="frames per block")
    parser.add_argument("--k", type=int, default=200)
    args = parser.parse_args(argv)
    loaded = [load(o) for o in args.outputs]
    if loaded[0][0] != loaded[1][0]:
        raise SystemExit("the two outputs do not hold the same photos")
    paths, labels = loaded[0][0], loaded[0][1]
    print(f"{len(paths)} photos, {len(set(labels))} labels")
    for name, (train, test) in splits(paths, args.block).items():
        print(f"split {name}: {train.sum()} train, {test.sum()} test")
        for output, (_, _, features) in zip(args.outputs, loaded, strict=True):
            raw = accuracy(features[train], labels[train], features[test], labels[test], "raw")
            pca_train, pca_test = reduce_on_train(features[train], features[test], args.k)
            pca = accuracy(pca_train, labels[train], pca_test, labels[test], "pca")
            print(f"  {output}: raw {100 * raw.overall:.2f} %, "
                  f"pca-{args.k} {100 * pca.overall:.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())

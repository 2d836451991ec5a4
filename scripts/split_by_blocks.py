"""Split a Fruits 360 folder in two by video blocks, as links: SRC/<Label>/x.jpg ->
DST/Training/<Label>/x.jpg or DST/Test/<Label>/x.jpg by blocks of --block frames (twice
the blocks `fruits-p8 train` validates on, so that its own validation still finds blocks in
Training). Whole runs of consecutive frames land on one side, so the Test part scores
recognition, not the memory of a neighbouring frame.

    python scripts/split_by_blocks.py ../shared/data/fruits-360/Test /tmp/blocks
    fruits-p8 run --input /tmp/blocks/Training --output /tmp/training
    fruits-p8 run --input /tmp/blocks/Test --output /tmp/test --fitted /tmp/training
    fruits-p8 train /tmp/training --output /tmp/classifier
    fruits-p8 evaluate /tmp/classifier /tmp/test
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fruits_p8.classify.blocks import BLOCK, in_validation  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a folder of <Label>/<image>.jpg")
    parser.add_argument("target", type=Path, help="a new folder for Training/ and Test/")
    parser.add_argument("--block", type=int, default=2 * BLOCK, help="frames per block")
    args = parser.parse_args(argv)
    if args.target.exists():
        parser.error(f"{args.target} exists: give a new folder")
    counts = {"Training": 0, "Test": 0}
    for photo in sorted(args.source.glob("*/*.jpg")):
        side = "Test" if in_validation(str(photo), args.block) else "Training"
        folder = args.target / side / photo.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / photo.name).symlink_to(photo.resolve())
        counts[side] += 1
    print(f"{counts['Training']} Training + {counts['Test']} Test links under {args.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

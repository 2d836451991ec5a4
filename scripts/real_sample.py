"""Copy the embedded sample of real photos out of the Fruits 360 Test split.

    python scripts/real_sample.py                 # from ../shared/data/fruits-360/Test
    python scripts/real_sample.py --check         # the committed sample is exactly this choice

The default input of `fruits-p8 run` (fruits_p8/resources/fruits-360-sample/Test): LABELS,
PER_LABEL photos each, spread evenly over each label's rotation sequences. Files are copied
byte for byte; a destination that holds anything else is refused, not cleaned.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "fruits-360" / "Test"
DESTINATION = ROOT / "fruits_p8" / "resources" / "fruits-360-sample" / "Test"

# Look-alikes side by side (red apples, green and yellow apples, tomatoes against cherries
# and red peppers) and fruit that nothing resembles.
LABELS = (
    "Apple Braeburn", "Apple Red 1", "Apple Red Delicious", "Apple Pink Lady",
    "Apple Granny Smith", "Apple Golden 1",
    "Tomato 1", "Tomato 4", "Tomato Cherry Red", "Cherry 1", "Pepper Red",
    "Pepper Green", "Banana", "Lemon", "Orange", "Kiwi", "Walnut", "Grape Blue",
)
PER_LABEL = 20
_NAME = re.compile(r"(?:(r\d?)_)?(\d+)_100\.jpg")


def sequence_order(name: str) -> tuple[str, int]:
    """Rotation sequence ('' , 'r', 'r2', ...) then frame number: neighbours look alike."""
    match = _NAME.fullmatch(name)
    return (match.group(1) or "", int(match.group(2))) if match else ("~", 0)


def choose(names: list[str], count: int = PER_LABEL) -> list[str]:
    """`count` names evenly spaced over the label's sequences, in sequence order."""
    ordered = sorted(names, key=sequence_order)
    if len(ordered) <= count:
        return ordered
    step = len(ordered) / count
    return [ordered[int(i * step + step / 2)] for i in range(count)]


def selection(source: Path) -> dict[str, list[str]]:
    """Label -> chosen file names."""
    return {label: choose([p.name for p in (source / label).glob("*.jpg")])
            for label in LABELS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--destination", type=Path, default=DESTINATION)
    parser.add_argument("--check", action="store_true",
                        help="compare the destination with the choice; copy nothing")
    args = parser.parse_args(argv)
    if not args.source.is_dir():
        parser.error(f"no Fruits 360 Test split at {args.source}")
    chosen = selection(args.source)
    wanted = {f"{label}/{name}" for label, names in chosen.items() for name in names}
    present = ({p.relative_to(args.destination).as_posix()
                for p in args.destination.rglob("*") if p.is_file()}
               if args.destination.exists() else set())
    differ = sorted(f for f in wanted & present
                    if (args.source / f).read_bytes() != (args.destination / f).read_bytes())
    if args.check:
        problems = ([f"missing {f}" for f in sorted(wanted - present)]
                    + [f"not chosen {f}" for f in sorted(present - wanted)]
                    + [f"differs {f}" for f in differ])
        print("\n".join(problems) or f"{len(wanted)} files, as chosen and byte-identical")
        return 1 if problems else 0
    if present - wanted or differ:
        parser.error(f"{args.destination} holds other files; move them away first")
    for relative in sorted(wanted - present):
        target = args.destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.source / relative, target)
    size = sum((args.destination / f).stat().st_size for f in wanted)
    print(f"{len(wanted)} files ({size / 1e6:.2f} MB) in {args.destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

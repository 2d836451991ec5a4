"""Fetch Hadoop's S3A filesystem jars from PyPI, for the test that loads a saved model with
plain PySpark's `PipelineModel.load("s3a://...")` from the moto S3 server.

pip's pyspark ships no S3 filesystem, Maven is out of reach here, and Debian packages no
Hadoop. AWS's `sagemaker-pyspark` sdist on PyPI (Apache-2.0) carries the Apache
`hadoop-aws-3.3.1.jar` and its `aws-java-sdk-bundle-1.11.901.jar`: this script downloads it
once (181 MB), checks both jars against pinned sha256 and writes them into `--into`
(default build/s3a-jars). hadoop-aws 3.3.1 is the S3A of PySpark 3.5's Hadoop 3.3 line;
PySpark 4's Hadoop 3.5 runs it with a few settings put back (see tests/support/s3a.py).
For the test only: on EMR, Spark reads S3 through EMRFS.

    python scripts/s3a_jars.py                 # build/s3a-jars, nothing done if already there
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "sagemaker-pyspark==1.4.5"
# name in the sdist's deps/jars/ -> (bytes, sha256)
JARS = {
    "hadoop-aws-3.3.1.jar":
        (870_644, "6be50ad8a8b445d2802381b085b2a3ede5c29d353450a6a21f16b2fefa962b6e"),
    "aws-java-sdk-bundle-1.11.901.jar":
        (192_321_266, "b87175b32a16544cc1b37cf40390eb375833e62bed67f8ce6cde4b7ad6429ead"),
}


def missing(folder: Path) -> list[str]:
    """The jars not in `folder` at their pinned size (the sha256 is checked when written)."""
    return [name for name, (size, _) in JARS.items()
            if not (folder / name).is_file() or (folder / name).stat().st_size != size]


def extract(sdist: Path, folder: Path) -> None:
    """Copy the pinned jars out of the sdist into `folder`, each checked before it lands."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist) as archive:
        for member in archive:
            name = member.name.rsplit("/", 1)[-1]
            if name not in JARS or "/deps/jars/" not in member.name:
                continue
            partial, digest = folder / f".{name}.partial", hashlib.sha256()
            with archive.extractfile(member) as source, partial.open("wb") as target:
                while chunk := source.read(1 << 20):
                    digest.update(chunk)
                    target.write(chunk)
            if digest.hexdigest() != JARS[name][1]:
                partial.unlink()
                raise SystemExit(f"s3a_jars: {name} in {sdist.name} has sha256 "
                                 f"{digest.hexdigest()}, not the pinned {JARS[name][1]}")
            partial.replace(folder / name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--into", type=Path, default=ROOT / "build" / "s3a-jars",
                        help="folder for the jars (default: build/s3a-jars)")
    args = parser.parse_args(argv)
    if not missing(args.into):
        print(f"S3A jars already in {args.into}")
        return 0
    with tempfile.TemporaryDirectory(prefix="s3a-jars-") as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                               "--no-binary", ":all:", "-d", tmp, PACKAGE],
                              capture_output=True, text=True)
        sdists = list(Path(tmp).glob("sagemaker_pyspark-*.tar.gz"))
        if done.returncode != 0 or not sdists:
            last = (done.stderr.strip().splitlines() or ["no sdist downloaded"])[-1]
            print(f"s3a_jars: pip could not download {PACKAGE}: {last}", file=sys.stderr)
            return 1
        extract(sdists[0], args.into)
    if missing(args.into):
        print(f"s3a_jars: {PACKAGE} lacks {', '.join(missing(args.into))}", file=sys.stderr)
        return 1
    print(f"S3A jars from {PACKAGE} in {args.into}: {', '.join(JARS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

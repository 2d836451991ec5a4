"""Hadoop's S3A filesystem for plain PySpark in tests: the jars scripts/s3a_jars.py fetches
when a test first needs them, and the settings that point it at the moto server."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from fruits_p8.schema import DEFAULT_REGION

ROOT = Path(__file__).resolve().parents[2]
S3A_JARS = ROOT / "build" / "s3a-jars"
PATTERNS = ("hadoop-aws-*.jar", "aws-java-sdk-bundle-*.jar")


def s3a_jars() -> list[Path]:
    """hadoop-aws and its AWS SDK bundle, fetched on first use; the test is skipped where
    they cannot be."""
    def found() -> list[list[Path]]:
        return [sorted(S3A_JARS.glob(pattern)) for pattern in PATTERNS]

    if not all(found()):
        # Into a folder of this process's own, then renamed: `make test` runs two sessions.
        S3A_JARS.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=S3A_JARS.parent) as own:
            fetch = subprocess.run([sys.executable, str(ROOT / "scripts" / "s3a_jars.py"),
                                    "--into", own], capture_output=True, text=True)
            for jar in Path(own).glob("*.jar"):
                jar.replace(S3A_JARS / jar.name)
        if fetch.returncode != 0 or not all(found()):
            pytest.skip(f"the Hadoop S3A jars are not in {S3A_JARS} and scripts/s3a_jars.py "
                        "could not fetch them from PyPI (the sagemaker-pyspark 1.4.5 sdist, "
                        f"181 MB): {fetch.stderr.strip()[-300:]}")
    return [paths[-1] for paths in found()]


def s3a_conf(jars: list[Path], endpoint: str) -> dict[str, str]:
    """SparkSession settings: S3A on those jars, path-style requests to `endpoint`.

    hadoop-aws 3.3 reads a few durations as plain numbers, and names SDK v1 credential
    providers; PySpark 4's Hadoop 3.5 defaults give "60s" and SDK v2 classes, so they are set
    here (the same values, in the units 3.3 expects). PySpark 3.5 (Hadoop 3.3.4) needs none
    of them and is not hurt by them."""
    return {
        "spark.jars": ",".join(str(p) for p in jars),
        "spark.hadoop.fs.s3a.endpoint": endpoint,
        "spark.hadoop.fs.s3a.endpoint.region": DEFAULT_REGION,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        "spark.hadoop.fs.s3a.access.key": "testing",
        "spark.hadoop.fs.s3a.secret.key": "testing",
        "spark.hadoop.fs.s3a.aws.credentials.provider":
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "spark.hadoop.fs.s3a.connection.establish.timeout": "30000",  # ms
        "spark.hadoop.fs.s3a.connection.timeout": "200000",  # ms
        "spark.hadoop.fs.s3a.connection.ttl": "300000",  # ms
        "spark.hadoop.fs.s3a.threads.keepalivetime": "60",  # s
        "spark.hadoop.fs.s3a.multipart.purge.age": "86400",  # s
    }

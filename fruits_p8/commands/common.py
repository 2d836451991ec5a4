"""What the command groups share: help formatting, argument types, S3 options, the session."""

from __future__ import annotations

import argparse
import os
from contextlib import contextmanager
from pathlib import Path

from fruits_p8.schema import DEFAULT_REGION, IO_MODES


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows a default only where it says something ('[default: ...]' in a help text wins)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "[default" in text or action.default in (None, False, argparse.SUPPRESS, []):
            return text
        return f"{text} [default: %(default)s]"


# Counts (tasks, images, threads...) reach the JVM as Java ints: a larger one ends in a Py4J
# error deep in a run instead of a usage line.
MAX_COUNT = 2**31 - 1


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if not 1 <= value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer up to {MAX_COUNT}, got {value}")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {value}")
    return value


def add_s3_options(parser: argparse.ArgumentParser, transport: bool = False) -> None:
    group = parser.add_argument_group("S3 (credentials come from the standard AWS chain)")
    group.add_argument("--region", default=DEFAULT_REGION, help="AWS region of the bucket")
    group.add_argument("--endpoint-url", default=None,
                       help="S3-compatible endpoint (MinIO, moto...) [default: AWS, or "
                       "$AWS_ENDPOINT_URL]")
    if transport:
        group.add_argument("--io", default="auto", choices=IO_MODES,
                           help="how s3:// data moves: spark (EMRFS/S3A), boto3 (executors "
                           "call S3 themselves; for Spark without S3 jars), auto (spark "
                           "where it can)")


def s3_settings(args: argparse.Namespace):
    """S3Settings from --region and --endpoint-url."""
    from fruits_p8.io.s3 import S3Settings

    return S3Settings(region=args.region, endpoint_url=args.endpoint_url)


@contextmanager
def session(args: argparse.Namespace, master: str | None, cache_dir: Path,
            conf: dict[str, str] | None = None):
    """The caller's SparkSession (main(..., spark=)), else a new one, stopped afterwards."""
    if args.spark is not None:
        yield args.spark
        return
    from fruits_p8.spark import build_session

    spark = build_session(master, os.environ, cache_dir, conf)
    try:
        yield spark
    finally:
        spark.stop()

"""Command line: `fruits-p8 run|report|sample|upload|ls|emr|models`, its commands in
fruits_p8/commands/ by group; user mistakes end in one line, not a trace."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from fruits_p8 import __version__
from fruits_p8.commands import emr, s3
from fruits_p8.commands import run as run_commands
from fruits_p8.commands.common import Formatter
from fruits_p8.commands.run import EMBEDDED_SAMPLE, run_config, summary
from fruits_p8.errors import StorageError, UserError

__all__ = ["EMBEDDED_SAMPLE", "build_parser", "main", "run_config", "summary"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fruits-p8",
        description="Turn a Fruits-360-style image collection into CNN features reduced by PCA, "
        "on Spark (local, or AWS EMR).",
        formatter_class=Formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="how much to log")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run_commands.add_commands(sub)
    s3.add_commands(sub)
    emr.add_commands(sub)
    run_commands.add_models_command(sub)
    return parser


def main(argv: Sequence[str] | None = None, spark=None) -> int:
    """The command line; `spark`: run in this SparkSession instead of starting one."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    args.spark = spark
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("py4j", "botocore", "boto3", "s3transfer", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return args.handler(args)
    except UserError as exc:
        print(f"fruits-p8: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # the machine's files: permissions, a full disk...
        where = f": {exc.filename}" if exc.filename else ""
        print(f"fruits-p8: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return StorageError.exit_code
    except KeyboardInterrupt:
        print("fruits-p8: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

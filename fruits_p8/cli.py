"""Command line: `fruits-p8 run|train|evaluate|predict|report|sample|upload|ls|emr|models`,
its commands in fruits_p8/commands/ by group. Whatever a command raises ends in one line on
stderr and an exit code (fruits_p8.boundary); the full trace, and all that Spark, the JVM and
the libraries print, go to the command's log (fruits_p8.run_log)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from fruits_p8 import __version__
from fruits_p8.boundary import Failure, Where, describe, interrupted
from fruits_p8.commands import classify, emr, s3
from fruits_p8.commands import run as run_commands
from fruits_p8.commands.common import Formatter
from fruits_p8.commands.run import EMBEDDED_SAMPLE, run_config, summary
from fruits_p8.run_log import (
    LOG_DIR_ENV,
    RunLog,
    diverted_stderr,
    log_folder,
    logging_to,
    open_run_log,
)
from fruits_p8.signals import StopOnSignal, stop_on_signals

__all__ = ["EMBEDDED_SAMPLE", "build_parser", "main", "run_config", "summary"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fruits-p8",
        description="Turn a Fruits-360-style image collection into CNN features reduced by PCA, "
        "on Spark (local, or AWS EMR).",
        formatter_class=Formatter,
        epilog="On failure: one line `fruits-p8: error: ...` and an exit code (README: Errors, "
        "exit codes and the log); each command's full log, a failure's trace included, goes "
        f"to ${LOG_DIR_ENV}, else $XDG_STATE_HOME/fruits_p8/logs or ~/.local/state/fruits_p8/logs.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="how much to log")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run_commands.add_commands(sub)
    classify.add_commands(sub)
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
    log = open_run_log(log_folder(os.environ, Path.home()), args.command)
    log.note(f"fruits-p8 {__version__}, pid {os.getpid()}: "
             + " ".join(sys.argv[:1] + list(sys.argv[1:] if argv is None else argv)))
    try:
        with diverted_stderr(log) as console, logging_to(console, log, args.log_level), \
                stop_on_signals() as stopper, _own_jvm(spark is None):
            args.console = console
            return _boundary(args, log, console, stopper)
    except KeyboardInterrupt as exc:  # a signal in the instant before the command's end
        line = interrupted(exc).line(log.path)
        log.write_failure(line, exc)
        print(line, file=sys.stderr, flush=True)
        return interrupted(exc).exit_code
    finally:
        log.close()


def _boundary(args: argparse.Namespace, log: RunLog, console, stopper: StopOnSignal) -> int:
    """Run the command: its exit code, or one line and the code of what it raised."""
    try:
        code = args.handler(args)
    except (Exception, KeyboardInterrupt) as exc:
        stopper.hold()
        try:
            failure = describe(exc, _where(args))
        except Exception:  # reading the failure failed: still one line, the trace logged
            failure = Failure(f"internal error ({type(exc).__name__}); please report it with "
                              "the log", 1)
        line = failure.line(log.path)
        log.write_failure(line, exc)
        print(line, file=console, flush=True)
        return failure.exit_code
    stopper.hold()
    return code


def _where(args: argparse.Namespace) -> Where:
    """The input and output of the command, as its options name them."""
    source = getattr(args, "input", None) or getattr(args, "local_dir", None)
    if source is None and args.command == "run":
        source = EMBEDDED_SAMPLE
    target = getattr(args, "output", None) or getattr(args, "uri", None)
    return Where(input=None if source is None else str(source),
                 output=None if target is None else str(target))


@contextmanager
def _own_jvm(owner: bool) -> Iterator[None]:
    """A JVM this command launched ends with it (with its Python workers): no process of the
    command outlives it, whether it succeeded, failed or was interrupted."""
    from fruits_p8.spark import launched_gateway

    before = launched_gateway() if owner else None
    try:
        yield
    finally:
        gateway = launched_gateway() if owner else None
        if gateway is not None and gateway is not before:
            from fruits_p8.spark import stop_jvm

            try:
                stop_jvm(gateway)
            except Exception as exc:  # the command's outcome stands; the log says why
                logging.getLogger("fruits_p8").warning("could not stop Spark's JVM: %s", exc)


if __name__ == "__main__":
    sys.exit(main())

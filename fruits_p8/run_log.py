"""The command's log file: the full story of a failure, kept off the console.

Each command writes one log under the log folder: $FRUITS_P8_LOG_DIR, else
$XDG_STATE_HOME/fruits_p8/logs, else ~/.local/state/fruits_p8/logs (a per-user temporary
folder if none of these can be written); the newest KEEP logs are kept. While the command
runs, file descriptor 2 (what the Spark JVM, its Python workers, TensorFlow's C++ code and any
other child inherit) and Python's sys.stderr point at the log; the console keeps our own
lines: fruits_p8's log records at --log-level, and the one line a failure ends with.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

LOG_DIR_ENV = "FRUITS_P8_LOG_DIR"
KEEP = 20
PREFIX = "fruits-p8-"
CONSOLE_FORMAT = "%(asctime)s %(levelname)-7s %(message)s"
FILE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# Loggers whose records only the file gets below WARNING (they are chatty at INFO).
CHATTY = ("py4j", "botocore", "boto3", "s3transfer", "urllib3")


def log_folder(environ: Mapping[str, str], home: Path) -> Path:
    """Where logs go: $FRUITS_P8_LOG_DIR, else the XDG state folder."""
    if environ.get(LOG_DIR_ENV):
        return Path(environ[LOG_DIR_ENV]).expanduser()
    state = Path(environ["XDG_STATE_HOME"]) if environ.get("XDG_STATE_HOME") else (
        home / ".local" / "state")
    return state / "fruits_p8" / "logs"


@dataclass
class RunLog:
    """One command's log: its path (None when no folder could be written) and text stream."""

    path: Path | None
    stream: TextIO

    def note(self, text: str) -> None:
        self.stream.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")

    def write_failure(self, line: str, exc: BaseException) -> None:
        """The line the console got, then the whole trace: Python's, with the JVM's inside
        (a Py4J error's text carries the Java stack and the Python workers' tracebacks)."""
        try:
            trace = "".join(traceback.format_exception(exc))
        except Exception as format_error:  # a Py4J error whose JVM has gone
            trace = f"{type(exc).__name__}: (its text could not be read: {format_error})\n"
        self.stream.write(f"\n=== {line}\n{trace}")
        self.stream.flush()

    def close(self) -> None:
        self.stream.close()


def open_run_log(folder: Path, command: str, keep: int = KEEP) -> RunLog:
    """A new log for `command` in `folder` (or a per-user temporary folder), older ones
    beyond the newest `keep` removed."""
    name = f"{PREFIX}{time.strftime('%Y%m%d-%H%M%S')}-{command}-{os.getpid()}.log"
    fallback = Path(tempfile.gettempdir()) / f"fruits_p8-logs-{os.getuid()}"
    for where in (folder, fallback):
        try:
            where.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = where / name
            stream = open(path, "a", buffering=1, encoding="utf-8",  # noqa: SIM115
                          errors="backslashreplace")
        except OSError:
            continue
        _prune(where, keep)
        return RunLog(path, stream)
    return RunLog(None, open(os.devnull, "w"))  # noqa: SIM115


def _prune(folder: Path, keep: int) -> None:
    logs = sorted(folder.glob(f"{PREFIX}*.log"), key=lambda p: p.stat().st_mtime)
    for old in logs[:-keep]:
        old.unlink(missing_ok=True)


class _Diverted(io.TextIOBase):
    """sys.stderr while a command runs: the log; afterwards what it replaced (something may
    have kept it, as a logging.StreamHandler made during the run does)."""

    def __init__(self, target: TextIO) -> None:
        self.target = target

    def write(self, text: str) -> int:
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()

    def fileno(self) -> int:
        return self.target.fileno()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:
        return getattr(self.target, "encoding", None) or "utf-8"


@contextmanager
def diverted_stderr(log: RunLog) -> Iterator[TextIO]:
    """Point fd 2 and sys.stderr at the log for the length of the block; yields the console
    (the caller's sys.stderr, on a copy of fd 2 when that is what it wrote to)."""
    original = sys.stderr
    if log.path is None:
        yield original
        return
    original.flush()
    console = _console(original)
    saved = os.dup(2)
    log_fd = os.open(log.path, os.O_WRONLY | os.O_APPEND)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    diverted = _Diverted(log.stream)
    sys.stderr = diverted
    try:
        yield console
    finally:
        if sys.stderr is diverted:
            sys.stderr = original
        diverted.target = original
        console.flush()
        os.dup2(saved, 2)
        os.close(saved)
        if console is not original:
            console.close()


def _console(stream: TextIO) -> TextIO:
    try:
        on_fd2 = stream.fileno() == 2
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        on_fd2 = False
    if not on_fd2:
        return stream
    return open(os.dup(2), "w", buffering=1,  # noqa: SIM115
                encoding=getattr(stream, "encoding", None) or "utf-8",
                errors="backslashreplace")


class _Ours(logging.Filter):
    """Console records: fruits_p8's own (the rest goes to the log file only)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == "fruits_p8" or record.name.startswith("fruits_p8.")


@contextmanager
def logging_to(console: TextIO, log: RunLog, level: str) -> Iterator[None]:
    """fruits_p8's records at `level` on the console (unless the caller set up logging
    itself, as logging.basicConfig would leave it), every record at INFO or above in the log."""
    root = logging.getLogger()
    wanted = min(logging.getLevelName(level), logging.INFO)
    handlers: list[logging.Handler] = []
    if not root.handlers:
        shown = logging.StreamHandler(console)
        shown.setLevel(level)
        shown.setFormatter(logging.Formatter(CONSOLE_FORMAT, datefmt="%H:%M:%S"))
        shown.addFilter(_Ours())
        handlers.append(shown)
    kept = logging.StreamHandler(log.stream)
    kept.setLevel(wanted)
    kept.setFormatter(logging.Formatter(FILE_FORMAT, datefmt="%H:%M:%S"))
    handlers.append(kept)
    levels = {name: logging.getLogger(name).level for name in ("", *CHATTY)}
    root.setLevel(min(root.level or logging.WARNING, wanted) if root.handlers else wanted)
    for name in CHATTY:
        logging.getLogger(name).setLevel(max(logging.WARNING, wanted))
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        for name, before in levels.items():
            logging.getLogger(name).setLevel(before)

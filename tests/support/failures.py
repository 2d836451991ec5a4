"""What the failure tests share: a CLI run in a subprocess with its own log folder, the check
that its stderr holds one error line and no trace, and the processes a run started."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# What must never reach the console: a Python traceback, a Java frame or exception name.
TRACE_MARKS = ("Traceback", "\tat ", "Py4JJavaError", "java.lang.", "java.io.",
               "org.apache.spark", "Exception in thread", "py4j.protocol")
_LOG = re.compile(r" \(full trace: (.+)\)$")


def cli_env(logs: Path) -> dict[str, str]:
    """The environment of a CLI subprocess: this tree first, logs under `logs`."""
    return {**os.environ, "FRUITS_P8_LOG_DIR": str(logs), "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}


def cli(args: list[str], logs: Path, timeout: float = 600,
        prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """`fruits-p8 ARGS` run to its end."""
    return subprocess.run([*prefix, sys.executable, "-m", "fruits_p8", *args],
                          capture_output=True, text=True, timeout=timeout, env=cli_env(logs))


def one_error_line(stderr: str, fragment: str = "") -> Path | None:
    """Check that `stderr` ends a command the boundary's way: exactly one `fruits-p8: error:`
    line (holding `fragment`), nothing of a trace; returns the log the line names."""
    errors = [line for line in stderr.splitlines() if line.startswith("fruits-p8: error:")]
    assert len(errors) == 1, stderr[-3000:]
    for mark in TRACE_MARKS:
        assert mark not in stderr, f"{mark!r} on the console:\n{stderr[-3000:]}"
    assert fragment in errors[0], errors[0]
    named = _LOG.search(errors[0])
    return Path(named.group(1)) if named else None


def trace_in(log: Path | None, *fragments: str) -> str:
    """The log a line named: it holds the full trace (and these fragments)."""
    assert log is not None and log.is_file(), log
    text = log.read_text(errors="replace")
    assert "Traceback" in text
    for fragment in fragments:
        assert fragment in text, fragment
    return text


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under `root` by relative path, with the sha256 of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it now (from /proc: JVM, worker daemon, workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def left_running(pids: list[int], wait_s: float = 60.0) -> list[int]:
    """Those of `pids` still running once up to `wait_s` have passed for them to end."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.2)
    return [p for p in pids if alive(p)]


def finished_output(folder: Path) -> None:
    """A finished output of fruits_p8, as small as the ownership checks accept."""
    folder.mkdir(parents=True)
    for name in ("_FRUITS_P8", "_SUCCESS", "run.json"):
        (folder / name).write_text("{}")

"""One run at a time per output: a lease file beside the output, kept fresh while a run lives.

A run takes the lease before it touches the output and keeps it until its commit is done.
A second run to the same output is refused while the lease is fresh; a lease whose heartbeat
is older than `ttl_s`, or whose process is gone from this machine, is taken over. Creation
and takeover are conditional writes (O_EXCL and a lock locally; If-None-Match / If-Match on
S3), so two runs never both hold it; each writes the whole lease at once (a temporary file
renamed into place; one PUT on S3), so no interruption leaves it empty or cut short. A lease
found empty or cut short anyway (an older fruits_p8, a filesystem without hard links) is
stale once GRACE_S old. Just before its commit a run renews the lease once more, and commits
only if that renewal still found its own lease.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from fruits_p8.errors import OutputInUseError
from fruits_p8.io.lease_store import LeaseStore, LocalLeaseStore, S3LeaseStore, Seen

log = logging.getLogger(__name__)
__all__ = ["GRACE_S", "Lease", "LeaseRecord", "LocalLeaseStore", "S3LeaseStore", "is_stale",
           "this_machine"]

TTL_S = 120.0
HEARTBEAT_S = 20.0
GRACE_S = 5.0  # an empty or cut-short lease younger than this may still be being written
MAX_PID = 2 ** 22  # Linux's pid_max limit


def this_machine() -> str:
    """Where a pid means the same process: this kernel boot and pid namespace."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return socket.gethostname()
    return f"{socket.gethostname()}/{boot}/{namespace}"


@dataclass(frozen=True)
class LeaseRecord:
    """Who holds an output: run id, host, process, and when it last said it was alive."""

    run_id: str
    host: str
    pid: int
    started: float
    heartbeat: float
    machine: str = ""

    def to_text(self) -> str:
        return json.dumps(asdict(self)) + "\n"

    @staticmethod
    def from_text(text: str) -> LeaseRecord | None:
        """The record in a lease file; None when it cannot be read as one."""
        try:
            data = json.loads(text)
            record = LeaseRecord(str(data["run_id"]), str(data["host"]), int(data["pid"]),
                                 float(data["started"]), float(data["heartbeat"]),
                                 str(data.get("machine", "")))
        except (ValueError, KeyError, TypeError):
            return None
        return record if 0 < record.pid < MAX_PID else None

    def describe(self, now: float) -> str:
        return (f"run {self.run_id}, pid {self.pid} on {self.host}, started "
                f"{now - self.started:.0f} s ago, alive {now - self.heartbeat:.0f} s ago")


def half_written(text: str) -> bool:
    """Whether `text` is a lease cut short while being written (empty, or the start of a
    record), rather than a file that was never a lease."""
    if not text.strip():
        return True
    if not text.startswith('{"run_id"'):
        return False
    try:
        json.loads(text)
    except ValueError:
        return True
    return False


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


def is_stale(record: LeaseRecord, now: float, ttl_s: float, machine: str,
             alive: Callable[[int], bool] = pid_alive) -> bool:
    """A lease may be taken over when silent for longer than `ttl_s`, or held by a process
    that no longer runs on this machine."""
    if now - record.heartbeat > ttl_s:
        return True
    return bool(record.machine) and record.machine == machine and not alive(record.pid)


class Lease:
    """The right to write one output, held by one run and renewed in the background."""

    def __init__(self, store: LeaseStore, uri: str, run_id: str, ttl_s: float = TTL_S,
                 heartbeat_s: float = HEARTBEAT_S, clock: Callable[[], float] = time.time,
                 host: str | None = None, pid: int | None = None,
                 machine: str | None = None, grace_s: float = GRACE_S) -> None:
        self.store, self.uri, self.run_id = store, uri, run_id
        self.ttl_s, self.heartbeat_s, self.clock = ttl_s, heartbeat_s, clock
        self.grace_s = grace_s
        self.host = host or socket.gethostname()
        self.pid = pid if pid is not None else os.getpid()
        self.machine = machine if machine is not None else this_machine()
        self.started = clock()
        self.token: object | None = None
        self.lost: str | None = None
        self._stop = threading.Event()
        self._renewing = threading.Lock()  # the heartbeat and the check before commit
        self._thread: threading.Thread | None = None

    def _record(self) -> LeaseRecord:
        return LeaseRecord(self.run_id, self.host, self.pid, self.started, self.clock(),
                           self.machine)

    def acquire(self) -> None:
        """Take the lease (or a stale one over); OutputInUseError while another run holds it."""
        text = self._record().to_text()
        token = self.store.create(text)
        if token is None:
            current = self.store.read()
            token = (self.store.create(text) if current is None
                     else self._take_over(current, text))
            if token is None:
                raise OutputInUseError(f"{self.uri} was claimed by another run just now; "
                                       "try again when it has finished")
        self.token = token
        if self.heartbeat_s > 0:
            self._thread = threading.Thread(target=self._beat, name="fruits-p8-lease",
                                            daemon=True)
            self._thread.start()

    def _refuse_if_alive(self, current: Seen) -> LeaseRecord | None:
        """The record of a lease that may be taken over; OutputInUseError if not."""
        now = self.clock()
        other = LeaseRecord.from_text(current.text)
        if other is None:
            if not half_written(current.text):
                raise OutputInUseError(
                    f"the lease of {self.uri} holds something fruits_p8 did not write; "
                    "remove it yourself if no run uses this output")
            if now - current.modified <= self.grace_s:  # maybe being written right now
                raise OutputInUseError(f"{self.uri} is being claimed by another run just "
                                       "now; try again in a few seconds")
            return None
        if not is_stale(other, now, self.ttl_s, self.machine):
            raise OutputInUseError(
                f"{self.uri} is being written by another run ({other.describe(now)}); wait "
                f"for it to finish (a run that died is taken over {self.ttl_s:.0f} s after "
                "its last sign of life)")
        return other

    def _take_over(self, current: Seen, text: str) -> object | None:
        other = self._refuse_if_alive(current)
        log.warning("taking over the lease of %s from a run that is gone (%s)", self.uri,
                    other.describe(self.clock()) if other else "a lease left empty or cut short")
        return self.store.replace(text, current.token)

    def check_free(self) -> None:
        """OutputInUseError if another live run holds the lease now (nothing is taken)."""
        current = self.store.read()
        if current is not None:
            self._refuse_if_alive(current)

    def renew(self) -> None:
        """Say this run is alive; if another run took the lease, remember it was lost."""
        with self._renewing:
            if self.lost or self.token is None:
                return
            token = self.store.replace(self._record().to_text(), self.token)
            if token is None:
                self.lost = f"another run took over the lease of {self.uri}"
                log.error("%s", self.lost)
            else:
                self.token = token

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                self.renew()
            except Exception as exc:  # a storage hiccup: the renewal before commit decides
                log.warning("could not renew the lease of %s: %s", self.uri, exc)

    def check(self) -> None:
        """Renew now and refuse to commit unless the lease is still this run's."""
        self.renew()
        if self.lost:
            raise OutputInUseError(f"{self.lost}; this run's result was not committed")

    def release(self) -> None:
        """Stop renewing and remove the lease if it is still this run's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.token is not None and not self.lost:
            try:
                self.store.delete(self.token)
            except Exception as exc:
                log.warning("could not remove the lease of %s: %s", self.uri, exc)
        self.token = None

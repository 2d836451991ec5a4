"""One run at a time per output: a lease file beside the output, kept fresh while a run lives.

A run takes the lease before it touches the output and keeps it until its commit is done.
A second run to the same output is refused while the lease is fresh; a lease whose heartbeat
is older than `ttl_s`, or whose process is gone from this machine, is taken over. Creation
and takeover are conditional writes (O_EXCL and a lock locally; If-None-Match / If-Match on
S3), so two runs never both hold it. Just before its commit a run renews the lease once
more, and commits only if that renewal still found its own lease.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from fruits_p8.errors import OutputInUseError

log = logging.getLogger(__name__)

TTL_S = 120.0
HEARTBEAT_S = 20.0
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


@dataclass(frozen=True)
class Seen:
    """A lease file as read: its text, the token of that version, when it was written."""

    text: str
    token: object
    modified: float


class LeaseStore(Protocol):
    """Conditional writes of one small file; a token names the version last seen."""

    def create(self, text: str) -> object | None: ...

    def read(self) -> Seen | None: ...

    def replace(self, text: str, token: object) -> object | None: ...

    def delete(self, token: object) -> None: ...


class LocalLeaseStore:
    """A lease file on the local filesystem: created with O_EXCL, changed under an exclusive
    lock (flock) after comparing its content, which is the token."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def create(self, text: str) -> str | None:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            return None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.write(text)
        return text

    def read(self) -> Seen | None:
        try:
            with open(self.path, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
                return Seen(text, text, os.fstat(handle.fileno()).st_mtime)
        except FileNotFoundError:
            return None

    def _locked(self, token: object, change: Callable) -> object | None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "r+", encoding="utf-8", errors="replace") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            if handle.read() != token:
                return None
            return change(handle)

    def replace(self, text: str, token: object) -> str | None:
        def write(handle) -> str:
            handle.seek(0)
            handle.truncate()
            handle.write(text)
            return text
        return self._locked(token, write)

    def delete(self, token: object) -> None:
        self._locked(token, lambda handle: self.path.unlink())


class S3LeaseStore:
    """A lease object in S3, written with If-None-Match / If-Match: its ETag is the token.
    `error` turns a failed request into the caller's one-line error."""

    def __init__(self, client, bucket: str, key: str,
                 error: Callable[[Exception], Exception]) -> None:
        self.client, self.bucket, self.key, self.error = client, bucket, key, error

    def _put(self, text: str, **condition: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            reply = self.client.put_object(Bucket=self.bucket, Key=self.key,
                                           Body=text.encode(), **condition)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in (
                    "PreconditionFailed", "412", "ConditionalRequestConflict", "NoSuchKey"):
                return None
            raise self.error(exc) from None
        except Exception as exc:
            raise self.error(exc) from None
        return reply["ETag"]

    def create(self, text: str) -> str | None:
        return self._put(text, IfNoneMatch="*")

    def read(self) -> Seen | None:
        from botocore.exceptions import ClientError

        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=self.key)
            text = reply["Body"].read().decode("utf-8", "replace")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self.error(exc) from None
        except Exception as exc:
            raise self.error(exc) from None
        return Seen(text, reply["ETag"], reply["LastModified"].timestamp())

    def replace(self, text: str, token: object) -> str | None:
        return self._put(text, IfMatch=str(token))

    def delete(self, token: object) -> None:
        current = self.read()
        if current is not None and current.token == token:
            try:
                self.client.delete_object(Bucket=self.bucket, Key=self.key)
            except Exception as exc:
                raise self.error(exc) from None


class Lease:
    """The right to write one output, held by one run and renewed in the background."""

    def __init__(self, store: LeaseStore, uri: str, run_id: str, ttl_s: float = TTL_S,
                 heartbeat_s: float = HEARTBEAT_S, clock: Callable[[], float] = time.time,
                 host: str | None = None, pid: int | None = None,
                 machine: str | None = None) -> None:
        self.store, self.uri, self.run_id = store, uri, run_id
        self.ttl_s, self.heartbeat_s, self.clock = ttl_s, heartbeat_s, clock
        self.host = host or socket.gethostname()
        self.pid = pid if pid is not None else os.getpid()
        self.machine = machine if machine is not None else this_machine()
        self.started = clock()
        self.token: object | None = None
        self.lost: str | None = None
        self._stop = threading.Event()
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
            if current.text.strip():
                raise OutputInUseError(
                    f"the lease of {self.uri} holds something fruits_p8 did not write; "
                    "remove it yourself if no run uses this output")
            if now - current.modified <= self.ttl_s:  # being written right now
                raise OutputInUseError(f"{self.uri} is being claimed by another run")
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
                    other.describe(self.clock()) if other else "an empty lease")
        return self.store.replace(text, current.token)

    def check_free(self) -> None:
        """OutputInUseError if another live run holds the lease now (nothing is taken)."""
        current = self.store.read()
        if current is not None:
            self._refuse_if_alive(current)

    def renew(self) -> None:
        """Say this run is alive; if another run took the lease, remember it was lost."""
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

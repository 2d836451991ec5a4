"""One run at a time per output: a lease file beside the output, kept fresh while a run lives.

A run takes the lease before it touches the output and keeps it until its commit is done.
A second run to the same output is refused while the lease is fresh; a lease whose heartbeat
is older than `ttl_s`, or whose process is gone from this host, is taken over. Creation and
takeover are conditional writes (O_EXCL locally; If-None-Match / If-Match on S3), so two runs
can never both believe they hold it.
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
from typing import Protocol

from fruits_p8.errors import OutputInUseError

log = logging.getLogger(__name__)

TTL_S = 120.0
HEARTBEAT_S = 20.0


@dataclass(frozen=True)
class LeaseRecord:
    """Who holds an output: run id, host, process, and when it last said it was alive."""

    run_id: str
    host: str
    pid: int
    started: float
    heartbeat: float

    def to_text(self) -> str:
        return json.dumps(asdict(self)) + "\n"

    @staticmethod
    def from_text(text: str) -> LeaseRecord | None:
        """The record in a lease file; None when it cannot be read as one."""
        try:
            data = json.loads(text)
            return LeaseRecord(str(data["run_id"]), str(data["host"]), int(data["pid"]),
                               float(data["started"]), float(data["heartbeat"]))
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self, now: float) -> str:
        return (f"run {self.run_id}, pid {self.pid} on {self.host}, started "
                f"{now - self.started:.0f} s ago, alive {now - self.heartbeat:.0f} s ago")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(record: LeaseRecord | None, now: float, ttl_s: float, host: str,
             alive: Callable[[int], bool] = pid_alive) -> bool:
    """A lease may be taken over when unreadable, silent for longer than `ttl_s`, or held by
    a process that no longer runs on this host."""
    if record is None:
        return True
    if now - record.heartbeat > ttl_s:
        return True
    return record.host == host and not alive(record.pid)


class LeaseStore(Protocol):
    """Conditional writes of one small file; a token names the version last seen."""

    def create(self, text: str) -> object | None: ...

    def read(self) -> tuple[str, object] | None: ...

    def replace(self, text: str, token: object) -> object | None: ...

    def delete(self, token: object) -> None: ...


class LocalLeaseStore:
    """A lease file on the local filesystem: created with O_EXCL, its content is the token."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def create(self, text: str) -> str | None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return text

    def read(self) -> tuple[str, str] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return text, text

    def replace(self, text: str, token: object) -> str | None:
        current = self.read()
        if current is None or current[1] != token:
            return None
        temp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, self.path)
        return text

    def delete(self, token: object) -> None:
        current = self.read()
        if current is not None and current[1] == token:
            self.path.unlink(missing_ok=True)


class S3LeaseStore:
    """A lease object in S3, written with If-None-Match / If-Match: its ETag is the token."""

    def __init__(self, client, bucket: str, key: str) -> None:
        self.client, self.bucket, self.key = client, bucket, key

    def _put(self, text: str, **condition: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            reply = self.client.put_object(Bucket=self.bucket, Key=self.key,
                                           Body=text.encode(), **condition)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in (
                    "PreconditionFailed", "412", "ConditionalRequestConflict", "NoSuchKey"):
                return None
            raise
        return reply["ETag"]

    def create(self, text: str) -> str | None:
        return self._put(text, IfNoneMatch="*")

    def read(self) -> tuple[str, str] | None:
        from botocore.exceptions import ClientError

        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return reply["Body"].read().decode("utf-8", "replace"), reply["ETag"]

    def replace(self, text: str, token: object) -> str | None:
        return self._put(text, IfMatch=str(token))

    def delete(self, token: object) -> None:
        current = self.read()
        if current is not None and current[1] == token:
            self.client.delete_object(Bucket=self.bucket, Key=self.key)


class Lease:
    """The right to write one output, held by one run and renewed in the background."""

    def __init__(self, store: LeaseStore, uri: str, run_id: str, ttl_s: float = TTL_S,
                 heartbeat_s: float = HEARTBEAT_S, clock: Callable[[], float] = time.time,
                 host: str | None = None, pid: int | None = None) -> None:
        self.store, self.uri, self.run_id = store, uri, run_id
        self.ttl_s, self.heartbeat_s, self.clock = ttl_s, heartbeat_s, clock
        self.host = host or socket.gethostname()
        self.pid = pid if pid is not None else os.getpid()
        self.started = clock()
        self.token: object | None = None
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _record(self) -> LeaseRecord:
        return LeaseRecord(self.run_id, self.host, self.pid, self.started, self.clock())

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

    def _refuse_if_alive(self, current: tuple[str, object]) -> LeaseRecord | None:
        now = self.clock()
        other = LeaseRecord.from_text(current[0])
        if not is_stale(other, now, self.ttl_s, self.host):
            raise OutputInUseError(
                f"{self.uri} is being written by another run ({other.describe(now)}); wait "
                f"for it to finish (a run that died is taken over {self.ttl_s:.0f} s after "
                "its last sign of life)")
        return other

    def _take_over(self, current: tuple[str, object], text: str) -> object | None:
        other = self._refuse_if_alive(current)
        log.warning("taking over the lease of %s from a run that is gone (%s)", self.uri,
                    other.describe(self.clock()) if other else "unreadable lease")
        return self.store.replace(text, current[1])

    def check_free(self) -> None:
        """OutputInUseError if another live run holds the lease now (nothing is taken)."""
        current = self.store.read()
        if current is not None:
            self._refuse_if_alive(current)

    def renew(self) -> None:
        """Say this run is alive; if another run took the lease, remember it was lost."""
        if self.lost or self.token is None:
            return
        try:
            token = self.store.replace(self._record().to_text(), self.token)
        except Exception as exc:  # a storage hiccup: try again at the next beat
            log.warning("could not renew the lease of %s: %s", self.uri, exc)
            return
        if token is None:
            self.lost = f"another run took over the lease of {self.uri}"
            log.error("%s", self.lost)
        else:
            self.token = token

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            self.renew()

    def check(self) -> None:
        """Refuse to commit after the lease was lost."""
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

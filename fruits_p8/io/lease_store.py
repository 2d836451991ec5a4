"""Where a lease lives: one small file written only whole and only on a condition (the
version last seen), on the local filesystem or in S3."""

from __future__ import annotations

import errno
import fcntl
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}


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
    """A lease file on the local filesystem, only ever replaced whole: each version is written
    to a temporary file beside it and synced, then linked in (creation, which fails where a
    lease exists) or renamed over it (takeover, renewal) under an exclusive lock (flock) of
    the version it replaces, whose content is the token. An interrupted write leaves the
    previous version, never an empty or cut-short file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _install(self, text: str, put: Callable[[Path], None]) -> None:
        """Write `text` to a temporary file beside the lease, sync it, and `put` it in place;
        the temporary file goes either way."""
        partial = self.path.with_name(f"{self.path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            fd = os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            put(partial)
        finally:
            partial.unlink(missing_ok=True)

    def create(self, text: str) -> str | None:
        try:
            self._install(text, lambda partial: os.link(partial, self.path))
        except FileExistsError:
            return None
        except OSError as exc:
            if exc.errno not in NO_HARD_LINKS:
                raise
            return self._create_in_place(text)
        return text

    def _create_in_place(self, text: str) -> str | None:
        """Where the filesystem has no hard links: created with O_EXCL, then written (a
        reader finds it empty for an instant, and waits GRACE_S before calling it stale)."""
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            return None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        return text

    def read(self) -> Seen | None:
        try:
            with open(self.path, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
                return Seen(text, text, os.fstat(handle.fileno()).st_mtime)
        except FileNotFoundError:
            return None

    def _is_current(self, fd: int) -> bool:
        """Whether the open lease `fd` is still the one at the path (not renamed over)."""
        try:
            now = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)

    def _locked(self, token: object, change: Callable[[], object]) -> object | None:
        """`change()` with the current version locked, if its content is still `token`."""
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_NOFOLLOW)
            except FileNotFoundError:
                return None
            with os.fdopen(fd, "r+", encoding="utf-8", errors="replace") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                if not self._is_current(handle.fileno()):
                    continue  # replaced while this waited for the lock: compare the new one
                if handle.read() != token:
                    return None
                return change()

    def replace(self, text: str, token: object) -> str | None:
        def write() -> str:
            self._install(text, lambda partial: os.replace(partial, self.path))
            return text
        return self._locked(token, write)

    def delete(self, token: object) -> None:
        self._locked(token, lambda: self.path.unlink())


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

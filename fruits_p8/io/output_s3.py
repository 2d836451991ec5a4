"""An output prefix in S3, committed by copies, _SUCCESS last (see output.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property

from fruits_p8 import __version__
from fruits_p8.errors import StorageError, UsageError, UserError
from fruits_p8.io.lease_store import S3LeaseStore
from fruits_p8.io.output_base import BACKUP, LEASE, STAGING, Output, new_run_id, sibling_pattern
from fruits_p8.io.ownership import MANIFEST, marker_text, removal_order
from fruits_p8.io.paths import Location
from fruits_p8.io.s3 import (
    FOLDER_MARKER,
    S3Settings,
    folder_marker,
    is_folder_marker,
    list_prefix,
    storage_error,
)
from fruits_p8.io.storage import Storage, storage_for
from fruits_p8.schema import MARKER, SUCCESS

log = logging.getLogger(__name__)


@dataclass
class S3Output(Output):
    """An output prefix in S3: the driver commits through boto3; the datasets move through
    Spark's S3 filesystem where it has one, else through boto3 in the tasks (`io`: as
    RunConfig.io)."""

    location: Location
    settings: S3Settings
    io: str = "auto"
    run_id: str = field(default_factory=new_run_id)
    _storage: Storage | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.bucket, self.prefix = self.location.bucket, self.location.key
        if not self.prefix:
            raise UsageError(f"--output needs a folder inside the bucket, e.g. "
                             f"{self.uri}/features")

    @property
    def uri(self) -> str:
        return self.location.text()

    def _key(self, where: str) -> str:
        """The key prefix of `where`: the output's, or one beside it (its uri + a suffix)."""
        if not where.startswith(self.uri):
            raise ValueError(f"{where} is not {self.uri} or beside it")
        return self.prefix + where[len(self.uri):]

    def location_of(self, where: str) -> Location:
        return Location(self.location.scheme, self.bucket, ()).child(self._key(where))

    @property
    def staging(self) -> str:
        return self._sibling(STAGING)

    def _sibling(self, kind: str) -> str:
        return f"{self.uri}{kind}{self.run_id}"

    def _siblings(self, kind: str) -> list[str]:
        start = f"{self.prefix}{kind}"
        pattern = sibling_pattern("", kind)
        names = {o.key[len(self.prefix):].split("/", 1)[0].removesuffix(FOLDER_MARKER)
                 for o in self._call(lambda c: list(list_prefix(c, self.bucket, start)))}
        return sorted(f"{self.uri}{name}" for name in names if pattern.fullmatch(name))

    @cached_property
    def client(self):
        """One boto3 client for the driver's requests: making one per request is slow."""
        return self.settings.client()

    def _lease_store(self) -> S3LeaseStore:
        uri = f"{self.uri}{LEASE}"
        return S3LeaseStore(self.client, self.bucket, f"{self.prefix}{LEASE}",
                            lambda exc: storage_error(exc, uri, self.settings))

    def _call(self, request, uri: str | None = None):
        """One S3 request; a failure becomes a one-line StorageError."""
        try:
            return request(self.client)
        except UserError:
            raise
        except Exception as exc:
            raise storage_error(exc, uri or self.uri, self.settings) from None

    def _keys(self, where: str) -> dict[str, str]:
        """Relative path -> key of every object under `where`."""
        prefix = self._key(where) + "/"
        objects = self._call(lambda c: list(list_prefix(c, self.bucket, prefix)), where)
        return {o.key[len(prefix):]: o.key for o in objects if o.key != prefix}

    def files(self, where: str | None = None, complete: bool = False) -> list[str]:
        return sorted(self._keys(where or self.uri))

    def _read(self, where: str, name: str) -> bytes | None:
        from botocore.exceptions import ClientError

        key = f"{self._key(where)}/{name}"
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise storage_error(exc, where, self.settings) from None

    def _delete_files(self, where: str, names: list[str], beside: bool = True) -> None:
        """As Output._delete_files: one request per rank of ownership.removal_order (a
        request deletes in any order), then the `<where>_$folder$` object EMRFS leaves
        (unless not `beside`)."""
        prefix = self._key(where)
        for rank in sorted({removal_order(name)[0] for name in names}):
            self._delete([f"{prefix}/{name}" for name in names
                          if removal_order(name)[0] == rank])
        if beside:
            self._delete([folder_marker(prefix)])

    def _copy(self, source: str, target: str, files: list[str], mark: bool = False) -> None:
        """Copy `files` from one location to another, the marker first (added with `mark`
        where the source had none: an output from before markers) and _SUCCESS last; EMRFS's
        `_$folder$` objects stay behind."""
        source_prefix, target_prefix = self._key(source), self._key(target)
        if mark and MARKER not in files:
            self._mark(target_prefix)
        for name in sorted((f for f in files if not is_folder_marker(f)),
                           key=lambda f: (f == SUCCESS, f == MANIFEST, f != MARKER, f)):
            self._call(lambda c, name=name: c.copy_object(
                Bucket=self.bucket, Key=f"{target_prefix}/{name}",
                CopySource={"Bucket": self.bucket, "Key": f"{source_prefix}/{name}"}), target)

    def _move(self, source: str, target: str, drop_source: bool = True) -> None:
        """As Output._move; the target stays marked as ours all along (a marker is added
        first where it has none, and is never deleted: the source's replaces it)."""
        old = self._keys(target)
        if old and MARKER not in old:
            self._mark(self._key(target))
        owned = self.owned(target)
        self._delete_files(target, [name for name in old if owned(name) and name != MARKER],
                           beside=False)
        self._copy(source, target, self.files(source))
        if drop_source:
            self._remove(source)

    def storage(self, spark=None) -> Storage:
        """As Output.storage, chosen once Spark is there to ask (the driver's single files
        go through boto3 either way)."""
        if self._storage is not None:
            return self._storage
        chosen = storage_for(self.location, self.settings, spark, self.io)
        if spark is not None:
            self._storage = chosen
        return chosen

    def _write_file(self, where: str, name: str, data: bytes) -> None:
        self._put(f"{self._key(where)}/{name}", data)

    def commit(self, replace: bool) -> None:
        """Copy the old objects aside, then replace them by the staged ones (_SUCCESS
        last); the copy aside and the staging are removed once the new output is whole.
        A failure puts the old output back, or keeps the staging if it cannot."""
        self._seal()
        old = self._commit_check(replace)
        aside = self._sibling(BACKUP)
        self.keep_staging = True  # until the new output is in place or the old one back
        try:
            if old:
                self._copy(self.uri, aside, old, mark=True)
            self._move(self.staging, self.uri, drop_source=False)
        except BaseException as exc:
            self._rescue(aside)
            if isinstance(exc, UserError) or not isinstance(exc, Exception):
                raise
            raise storage_error(exc, self.uri, self.settings) from None
        self.keep_staging = False
        for leftover in (self.staging, aside):
            try:
                self._remove(leftover)
            except Exception as exc:  # the next run removes it
                log.warning("could not remove %s: %s", leftover, exc)

    def _rescue(self, aside: str) -> None:
        """After a failed commit: a complete output must stay findable."""
        try:
            if self.state() == "finished":
                self.keep_staging = False
                return
            if self.state(aside) == "finished":
                self._move(aside, self.uri)
                self.keep_staging = False
                return
        except Exception as exc:
            log.warning("could not put the previous output back yet: %s", exc)
        log.error("the commit of %s was interrupted: the new output is complete at %s (and "
                  "the previous one at %s if it existed); the next run to %s puts a complete "
                  "output back in place", self.uri, self.staging, aside, self.uri)

    def _mark(self, prefix: str) -> None:
        """Put this run's marker into a location that lacks one."""
        self._put(f"{prefix}/{MARKER}", marker_text(self.run_id, __version__).encode())

    def _put(self, key: str, body: bytes) -> None:
        self._call(lambda c: c.put_object(Bucket=self.bucket, Key=key, Body=body),
                   f"s3://{self.bucket}/{key}")

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[start:start + 1000]]
            reply = self._call(lambda c, chunk=chunk: c.delete_objects(
                Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True}))
            if reply.get("Errors"):
                first = reply["Errors"][0]
                raise StorageError(f"S3 did not delete s3://{self.bucket}/{first.get('Key')}: "
                                   f"{first.get('Code')} {first.get('Message', '')}".strip())

"""Whole files, by location, from the driver or from a task: the small picklable handles a
Storage gives its executors (as petastorm's FilesystemResolver hands them a filesystem
factory). A leaf module: it imports no other storage code."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from fruits_p8.io.paths import Location
from fruits_p8.io.s3 import S3Object, S3Settings, list_objects, storage_error


class Files(Protocol):
    """Whole files by location, from the driver or a task: what executors are handed."""

    def put(self, location: Location, data: bytes) -> None: ...

    def get(self, location: Location) -> bytes: ...

    def getter(self) -> Callable[[Location], bytes]: ...


@dataclass(frozen=True)
class LocalFiles:
    """Files on the local filesystem; each appears whole (written aside, then renamed)."""

    def put(self, location: Location, data: bytes) -> None:
        target = Path(location.local)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        partial.write_bytes(data)
        os.replace(partial, target)

    def get(self, location: Location) -> bytes:
        return Path(location.local).read_bytes()

    def getter(self) -> Callable[[Location], bytes]:
        return self.get


@dataclass(frozen=True)
class S3Files:
    """Objects in S3 through boto3; a client per call site, as boto3 clients do not pickle."""

    settings: S3Settings = field(default_factory=S3Settings)

    def put(self, location: Location, data: bytes) -> None:
        self.settings.client().put_object(Bucket=location.bucket, Key=location.key, Body=data)

    def get(self, location: Location) -> bytes:
        return self.getter()(location)

    def getter(self) -> Callable[[Location], bytes]:
        """`get` with one client for many calls (a task's): making a client is slow."""
        client = self.settings.client()

        def get(location: Location) -> bytes:
            return client.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()
        return get

    def listing(self, root: Location, glob: str | None = None) -> list[S3Object]:
        """Objects under `root` whose file name matches `glob`, in key order; a failure is
        one line."""
        try:
            return sorted(list_objects(self.settings.client(), root, glob), key=lambda o: o.key)
        except Exception as exc:
            raise storage_error(exc, root, self.settings) from None


@dataclass(frozen=True)
class Folder:
    """The files of one dataset: a `parts.Sink` over any Files, picklable for the tasks."""

    files: Files
    location: Location

    def put(self, name: str, data: bytes) -> None:
        self.files.put(self.location.child(name), data)

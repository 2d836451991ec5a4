"""`fruits-p8 upload` and `fruits-p8 ls`: put a local image tree in S3 and summarise it."""

from __future__ import annotations

import logging
import mimetypes
import os
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from fruits_p8.errors import InputError, OutputExistsError, StorageError
from fruits_p8.io.listing import list_local, list_s3
from fruits_p8.io.paths import Location
from fruits_p8.io.s3 import (
    S3Settings,
    check_bucket,
    create_bucket,
    list_objects,
    md5_hex,
    storage_error,
)

log = logging.getLogger(__name__)
MULTIPART_THRESHOLD = 64 * 1024 * 1024


@dataclass
class UploadStats:
    """Counts and bytes so far; shared by the upload threads under a lock."""

    total_files: int = 0
    total_bytes: int = 0
    uploaded: int = 0
    skipped: int = 0
    failed: int = 0
    bytes_done: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def done(self) -> int:
        return self.uploaded + self.skipped + self.failed


@dataclass(frozen=True)
class LocalFile:
    path: Path
    key: str
    size: int


def local_files(root: Path, prefix: str, glob: str) -> list[LocalFile]:
    """Files under root whose name matches glob (listed as a run lists them: hidden names
    too, links to folders once), with their S3 keys under prefix."""
    if not root.is_dir():
        raise InputError(f"not a folder: {root}")
    base = prefix.strip("/")
    top = f"{Location.of_path(root.resolve()).uri()}/"
    files = []
    for listed in list_local(str(root.resolve()), glob).files:
        relative = listed.path.removeprefix(top)
        files.append(LocalFile(Path(os.fsdecode(listed.source)),
                               f"{base}/{relative}" if base else relative, listed.length))
    return files


def _unchanged(client, bucket: str, local: LocalFile, remote: tuple[int, str] | None,
               data: bytes) -> bool:
    if remote is None or remote[0] != local.size:
        return False
    etag = remote[1]
    if "-" not in etag:  # single-part upload: the ETag is the MD5
        return etag == md5_hex(data)
    head = client.head_object(Bucket=bucket, Key=local.key)
    return head.get("Metadata", {}).get("md5") == md5_hex(data)


def _check_replaceable(client, bucket: str, uri: Location, files: list[LocalFile],
                       remote: dict[str, tuple[int, str]], workers: int) -> set[str]:
    """The keys already there unchanged; OutputExistsError if a differing object was not
    put there by an upload of ours (it would be replaced)."""
    def verdict(local: LocalFile) -> str:
        if _unchanged(client, bucket, local, remote[local.key], local.path.read_bytes()):
            return "unchanged"
        head = client.head_object(Bucket=bucket, Key=local.key)
        return "ours" if "md5" in head.get("Metadata", {}) else "foreign"

    there = [f for f in files if f.key in remote]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="compare") as pool:
        verdicts = list(pool.map(verdict, there))
    unchanged = {f.key for f, v in zip(there, verdicts, strict=True) if v == "unchanged"}
    foreign = [f.key for f, v in zip(there, verdicts, strict=True) if v == "foreign"]
    if foreign:
        raise OutputExistsError(
            f"{len(foreign)} objects under {uri.text()} differ from the local files and were not "
            f"uploaded by fruits-p8 (first: s3://{bucket}/{foreign[0]}); they are never "
            "replaced: upload to another prefix, or remove them yourself")
    return unchanged


def upload_tree(
    root: Path,
    uri: Location,
    settings: S3Settings,
    glob: str = "*",
    workers: int = 16,
    create: bool = False,
    on_progress: Callable[[UploadStats], None] | None = None,
) -> UploadStats:
    """Upload every matching file, skipping objects already there unchanged (size + MD5).

    Safe to rerun after an interruption: what is complete is skipped, the rest is sent. An
    object that differs from its local file is replaced only if an upload of ours put it
    there (its `md5` metadata); if any other would be, nothing is sent (OutputExistsError).
    """
    bucket, prefix = uri.bucket, uri.key
    files = local_files(root, prefix, glob)
    if not files:
        raise InputError(f"no file matching {glob!r} under {root}")
    client = settings.client()
    try:
        if create:
            if create_bucket(client, bucket, settings):
                log.info("created bucket %s in %s (encrypted, public access blocked)",
                         bucket, settings.region)
        else:
            check_bucket(client, bucket, settings)
        remote = {o.key: (o.size, o.etag) for o in list_objects(client, uri)}
        unchanged = _check_replaceable(client, bucket, uri, files, remote, workers)
    except (StorageError, OutputExistsError):
        raise
    except Exception as exc:
        raise storage_error(exc, uri, settings) from None

    stats = UploadStats(total_files=len(files), total_bytes=sum(f.size for f in files))

    def send(local: LocalFile) -> None:
        try:
            if local.key in unchanged:
                with stats.lock:
                    stats.skipped += 1
                    stats.bytes_done += local.size
                return
            data = local.path.read_bytes()
            extra = {"Metadata": {"md5": md5_hex(data)},
                     "ContentType": mimetypes.guess_type(local.path.name)[0]
                     or "application/octet-stream"}
            if local.size >= MULTIPART_THRESHOLD:
                client.upload_file(str(local.path), bucket, local.key, ExtraArgs=extra)
            else:
                client.put_object(Bucket=bucket, Key=local.key, Body=data, **extra)
            with stats.lock:
                stats.uploaded += 1
                stats.bytes_done += local.size
        except Exception as exc:
            message = str(storage_error(exc, f"s3://{bucket}/{local.key}", settings))
            with stats.lock:
                stats.failed += 1
                stats.errors.append(f"{local.path}: {message}")

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="upload") as pool:
        futures = [pool.submit(send, f) for f in files]
        try:
            for future in as_completed(futures):
                future.result()
                if on_progress:
                    on_progress(stats)
        except KeyboardInterrupt:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    if stats.failed:
        raise StorageError(f"{stats.failed} of {stats.total_files} uploads failed (first: "
                           f"{stats.errors[0]}); rerun the same command to resume")
    return stats


@dataclass(frozen=True)
class Summary:
    """Objects per label under a location, with bytes, and how many match the glob."""

    uri: str
    per_label: dict[str, int]
    bytes_per_label: dict[str, int]
    unlabelled: int
    other_files: int

    @property
    def total(self) -> int:
        return sum(self.per_label.values()) + self.unlabelled


def summarise(uri: Location, settings: S3Settings, glob: str = "*.jpg") -> Summary:
    """Count the images per label (parent folder) under an s3:// location, as a run would
    list them."""
    client = settings.client()
    try:
        check_bucket(client, uri.bucket, settings)
        objects = list(list_objects(client, uri))
    except StorageError:
        raise
    except Exception as exc:
        raise storage_error(exc, uri, settings) from None
    listing = list_s3(uri.scheme, uri.bucket, uri.key, objects, glob)
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    unlabelled = 0
    for listed in listing.files:
        if not listed.label:
            unlabelled += 1
            continue
        counts[listed.label] += 1
        sizes[listed.label] += listed.length
    return Summary(uri.text(), dict(sorted(counts.items())), dict(sizes), unlabelled,
                   len(objects) - listing.count)

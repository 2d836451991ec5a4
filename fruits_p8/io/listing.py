"""The files a run reads, listed by the project itself: every matching file exactly once.

Spark's and Hadoop's listings skip names that start with `_` or `.`, treat the input as a
pattern and follow symbolic links into cycles. This listing does none of that: it walks the
folders on the driver, matches `--glob` against each file's name (any bytes the OS allows),
follows a symbolic link to a folder only the first time that folder is met (so no cycle and
no file twice), and records what it knows before any byte is read: the size, the time, the
label (the name of the folder that holds the file) and a problem found already (a dangling
link, something that is not a file, a file over `max_file_size`), which becomes an error row.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from fruits_p8.errors import InputError
from fruits_p8.io.glob import compile_glob

log = logging.getLogger(__name__)

MAX_DEPTH = 64  # folders below the input root: deeper is a mistake (or a loop) to report
DEFAULT_MAX_FILE_SIZE = 256 * 2**20  # bytes: far above any photo, far below a JVM's limits
PROGRESS_EVERY_S = 5.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Error kinds a listing or a read gives a file before any decoding (see features/preprocess).
MISSING, CHANGED, UNREADABLE = "missing", "changed", "unreadable"
NOT_A_FILE, TOO_BIG = "not_a_file", "file_too_large"


class CountMismatch(Exception):
    """A run's rows do not account for every listed file exactly once: a defect, not a user
    mistake; the run stops before it commits anything."""


@dataclass(frozen=True)
class ListedFile:
    """One matching file: how the datasets name it, its label, and how a task opens it."""

    path: str  # the `path` column: 'file:/a/b c.jpg', 's3://bucket/k' (unencoded)
    label: str  # the folder holding it; '' directly under the input root (no label folder)
    length: int
    modified: datetime
    source: bytes  # the raw local path, or the S3 key, as bytes
    problem: str | None = None  # an error kind known before reading
    detail: str | None = None


@dataclass(frozen=True)
class Listing:
    """What the listing found: the files to read, in path order, and what it left out."""

    root: str
    files: tuple[ListedFile, ...]
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> files not read
    links_not_followed: int = 0  # links to a folder that was listed already

    @property
    def count(self) -> int:
        return len(self.files)

    @property
    def unlabelled(self) -> int:
        """Files directly under the input root: featurized, with an empty label."""
        return sum(1 for f in self.files if not f.label)

    def limited(self, limit: int | None) -> Listing:
        """The first `limit` files in path order (the rest is neither read nor counted)."""
        if limit is None or limit >= len(self.files):
            return self
        return Listing(self.root, self.files[:limit], self.skipped, self.links_not_followed)


def display(raw: bytes) -> str:
    """A path's text as stored in the datasets: UTF-8 as it is, other bytes as \\xNN."""
    return raw.decode("utf-8", "backslashreplace")


def list_local(root: str, glob: str, max_file_size: int = DEFAULT_MAX_FILE_SIZE,
               skip_hidden: bool = False, clock: Callable[[], float] = time.monotonic
               ) -> Listing:
    """Every file under the local folder `root` whose name matches `glob`.

    `skip_hidden` leaves out files and folders whose name starts with '.', counted in
    `skipped["hidden"]`; otherwise every name counts, '_DSC1234.jpg' and '.x.jpg' included.
    """
    pattern = compile_glob(glob)
    top = os.fsencode(os.path.abspath(root))
    files: list[ListedFile] = []
    skipped: dict[str, int] = {}
    seen = {_identity(os.stat(top))}
    links = 0
    progress = _Progress(clock)
    stack: list[tuple[bytes, int, bool]] = [(top, 0, False)]
    while stack:
        folder, depth, hidden = stack.pop()
        for entry in _entries(folder):
            name = entry.name
            is_hidden = hidden or (skip_hidden and name.startswith(b"."))
            kind, info = _kind(entry)
            if kind == "dir":
                if _identity(info) in seen:
                    links += 1
                    log.warning("not following %s: it leads to a folder listed already",
                                display(entry.path))
                    continue
                seen.add(_identity(info))
                if depth + 1 > MAX_DEPTH:
                    raise InputError(f"folders nested deeper than {MAX_DEPTH} levels under "
                                     f"{display(top)} (at {display(entry.path)})")
                stack.append((entry.path, depth + 1, is_hidden))
                continue
            if not pattern.fullmatch(os.fsdecode(name)):
                continue
            if is_hidden:
                skipped["hidden"] = skipped.get("hidden", 0) + 1
                continue
            files.append(_listed(entry.path, depth, folder, kind, info, max_file_size))
            progress.tick(len(files))
    files.sort(key=lambda f: f.path)
    return Listing("file:" + display(top), tuple(files), skipped, links)


def _entries(folder: bytes) -> Iterator[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            yield from sorted(entries, key=lambda e: e.name)
    except PermissionError:
        raise InputError(f"cannot read the folder {display(folder)}: permission denied "
                         "(fix its permissions, or choose another --input)") from None
    except FileNotFoundError:  # removed while listing: its files were never there
        return


def _identity(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


def _kind(entry: os.DirEntry) -> tuple[str, os.stat_result | None]:
    """'dir', 'file', 'dangling' (a link to nothing) or 'other', following links."""
    try:
        info = entry.stat(follow_symlinks=True)
    except FileNotFoundError:
        return "dangling", None
    except OSError:
        return "other", None
    if stat.S_ISDIR(info.st_mode):
        return "dir", info
    return ("file" if stat.S_ISREG(info.st_mode) else "other"), info


def _listed(path: bytes, depth: int, folder: bytes, kind: str,
            info: os.stat_result | None, max_file_size: int) -> ListedFile:
    label = display(os.path.basename(folder)) if depth > 0 else ""
    length = info.st_size if info is not None else 0
    modified = (EPOCH + timedelta(milliseconds=info.st_mtime_ns // 1_000_000)
                if info is not None else EPOCH)
    problem = detail = None
    if kind == "dangling":
        problem, detail = MISSING, "a symbolic link to a file that does not exist"
    elif kind == "other":
        problem, detail = NOT_A_FILE, "not a regular file (a device, socket or pipe)"
    elif length > max_file_size:
        problem, detail = TOO_BIG, f"{length} bytes is over --max-file-size {max_file_size}"
    return ListedFile("file:" + display(path), label, length, modified, path, problem, detail)


class _Progress:
    """A log line every PROGRESS_EVERY_S seconds while a large tree is listed."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.next = clock() + PROGRESS_EVERY_S

    def tick(self, count: int) -> None:
        if count % 1000 == 0 and self.clock() >= self.next:
            log.info("listing: %d matching files so far", count)
            self.next = self.clock() + PROGRESS_EVERY_S


def check_unique(paths: list[str]) -> None:
    """No path twice: two names that print the same (undecodable bytes) would be one row."""
    seen: set[str] = set()
    twice = [p for p in paths if p in seen or seen.add(p)]
    if twice:
        raise InputError(f"{len(twice)} files have the same printable name as another, e.g. "
                         f"{twice[0]!r}: rename them")


def list_s3(scheme: str, bucket: str, prefix: str, objects, glob: str,
            max_file_size: int = DEFAULT_MAX_FILE_SIZE, skip_hidden: bool = False) -> Listing:
    """The objects (io.s3.S3Object, any order) under `prefix` whose name matches `glob`,
    labelled by the folder part of their key below `prefix`."""
    pattern = compile_glob(glob)
    base = prefix.strip("/")
    start = len(base) + 1 if base else 0
    files: list[ListedFile] = []
    skipped: dict[str, int] = {}
    for obj in objects:
        relative = obj.key[start:]
        parts = relative.split("/")
        if obj.key.endswith("/") or not pattern.fullmatch(parts[-1]):
            continue
        if skip_hidden and any(p.startswith(".") for p in parts):
            skipped["hidden"] = skipped.get("hidden", 0) + 1
            continue
        problem = detail = None
        if obj.size > max_file_size:
            problem, detail = TOO_BIG, f"{obj.size} bytes is over --max-file-size {max_file_size}"
        files.append(ListedFile(f"{scheme}://{bucket}/{obj.key}",
                                parts[-2] if len(parts) > 1 else "", obj.size, obj.modified,
                                obj.key.encode("utf-8"), problem, detail))
    files.sort(key=lambda f: f.path)
    root = f"{scheme}://{bucket}/{base}" if base else f"{scheme}://{bucket}"
    return Listing(root, tuple(files), skipped)

"""Where a run's results go, and how they become visible all at once, losing nothing.

Layout of an output folder:
    _FRUITS_P8  the marker: this folder was made by fruits_p8 (written first)
    features/   Parquet: path, label, features (array<float>), pca (array<float>)
    errors/     Parquet: path, label, error_kind, error (one row per unreadable file)
    model/      the fitted scaler + PCA
    run.json    the run report
    _MANIFEST   every file above, listed from the staging folder at the commit
    _SUCCESS    written last: a folder without it is not a finished run
A run holds the output's lease (`lease.py`) from start to commit. Everything is first
written to a staging location beside the target. Locally the old output is renamed aside,
the staging folder renamed into place, then the old one removed. On S3 (no rename) the old
objects are first copied aside, then replaced by the staged ones, _SUCCESS last; the copy
aside and the staging go only once the new output is complete. At every instant a complete
old or a complete new output exists, and the next run puts back whichever an interrupted
commit left aside. Only what `ownership.py` recognises as ours (the manifest's files) is ever
replaced or deleted; a removal takes _SUCCESS first and the marker last.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from fruits_p8 import __version__
from fruits_p8.errors import StorageError, UsageError, UserError
from fruits_p8.io.lease import Lease
from fruits_p8.io.lease_store import LocalLeaseStore, S3LeaseStore
from fruits_p8.io.ownership import (
    MANIFEST,
    Owned,
    check_replaceable,
    manifest_text,
    marker_text,
    output_state,
    read_manifest,
    removal_order,
    with_files,
)
from fruits_p8.io.paths import is_s3, local_path, split_s3
from fruits_p8.io.s3 import (
    FOLDER_MARKER,
    S3Settings,
    folder_marker,
    is_folder_marker,
    list_prefix,
    storage_error,
)
from fruits_p8.io.storage import LocalFiles, LocalStorage, Projection, Storage, storage_for
from fruits_p8.schema import ARROW_SCHEMAS, MARKER, RUN_JSON, SUCCESS

log = logging.getLogger(__name__)
STAGING, BACKUP, LEASE = ".incomplete-", ".replaced-", ".lease"
__all__ = ["LocalOutput", "S3Output", "open_output", "dumps_report"]


def _run_id() -> str:
    return uuid.uuid4().hex[:12]


def sibling_pattern(name: str, kind: str) -> re.Pattern:
    """Names of the `kind` locations of the output `name`, and no other: a run id follows."""
    return re.compile(re.escape(f"{name}{kind}") + r"[0-9a-f]{12}")


def _json_or_none(data: bytes | None) -> dict | None:
    try:
        return json.loads(data) if data is not None else None
    except ValueError:
        return None


class _Output:
    """What local folders and S3 prefixes share: the lease, the ownership checks, and the
    recovery of what an interrupted commit left aside. Locations are plain strings."""

    uri: str
    run_id: str
    lease: Lease | None = None
    keep_staging: bool = False

    # storage primitives, one set per storage
    def files(self, where: str | None = None, complete: bool = False) -> list[str]:
        """Relative paths of the files (and empty folders, with a trailing /) under `where`
        (the output itself by default); `complete`: all of them, even past a file that is
        not ours."""
        raise NotImplementedError

    def _read(self, where: str, name: str) -> bytes | None:
        raise NotImplementedError

    def _sibling(self, kind: str) -> str:
        """This run's location of `kind` (STAGING, BACKUP) beside the output."""
        raise NotImplementedError

    def _siblings(self, kind: str) -> list[str]:
        """Every location of `kind` beside the output, of any run."""
        raise NotImplementedError

    def _lease_store(self):
        raise NotImplementedError

    def _delete_files(self, where: str, names: list[str]) -> None:
        """Delete these files of a location, in this order, then its folders left empty."""
        raise NotImplementedError

    def _move(self, source: str, target: str) -> None:
        """Make `target` (absent or an unfinished output of ours) a complete copy of the
        finished `source`, _SUCCESS last, then drop `source`."""
        raise NotImplementedError

    @property
    def staging(self):
        raise NotImplementedError

    # shared
    def owned(self, where: str | None = None) -> Owned:
        """What the manifest of a location (the output by default) says is ours."""
        return read_manifest(self._read(where or self.uri, MANIFEST))

    def state(self, where: str | None = None, files: list[str] | None = None,
              owned: Owned | None = None) -> str:
        """ownership.output_state of a location (the output by default); a location beside
        the output is one of our staging or set-aside ones (found by their names)."""
        owned = self.owned(where) if owned is None else owned
        files = self.files(where) if files is None else files
        legacy = None
        if owned.listed is None and MARKER not in files and RUN_JSON in files:
            legacy = _json_or_none(self._read(where or self.uri, RUN_JSON))
        return output_state(files, legacy, owned, named_ours=where not in (None, self.uri))

    def new_lease(self) -> Lease:
        return Lease(self._lease_store(), self.uri, self.run_id)

    def check(self, replace: bool) -> None:
        """Refuse early: another run writing here, files not ours, or a finished output
        without `replace` (--overwrite or --incremental)."""
        if self.lease is None:
            self.new_lease().check_free()
        self._check_files(replace)

    def _check_files(self, replace: bool) -> list[str]:
        """The output's files, once check_replaceable let them be replaced."""
        owned = self.owned()
        files = self.files()
        check_replaceable(self.state(files=files, owned=owned), self.uri, replace, files, owned)
        return files

    def acquire(self, replace: bool) -> None:
        """Take the output's lease, put back what an interrupted commit left aside, remove
        dead runs' staging, and check again that the output may be replaced."""
        self.lease = self.new_lease()
        self.lease.acquire()
        try:
            self.recover()
            self.check(replace)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Give the lease back (after the commit, or when the run fails)."""
        if self.lease is not None:
            self.lease.release()
            self.lease = None

    def settle(self) -> None:
        """Before reading an output that is not finished: put in place what an interrupted
        commit left beside it, as a run would (under the lease, taken for that only)."""
        if self.lease is not None or self.state() == "finished":
            return
        if not (self._siblings(STAGING) or self._siblings(BACKUP)):
            return
        self.lease = self.new_lease()
        self.lease.acquire()
        try:
            self.recover()
        finally:
            self.release()

    def _remove(self, where: str, everything: bool = False) -> None:
        """Delete the files of a location that are ours (`everything`: this run's own
        staging, which only it wrote), _SUCCESS first and the marker last; a file that is
        not ours stays, and so does its folder."""
        files = self.files(where, complete=True)
        owned = self.owned(where)
        ours = [f for f in files if everything or owned(f)]
        self._delete_files(where, sorted(ours, key=removal_order))
        if len(ours) < len(files):
            log.warning("left %s: it holds files fruits_p8 did not write", where)

    def _seal(self) -> None:
        """Mark the staging complete: the manifest of every file staged, then _SUCCESS."""
        staged = [f for f in self.files(str(self.staging), complete=True)
                  if not is_folder_marker(f)]
        self.write_text(MANIFEST, manifest_text(self.run_id, __version__, [*staged, SUCCESS]))
        self.write_text(SUCCESS, "")

    def _listed(self, names: list[str]) -> None:
        """Add `names` to the finished output's manifest before they are written (an
        output from before the manifest has none: its names are the layout's)."""
        data = self._read(self.uri, MANIFEST)
        listed = read_manifest(data).listed
        if listed is None or set(names) <= listed:
            return
        self._write_file(self.uri, MANIFEST, with_files(data, names).encode())

    def publish(self, name: str, data: bytes) -> None:
        """Add a derived file (the HTML report) to the finished output, and to its
        manifest first."""
        self._listed([name])
        self._write_file(self.uri, name, data)

    def _write_file(self, where: str, name: str, data: bytes) -> None:
        """One whole file into a location (it appears complete or not at all)."""
        raise NotImplementedError

    def write_text(self, name: str, text: str) -> None:
        """A small file into this run's staging location."""
        self._write_file(str(self.staging), name, text.encode())

    @contextmanager
    def leased(self, replace: bool):
        """The lease for the length of a `with` block."""
        self.acquire(replace)
        try:
            yield self
        finally:
            self.release()

    def recover(self) -> None:
        """With the lease held (no other run is alive): a complete output that an
        interrupted commit left aside goes back in place, else a complete staged one is
        moved in; our other leftovers are removed, anything else is left alone."""
        current = self.state()
        for kind in (STAGING, BACKUP):
            for where in self._siblings(kind):
                state = self.state(where)
                if state == "foreign":
                    log.warning("left %s alone: it holds files fruits_p8 did not write", where)
                elif state == "finished" and current in ("absent", "unfinished"):
                    log.warning("a run was interrupted while committing %s: putting in place "
                                "the complete output it left at %s", self.uri, where)
                    self._move(where, self.uri)
                    current = "finished"
                elif state == "finished" and current == "foreign":
                    log.warning("kept %s, a complete output: %s holds files fruits_p8 did not "
                                "write", where, self.uri)
                else:
                    self._remove(where)

    def _commit_check(self, replace: bool) -> list[str]:
        """Just before replacing: the lease is still ours, the output may be replaced."""
        if self.lease is not None:
            self.lease.check()
        return self._check_files(replace)

    def begin(self) -> None:
        """A fresh staging location, marked as ours (whole, at once) before anything else
        is written."""
        self.write_text(MARKER, marker_text(self.run_id, __version__))

    def abort(self) -> None:
        """Remove what a failed run staged, unless it is the only complete result left."""
        if self.keep_staging:
            return
        try:
            self._remove(str(self.staging), everything=True)
        except Exception as exc:  # best effort: the staging has no _SUCCESS
            log.warning("could not clean %s: %s", self.staging, exc)

    def read_report(self) -> dict | None:
        """run.json of the finished output (None if there is none)."""
        if self.state() != "finished":
            return None
        return _json_or_none(self._read(self.uri, RUN_JSON))

    def read_folder(self, folder: str) -> dict[str, bytes] | None:
        """The files under `folder` of the finished output (relative to it -> bytes); None
        when the output is not finished or has no such folder."""
        files = self.files()
        if self.state(files=files) != "finished":
            return None
        inside = [f for f in files if f.startswith(folder + "/") and not f.endswith("/")]
        found = {f[len(folder) + 1:]: self._read(self.uri, f) for f in inside}
        return {name: data for name, data in found.items() if data is not None} or None

    def write_spark_ml(self, name: str, model, spark) -> None:
        """A Spark ML writable (the fitted PipelineModel) saved as folder `name` of the
        staging, through the output's Storage."""
        self.storage(spark).write_spark_ml(model, self._staged(name))

    # datasets, through the output's Storage
    def storage(self, spark=None) -> Storage:
        """How this output's datasets move (storage.storage_for)."""
        raise NotImplementedError

    def _staged(self, name: str) -> str:
        """Where dataset `name` goes in this run's staging location."""
        return f"{self.staging}/{name}"

    def write_dataset(self, name: str, df, projection: Projection | None = None) -> None:
        """Dataset `name` from `df` (+ the `projection` column), into the staging location."""
        self.storage(df.sparkSession).write_dataset(df, ARROW_SCHEMAS[name], self._staged(name),
                                                    projection)

    def write_empty(self, name: str) -> None:
        """Dataset `name` with no rows, put from the driver without a Spark job."""
        self.storage().write_empty(ARROW_SCHEMAS[name], self._staged(name))

    def read_dataset(self, spark, name: str):
        """A dataset of the finished output (None if there is none)."""
        if self.state() != "finished":
            return None
        return self.storage(spark).read_dataset(spark, f"{self.uri}/{name}", ARROW_SCHEMAS[name])

    def read_table(self, spark, name: str, columns: list[str]):
        """`columns` of a dataset of the finished output as one Arrow table on the driver."""
        return self.storage(spark).read_table(spark, f"{self.uri}/{name}", ARROW_SCHEMAS[name],
                                              columns)


@dataclass
class LocalOutput(_Output):
    """An output folder on the local filesystem, committed by rename."""

    root: Path
    run_id: str = field(default_factory=_run_id)

    @property
    def uri(self) -> str:
        return str(self.root)

    def _sibling(self, kind: str) -> str:
        return str(self.root.parent / f".{self.root.name}{kind}{self.run_id}")

    def _siblings(self, kind: str) -> list[str]:
        if not self.root.parent.is_dir():
            return []
        pattern = sibling_pattern(f".{self.root.name}", kind)
        return sorted(str(p) for p in self.root.parent.iterdir() if pattern.fullmatch(p.name))

    @property
    def staging(self) -> Path:
        return Path(self._sibling(STAGING))

    def _lease_store(self) -> LocalLeaseStore:
        return LocalLeaseStore(self.root.parent / f".{self.root.name}{LEASE}")

    def acquire(self, replace: bool) -> None:
        self.root.parent.mkdir(parents=True, exist_ok=True)
        super().acquire(replace)

    def files(self, where: str | None = None, complete: bool = False) -> list[str]:
        """As _Output.files; unless `complete`, stops at the first file not ours
        (`--output ~` lists no more); a folder it cannot list counts as not ours."""
        top = Path(where) if where else self.root
        if top.is_symlink() or (top.exists() and not top.is_dir()):
            return [f"{top.name} (not a folder)"]
        if not top.exists():
            return []
        owned = self.owned(where)
        found: list[str] = []
        checked = 0

        def unlistable(error: OSError) -> None:
            if not isinstance(error, FileNotFoundError):  # gone meanwhile: nothing to keep
                found.append(f"{Path(error.filename or top).name} (cannot be listed)")

        for folder, dirs, names in os.walk(top, onerror=unlistable):
            relative = Path(folder).relative_to(top)
            links = [d for d in dirs if (Path(folder) / d).is_symlink()]
            here = [(relative / n).as_posix() for n in names + links]
            if not names and not dirs and folder != str(top):
                here.append(relative.as_posix() + "/")
            found += here
            if not complete and not all(map(owned, found[checked:])):
                break
            checked = len(found)
        return found

    def _read(self, where: str, name: str) -> bytes | None:
        try:
            return (Path(where) / name).read_bytes()
        except OSError:
            return None

    def _delete_files(self, where: str, names: list[str]) -> None:
        top = Path(where)
        for name in names:
            if not name.endswith("/"):
                (top / name).unlink(missing_ok=True)
        folders = {top / name.rstrip("/") for name in names if name.endswith("/")}
        folders.update(parent for name in names for parent in (top / name).parents
                       if top in parent.parents)
        for folder in [*sorted(folders, key=lambda f: len(f.parts), reverse=True), top]:
            try:
                folder.rmdir()
            except FileNotFoundError:
                pass
            except OSError:  # not empty: it holds what is not ours
                continue

    def _move(self, source: str, target: str) -> None:
        if Path(target).exists():
            self._remove(target)
        os.rename(source, target)

    def begin(self) -> None:
        self.root.parent.mkdir(parents=True, exist_ok=True)
        self.staging.mkdir()
        super().begin()

    def storage(self, spark=None) -> Storage:
        return LocalStorage()

    def _staged(self, name: str) -> str:
        return str(self.staging.resolve() / name)

    def _write_file(self, where: str, name: str, data: bytes) -> None:
        LocalFiles().put(str(Path(where) / name), data)

    def commit(self, replace: bool) -> None:
        """Mark the staging folder complete and rename it into place; the old output is
        renamed aside first and removed last."""
        self._seal()
        self._commit_check(replace)
        aside = Path(self._sibling(BACKUP))
        if self.root.exists():
            self.root.rename(aside)
        try:
            self.staging.rename(self.root)
        except BaseException:
            if aside.exists() and not self.root.exists():
                aside.rename(self.root)
            raise
        if aside.exists() and self.state(str(aside)) == "foreign":  # a file came in meanwhile
            log.warning("kept the previous output at %s: files fruits_p8 did not write came "
                        "into it during the commit", aside)
        else:
            self._remove(str(aside))


@dataclass
class S3Output(_Output):
    """An output prefix in S3: the driver commits through boto3; the datasets move through
    Spark's S3 filesystem where it has one, else through boto3 in the tasks (`io`: as
    RunConfig.io)."""

    uri: str
    settings: S3Settings
    io: str = "auto"
    run_id: str = field(default_factory=_run_id)
    _storage: Storage | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.uri = self.uri.rstrip("/")
        self.bucket, self.prefix = split_s3(self.uri)
        if not self.prefix:
            raise UsageError(f"--output needs a folder inside the bucket, e.g. "
                             f"{self.uri}/features")

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
        prefix = split_s3(where)[1] + "/"
        objects = self._call(lambda c: list(list_prefix(c, self.bucket, prefix)), where)
        return {o.key[len(prefix):]: o.key for o in objects if o.key != prefix}

    def files(self, where: str | None = None, complete: bool = False) -> list[str]:
        return sorted(self._keys(where or self.uri))

    def _read(self, where: str, name: str) -> bytes | None:
        from botocore.exceptions import ClientError

        key = f"{split_s3(where)[1]}/{name}"
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise storage_error(exc, where, self.settings) from None

    def _delete_files(self, where: str, names: list[str], beside: bool = True) -> None:
        """As _Output._delete_files: one request per rank of ownership.removal_order (a
        request deletes in any order), then the `<where>_$folder$` object EMRFS leaves
        (unless not `beside`)."""
        prefix = split_s3(where)[1]
        for rank in sorted({removal_order(name)[0] for name in names}):
            self._delete([f"{prefix}/{name}" for name in names
                          if removal_order(name)[0] == rank])
        if beside:
            self._delete([folder_marker(prefix)])

    def _copy(self, source: str, target: str, files: list[str], mark: bool = False) -> None:
        """Copy `files` from one location to another, the marker first (added with `mark`
        where the source had none: an output from before markers) and _SUCCESS last; EMRFS's
        `_$folder$` objects stay behind."""
        source_prefix, target_prefix = split_s3(source)[1], split_s3(target)[1]
        if mark and MARKER not in files:
            self._mark(target_prefix)
        for name in sorted((f for f in files if not is_folder_marker(f)),
                           key=lambda f: (f == SUCCESS, f == MANIFEST, f != MARKER, f)):
            self._call(lambda c, name=name: c.copy_object(
                Bucket=self.bucket, Key=f"{target_prefix}/{name}",
                CopySource={"Bucket": self.bucket, "Key": f"{source_prefix}/{name}"}), target)

    def _move(self, source: str, target: str, drop_source: bool = True) -> None:
        """As _Output._move; the target stays marked as ours all along (a marker is added
        first where it has none, and is never deleted: the source's replaces it)."""
        old = self._keys(target)
        if old and MARKER not in old:
            self._mark(split_s3(target)[1])
        owned = self.owned(target)
        self._delete_files(target, [name for name in old if owned(name) and name != MARKER],
                           beside=False)
        self._copy(source, target, self.files(source))
        if drop_source:
            self._remove(source)

    def storage(self, spark=None) -> Storage:
        """As _Output.storage, chosen once Spark is there to ask (the driver's single files
        go through boto3 either way)."""
        if self._storage is not None:
            return self._storage
        chosen = storage_for(self.uri, self.settings, spark, self.io)
        if spark is not None:
            self._storage = chosen
        return chosen

    def _write_file(self, where: str, name: str, data: bytes) -> None:
        self._put(f"{split_s3(where)[1]}/{name}", data)

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


def open_output(uri: str, settings: S3Settings, io: str = "auto") -> LocalOutput | S3Output:
    """The output for a path or URI: LocalOutput for paths and file:, S3Output for s3://."""
    if is_s3(uri):
        return S3Output(uri, settings, io)
    return LocalOutput(Path(local_path(uri)).expanduser().absolute())


def dumps_report(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=False, default=str) + "\n"

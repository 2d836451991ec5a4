"""What local folders and S3 prefixes share as outputs: the lease, the ownership checks,
the manifest, and the recovery of what an interrupted commit left aside (see output.py)."""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextlib import contextmanager

from fruits_p8 import __version__
from fruits_p8.io.lease import Lease
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
from fruits_p8.io.paths import Location
from fruits_p8.io.s3 import is_folder_marker
from fruits_p8.io.storage import BatchTransform, Storage
from fruits_p8.schema import ARROW_SCHEMAS, MARKER, RUN_JSON, SUCCESS

log = logging.getLogger(__name__)
STAGING, BACKUP, LEASE = ".incomplete-", ".replaced-", ".lease"


def new_run_id() -> str:
    """A fresh run id: 12 hex digits, as the sibling names expect."""
    return uuid.uuid4().hex[:12]


def sibling_pattern(name: str, kind: str) -> re.Pattern:
    """Names of the `kind` locations of the output `name`, and no other: a run id follows."""
    return re.compile(re.escape(f"{name}{kind}") + r"[0-9a-f]{12}")


def json_or_none(data: bytes | None) -> dict | None:
    try:
        return json.loads(data) if data is not None else None
    except ValueError:
        return None


class Output:
    """What local folders and S3 prefixes share: the lease, the ownership checks, and the
    recovery of what an interrupted commit left aside. `where` names the output or a
    location beside it (its `uri` plus a suffix); `location_of` gives its storage Location."""

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
            legacy = json_or_none(self._read(where or self.uri, RUN_JSON))
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
        return json_or_none(self._read(self.uri, RUN_JSON))

    def read_file(self, name: str) -> bytes | None:
        """A top-level file of the finished output (None when unfinished or absent)."""
        if self.state() != "finished":
            return None
        return self._read(self.uri, name)

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

    def location_of(self, where: str) -> Location:
        """The storage location of `where` (the output, or a location beside it)."""
        raise NotImplementedError

    def _staged(self, name: str) -> Location:
        """Where dataset `name` goes in this run's staging location."""
        return self.location_of(str(self.staging)).child(name)

    def write_dataset(self, name: str, df, projection: BatchTransform | None = None) -> None:
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
        return self.storage(spark).read_dataset(spark, self.location_of(self.uri).child(name),
                                                ARROW_SCHEMAS[name])

    def read_table(self, spark, name: str, columns: list[str]):
        """`columns` of a dataset of the finished output as one Arrow table on the driver."""
        return self.storage(spark).read_table(spark, self.location_of(self.uri).child(name),
                                              ARROW_SCHEMAS[name], columns)

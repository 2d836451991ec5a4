"""An output folder on the local filesystem, committed by renames (see output.py)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from fruits_p8.io.files import LocalFiles
from fruits_p8.io.lease_store import LocalLeaseStore
from fruits_p8.io.output_base import BACKUP, LEASE, STAGING, Output, new_run_id, sibling_pattern
from fruits_p8.io.paths import Location
from fruits_p8.io.storage import LocalStorage, Storage

log = logging.getLogger(__name__)


@dataclass
class LocalOutput(Output):
    """An output folder on the local filesystem, committed by rename."""

    root: Path
    run_id: str = field(default_factory=new_run_id)

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
        """As Output.files; unless `complete`, stops at the first file not ours
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

    def location_of(self, where: str) -> Location:
        return Location.of_path(Path(where).resolve())

    def _write_file(self, where: str, name: str, data: bytes) -> None:
        LocalFiles().put(Location.of_path(Path(where) / name), data)

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

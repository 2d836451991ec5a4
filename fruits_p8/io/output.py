"""Where a run's results go, and how they become visible all at once.

Layout of an output folder:
    features/   Parquet: path, label, features (array<float>), pca (array<float>)
    errors/     Parquet: path, label, error_kind, error (one row per unreadable file)
    run.json    the run report
    _SUCCESS    written last: a folder without it is not a finished run
Locally everything is written to a hidden staging folder beside the target, then renamed
into place, so a reader never sees a half-written result.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from fruits_p8.errors import OutputExistsError

FEATURES, ERRORS, REPORT, SUCCESS = "features", "errors", "run.json", "_SUCCESS"


@dataclass
class LocalOutput:
    """An output folder on the local filesystem, committed by rename."""

    root: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def uri(self) -> str:
        return str(self.root)

    @property
    def staging(self) -> Path:
        return self.root.parent / f".{self.root.name}.incomplete-{self.run_id}"

    def check(self, overwrite: bool) -> None:
        """Refuse early if the output exists and may not be replaced."""
        if self.root.exists() and not overwrite:
            raise OutputExistsError(f"output exists: {self.root} (use --overwrite to replace it)")

    def begin(self) -> str:
        """Create the staging folder; returns the location Spark writes datasets under."""
        self.root.parent.mkdir(parents=True, exist_ok=True)
        if self.staging.exists():
            shutil.rmtree(self.staging)
        self.staging.mkdir()
        return str(self.staging.resolve())

    def write_text(self, name: str, text: str) -> None:
        (self.staging / name).write_text(text, encoding="utf-8")

    def commit(self, overwrite: bool) -> None:
        """Mark the staging folder complete and rename it into place (replacing the old one)."""
        self.write_text(SUCCESS, "")
        old = self.root.parent / f".{self.root.name}.replaced-{self.run_id}"
        if self.root.exists():
            if not overwrite:
                raise OutputExistsError(f"output appeared during the run: {self.root}")
            self.root.rename(old)
        self.staging.rename(self.root)
        if old.exists():
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        """Remove what a failed run staged."""
        shutil.rmtree(self.staging, ignore_errors=True)


def dumps_report(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=False, default=str) + "\n"

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
from pathlib import Path

from fruits_p8.errors import UsageError
from fruits_p8.io.output_base import BACKUP, LEASE, STAGING, sibling_pattern
from fruits_p8.io.output_local import LocalOutput
from fruits_p8.io.output_s3 import S3Output
from fruits_p8.io.paths import Location
from fruits_p8.io.s3 import S3Settings

__all__ = ["BACKUP", "LEASE", "STAGING", "LocalOutput", "S3Output", "dumps_report",
           "open_output", "sibling_pattern"]


def open_output(location: Location, settings: S3Settings,
                io: str = "auto") -> LocalOutput | S3Output:
    """The output at a location: LocalOutput for local folders, S3Output for s3://."""
    if location.is_s3:
        return S3Output(location, settings, io)
    if not location.is_local:
        raise UsageError(f"--output must be a local folder or an s3:// URI, got "
                         f"{location.text()}")
    return LocalOutput(Path(location.local))


def dumps_report(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=False, default=str) + "\n"

"""Which outputs the project made, and so may replace or delete: pure rules over names.

Every output and staging folder the project writes holds a marker file, MARKER, written
before anything else. A folder is ours only when it holds the marker (or is a finished
output of a version from before the marker: `_SUCCESS` and a run.json that says
`fruits_p8`) and nothing outside our layout. Anything else is a user's, and is never
replaced or deleted, whatever the flags.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from fruits_p8.errors import OutputExistsError
from fruits_p8.io.s3 import FOLDER_MARKER
from fruits_p8.schema import ERRORS, FEATURES, MARKER, MODEL_DIR, REPORT_DIR, RUN_JSON, SUCCESS

_TOP_FILES = {RUN_JSON, SUCCESS, MARKER}
_TOP_PARTIAL = re.compile(  # a top-level file written aside before its rename (a killed write)
    "|".join(r"\." + re.escape(name) + r"\.[0-9a-f]{8}\.tmp" for name in sorted(_TOP_FILES)))
_DATASET_FILE = re.compile(  # parts, markers, checksums, a writer's temporary files
    r"(part-[^/]*|_SUCCESS|\.[^/]*\.(crc|tmp)|_committed_[^/]*|_started_[^/]*|_temporary(/.*)?)")
_REPORT_FILE = re.compile(  # what `fruits-p8 report` writes, and its temporary files
    r"(index\.html|quality\.json|data_quality\.json|[A-Za-z0-9_-]+\.png|\.[^/]*\.tmp)")
_MODEL_FILE = re.compile(  # Spark ML's PipelineModel layout, and what made its features
    r"(fruits_p8\.json|\.[^/]*\.tmp|(metadata|stages/\d+_[A-Za-z]+_[0-9a-f]+"
    r"(/(metadata|data))?)(/(" + _DATASET_FILE.pattern + r"))?|stages)")
_FOLDER_FILES = {FEATURES: _DATASET_FILE, ERRORS: _DATASET_FILE, REPORT_DIR: _REPORT_FILE,
                 MODEL_DIR: _MODEL_FILE}


def in_layout(relative: str) -> bool:
    """Whether a file at `relative` (slash-separated, under the output root) is one the
    project writes: the top-level files, Parquet parts of the datasets, report files, and
    the `<folder>_$folder$` objects EMRFS adds."""
    head, slash, rest = relative.partition("/")
    if not rest:
        return (head in _FOLDER_FILES if slash  # one of our folders, empty
                else head in _TOP_FILES or bool(_TOP_PARTIAL.fullmatch(head))
                or head in {f + FOLDER_MARKER for f in _FOLDER_FILES})
    pattern = _FOLDER_FILES.get(head)
    rest = rest.removesuffix(FOLDER_MARKER).removesuffix("/")
    return pattern is not None and bool(pattern.fullmatch(rest))


def foreign_files(relatives: Iterable[str]) -> list[str]:
    """The files among `relatives` that the project does not write, sorted."""
    return sorted(r for r in relatives if not in_layout(r))


def is_legacy_report(run_json: dict | None) -> bool:
    """A run.json written by fruits_p8 before outputs carried the marker."""
    return isinstance(run_json, dict) and "fruits_p8" in run_json and "counts" in run_json


def output_state(relatives: Iterable[str], legacy_report: dict | None = None) -> str:
    """What is at an output location, from the files under it (relative paths):
    absent; foreign (anything not ours); finished (ours, with _SUCCESS); unfinished (ours,
    marked, no _SUCCESS: a killed run's). `legacy_report` is the parsed run.json, read
    only when the marker is missing."""
    files = set(relatives)
    if not files:
        return "absent"
    if foreign_files(files):
        return "foreign"
    if MARKER in files:
        return "finished" if SUCCESS in files else "unfinished"
    if SUCCESS in files and RUN_JSON in files and is_legacy_report(legacy_report):
        return "finished"
    return "foreign"


def check_replaceable(state: str, uri: str, replace: bool, files: Iterable[str] = ()) -> None:
    """Refuse to touch what is not ours (always) or a finished output (unless `replace`)."""
    if state == "foreign":
        others = foreign_files(files)
        example = f" (e.g. {others[0]})" if others else ""
        raise OutputExistsError(
            f"{uri} exists and holds files fruits_p8 did not write{example}; it is never "
            "replaced, even with --overwrite: choose another --output, or move those files "
            "away yourself")
    if state == "finished" and not replace:
        raise OutputExistsError(f"output exists: {uri} (use --overwrite to replace it)")


def marker_text(run_id: str, version: str) -> str:
    """The marker's content: who made the folder, and which run."""
    return f'{{"made_by": "fruits_p8", "version": "{version}", "run_id": "{run_id}"}}\n'

"""Which outputs the project made, and so may replace or delete: pure rules over names.

Every output and staging folder the project writes holds a marker file, MARKER, written
before anything else. At its commit a run lists its staging folder (which only it writes)
into a manifest, MANIFEST, and `fruits-p8 report` adds the files it writes. In a folder with
a manifest, exactly the files it lists are ours (and what they imply: their folders, their
temporary files, EMRFS folder objects): anything else is a user's, whatever its name. A
folder without one (an older fruits_p8's, or a staging folder before its commit) is ours
only when it holds the marker, or is a finished output of a version from before the marker
(`_SUCCESS` and a run.json that says `fruits_p8`), and every file in it has a name
fruits_p8's writers give (`in_layout`). Anything else is never replaced or deleted, whatever
the flags.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from fruits_p8.errors import OutputExistsError
from fruits_p8.io.s3 import FOLDER_MARKER
from fruits_p8.schema import ERRORS, FEATURES, MARKER, MODEL_DIR, REPORT_DIR, RUN_JSON, SUCCESS

MANIFEST = "_MANIFEST"
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{8}\.tmp")  # a file written aside
_CHECKSUM = re.compile(r"\.(?P<name>.+)\.crc")  # Hadoop's local checksum of a file
_STAGE = MODEL_DIR + r"/stages/\d+_[A-Za-z]+_[0-9a-f]+"  # one Spark ML stage
_DATASETS = rf"{FEATURES}|{ERRORS}|{_STAGE}/data"
_TEXT_DATASETS = rf"{MODEL_DIR}/metadata|{_STAGE}/metadata"
_PART = r"part-\d{5}(-[0-9a-f]+)*(-c\d{3})?"  # pyarrow's part-00000, Spark's -<uuid>-c000
_HADOOP = r"_SUCCESS|_temporary(/.+)?|_committed_[^/]+|_started_[^/]+"
_REPORT = ("index.html", "quality.json", "data_quality.json", "explained_variance.png",
           "images_per_label.png", "timings.png", "pca_scatter.png")
_LAYOUT_FILE = re.compile("|".join([
    "|".join(re.escape(name) for name in (MARKER, SUCCESS, RUN_JSON, MANIFEST)),
    rf"({_DATASETS})/({_PART}(\.(snappy|gzip|gz|zstd|lz4|brotli))?\.parquet|{_HADOOP})",
    rf"({_TEXT_DATASETS})/({_PART}(\.txt)?|{_HADOOP})",
    rf"{REPORT_DIR}/({'|'.join(re.escape(name) for name in _REPORT)})",
    rf"{MODEL_DIR}/fruits_p8\.json",
]))
_LAYOUT_FOLDER = re.compile(
    rf"{FEATURES}|{ERRORS}|{REPORT_DIR}|{MODEL_DIR}|{MODEL_DIR}/stages|{_STAGE}"
    rf"|({_DATASETS}|{_TEXT_DATASETS})(/_temporary(/.+)?)?")


def _split(relative: str) -> tuple[str, str]:
    head, _, name = relative.rpartition("/")
    return head, name


def _aside_of(relative: str) -> str | None:
    """The file a temporary or checksum file at `relative` belongs to (None: it is none)."""
    head, name = _split(relative)
    found = _TEMPORARY.fullmatch(name) or _CHECKSUM.fullmatch(name)
    if found is None:
        return None
    return f"{head}/{found['name']}" if head else found["name"]


def _folder_of(relative: str) -> str | None:
    """The folder an empty-folder entry (`x/`) or an EMRFS object (`x_$folder$`) stands for."""
    if relative.endswith("/"):
        return relative.removesuffix("/")
    if relative.endswith(FOLDER_MARKER):
        return relative.removesuffix(FOLDER_MARKER)
    return None


def in_layout(relative: str) -> bool:
    """Whether a file at `relative` (slash-separated, under the output root) has a name
    fruits_p8 gives: the top-level files, Parquet parts of the datasets and the model,
    report files, a file written aside or checksummed, our folders (empty: `x/`), and the
    `<folder>_$folder$` objects EMRFS adds."""
    folder = _folder_of(relative)
    if folder is not None:
        return bool(_LAYOUT_FOLDER.fullmatch(folder))
    aside = _aside_of(relative)
    if aside is not None:
        return in_layout(aside)
    return bool(_LAYOUT_FILE.fullmatch(relative))


@dataclass(frozen=True)
class Owned:
    """What is ours in one location: the files its manifest lists (`listed`), or, where it
    has none (None), the names fruits_p8 gives."""

    listed: frozenset[str] | None = None

    @cached_property
    def folders(self) -> frozenset[str]:
        """The folders that hold the listed files."""
        found: set[str] = set()
        for name in self.listed or ():
            head = _split(name.rstrip("/"))[0]
            while head:
                found.add(head)
                head = _split(head)[0]
        return frozenset(found)

    def __call__(self, relative: str) -> bool:
        if self.listed is None:
            return in_layout(relative)
        if relative in self.listed or relative == MANIFEST:
            return True
        folder = _folder_of(relative)
        if folder is not None:
            return folder in self.folders or f"{folder}/" in self.listed
        aside = _aside_of(relative)
        return aside is not None and (aside in self.listed or aside == MANIFEST)


def read_manifest(data: bytes | None) -> Owned:
    """What a location's manifest (its bytes; None when there is none) says is ours."""
    try:
        content = json.loads(data) if data is not None else None
    except ValueError:
        content = None
    if not (isinstance(content, dict) and content.get("made_by") == "fruits_p8"
            and isinstance(content.get("files"), list)
            and all(isinstance(name, str) for name in content["files"])):
        return Owned()
    return Owned(frozenset(content["files"]))


def manifest_text(run_id: str, version: str, files: Iterable[str]) -> str:
    """The manifest's content: who made the folder, and every file it holds but itself."""
    return json.dumps({"made_by": "fruits_p8", "version": version, "run_id": run_id,
                       "files": sorted(set(files) - {MANIFEST})}, indent=1) + "\n"


def with_files(data: bytes, files: Iterable[str]) -> str:
    """A manifest (its bytes) that also lists `files`."""
    content = json.loads(data)
    return json.dumps({**content, "files": sorted({*content["files"], *files} - {MANIFEST})},
                      indent=1) + "\n"


def foreign_files(relatives: Iterable[str], owned: Owned | None = None) -> list[str]:
    """The files among `relatives` that are not ours, sorted."""
    owned = owned or Owned()
    return sorted(r for r in relatives if not owned(r))


def removal_order(relative: str) -> tuple[int, str]:
    """_SUCCESS goes first, the manifest and the marker last: a location removed halfway
    is never taken for a finished output, and stays recognisably ours."""
    return ({SUCCESS: 0, MANIFEST: 2, MARKER: 3}.get(relative, 1), relative)


def is_legacy_report(run_json: dict | None) -> bool:
    """A run.json written by fruits_p8 before outputs carried the marker."""
    return isinstance(run_json, dict) and "fruits_p8" in run_json and "counts" in run_json


def output_state(relatives: Iterable[str], legacy_report: dict | None = None,
                 owned: Owned | None = None, named_ours: bool = False) -> str:
    """What is at an output location, from the files under it (relative paths):
    absent; foreign (anything not ours); finished (ours, with _SUCCESS); unfinished (ours,
    no _SUCCESS: a killed run's). `owned`: the location's manifest (read_manifest);
    `legacy_report`: the parsed run.json, read only when the marker is missing;
    `named_ours`: the location has a name only fruits_p8 gives (a staging folder), so files
    of our layout make it an unfinished one of ours even without the marker (a removal
    interrupted by an older fruits_p8, which removed the marker first)."""
    files = set(relatives)
    owned = owned or Owned()
    if not files:
        return "absent"
    if foreign_files(files, owned):
        return "foreign"
    if owned.listed is not None or MARKER in files:
        return "finished" if SUCCESS in files else "unfinished"
    if SUCCESS in files and RUN_JSON in files and is_legacy_report(legacy_report):
        return "finished"
    return "unfinished" if named_ours else "foreign"


def check_replaceable(state: str, uri: str, replace: bool, files: Iterable[str] = (),
                      owned: Owned | None = None) -> None:
    """Refuse to touch what is not ours (always) or a finished output (unless `replace`)."""
    if state == "foreign":
        owned = owned or Owned()
        others = foreign_files(files, owned)
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if others[3:] else "")
        example = f" ({shown})" if others else ""
        older = ("; its fruits_p8 kept no list of the files it wrote, so only the names "
                 "fruits_p8 gives count as its own" if owned.listed is None and
                 (MARKER in files or RUN_JSON in files) else "")
        raise OutputExistsError(
            f"{uri} exists and holds files fruits_p8 did not write{example}; it is never "
            f"replaced, even with --overwrite{older}: choose another --output, or move those "
            "files away yourself")
    if state == "finished" and not replace:
        raise OutputExistsError(f"output exists: {uri} (use --overwrite to replace it)")


def marker_text(run_id: str, version: str) -> str:
    """The marker's content: who made the folder, and which run."""
    return f'{{"made_by": "fruits_p8", "version": "{version}", "run_id": "{run_id}"}}\n'

"""Where an image lives and which label its folder gives it: pure string functions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):(.*)$")
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
S3_SCHEMES = ("s3", "s3a", "s3n")


@dataclass(frozen=True)
class Location:
    """A parsed path or URI: scheme ('' for a plain local path), bucket/authority and key parts."""

    scheme: str
    authority: str
    parts: tuple[str, ...]

    @property
    def is_s3(self) -> bool:
        return self.scheme in S3_SCHEMES

    @property
    def is_local(self) -> bool:
        return self.scheme in ("", "file")

    @property
    def key(self) -> str:
        return "/".join(self.parts)

    def uri(self) -> str:
        """The unencoded URI Spark's file sources show: 'file:/a/b c', 's3://bucket/k'."""
        if self.scheme in ("", "file"):
            return "file:/" + self.key
        return f"{self.scheme}://{self.authority}/{self.key}"


def parse_location(path: str) -> Location:
    """Split 'file:/a/b', 'file:///a/b', 's3://bucket/k/x.jpg' or '/a/b' into a Location.

    Percent-escapes are decoded only in URIs that hold no literal space: Spark's binaryFile
    hands out raw paths ('Apple Braeburn'), while input_file_name() and friends hand out
    encoded URIs ('Apple%20Braeburn'); a raw path is never decoded twice.
    """
    match = _SCHEME.match(path)
    scheme, rest = (match.group(1).lower(), match.group(2)) if match else ("", path)
    if len(scheme) == 1:  # a Windows drive letter, not a scheme
        scheme, rest = "", path
    if scheme and " " not in rest and _ESCAPE.search(rest):
        rest = unquote(rest)
    authority = ""
    if rest.startswith("//"):
        authority, _, rest = rest[2:].partition("/")
    parts = tuple(p for p in rest.split("/") if p not in ("", "."))
    return Location(scheme=scheme, authority=authority, parts=parts)


def canonical_uri(path: str) -> str:
    """One spelling per file, whichever form (encoded or not, file:/ or file:///) it came in."""
    return parse_location(path).uri()


def label_from_path(path: str, root: str | None = None) -> str | None:
    """The label of an image is the name of the folder that holds it.

    Returns None when the file has no folder of its own under `root` (a file directly in
    the input root has no label).
    """
    loc = parse_location(path)
    if len(loc.parts) < 2:
        return None
    if root is not None:
        root_loc = parse_location(root)
        if loc.parts[: len(root_loc.parts)] == root_loc.parts and len(loc.parts) - len(
            root_loc.parts
        ) < 2:
            return None
    return loc.parts[-2]


def is_s3(path: str) -> bool:
    """True for s3://, s3a:// and s3n:// URIs."""
    return parse_location(path).is_s3


def split_s3(uri: str) -> tuple[str, str]:
    """'s3://bucket/a/b' -> ('bucket', 'a/b'); the key has no leading or trailing slash."""
    loc = parse_location(uri)
    if not loc.is_s3 or not loc.authority:
        raise ValueError(f"not an s3:// URI: {uri}")
    return loc.authority, loc.key


def local_path(path: str) -> str:
    """A plain filesystem path for a local path or a file: URI."""
    loc = parse_location(path)
    if not loc.is_local:
        raise ValueError(f"not a local path: {path}")
    if loc.scheme == "":
        return path
    return "/" + loc.key

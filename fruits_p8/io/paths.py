"""Where an image lives and which label its folder gives it: pure string functions."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import unquote

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):(.*)$", re.DOTALL)
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

    @property
    def bucket(self) -> str:
        """The bucket of an s3:// location."""
        if not self.is_s3 or not self.authority:
            raise ValueError(f"not an s3:// URI: {self.text()}")
        return self.authority

    @property
    def name(self) -> str:
        return self.parts[-1] if self.parts else ""

    @property
    def parent(self) -> Location:
        return Location(self.scheme, self.authority, self.parts[:-1])

    @property
    def local(self) -> str:
        """The filesystem path of a local location."""
        if not self.is_local:
            raise ValueError(f"not a local path: {self.text()}")
        return "/" + self.key

    def uri(self) -> str:
        """The unencoded URI Spark's file sources show: 'file:/a/b c', 's3://bucket/k'."""
        if self.scheme in ("", "file"):
            return "file:/" + self.key
        return f"{self.scheme}://{self.authority}/{self.key}"

    def text(self) -> str:
        """How a person would write it: '/a/b c' locally, 's3://bucket/k' elsewhere."""
        if self.is_local:
            return self.local
        return f"{self.scheme}://{self.authority}" + (f"/{self.key}" if self.parts else "")

    def child(self, *names: str) -> Location:
        """A location below this one: names are raw (a '%20' in them stays as it is)."""
        extra = tuple(p for name in names for p in name.split("/") if p not in ("", "."))
        return Location(self.scheme, self.authority, self.parts + extra)

    def sibling(self, name: str) -> Location:
        """The location named `name` beside this one (in the same folder or prefix)."""
        return Location(self.scheme, self.authority, self.parts[:-1] + (name,))

    def within(self, other: Location) -> bool:
        """Whether this location is `other` or lies inside it (s3, s3a and s3n: one store)."""
        if self.is_local != other.is_local or self.is_s3 != other.is_s3:
            return False
        if self.authority != other.authority:
            return False
        if not self.is_local and not self.is_s3 and self.scheme != other.scheme:
            return False
        return self.parts[: len(other.parts)] == other.parts

    @staticmethod
    def raw(path: str) -> Location:
        """A location as a dataset stores it (the `path` column): no decoding."""
        return parse_location(path, decode=False)

    @staticmethod
    def of_path(path: os.PathLike | str) -> Location:
        """The location of an absolute local path, taken as it is (no decoding)."""
        return Location("", "", tuple(p for p in str(path).split("/") if p not in ("", ".")))

    @staticmethod
    def parse(text: str) -> Location:
        """A location a person typed: '/data/Test', '~/x' (expanded), 'file:///a', 's3://b/k'
        ('%20' decoded in a URI with a scheme and no literal space)."""
        loc = parse_location(text)
        if loc.scheme == "" and text.startswith("~"):
            loc = parse_location(os.path.expanduser(text))
        if loc.scheme == "" and not text.startswith("/") and not text.startswith("~"):
            loc = parse_location(os.path.abspath(text))
        return loc


def parse_location(path: str, decode: bool | None = None) -> Location:
    """Split 'file:/a/b', 'file:///a/b', 's3://bucket/k/x.jpg' or '/a/b' into a Location.

    decode=False: `path` is a raw spelling, as Spark's binaryFile `path` column and S3 keys
    give it ('Apple/a%20b.jpg' is a file whose name holds '%20'). decode=True: an encoded
    URI. None (typed text): percent-escapes are decoded only in a URI with a scheme and no
    literal space.
    """
    match = _SCHEME.match(path)
    scheme, rest = (match.group(1).lower(), match.group(2)) if match else ("", path)
    if len(scheme) == 1:  # a Windows drive letter, not a scheme
        scheme, rest = "", path
    if decode is None:
        decode = bool(scheme) and " " not in rest and bool(_ESCAPE.search(rest))
    if decode:
        rest = unquote(rest)
    authority = ""
    if rest.startswith("//"):
        authority, _, rest = rest[2:].partition("/")
    parts = tuple(p for p in rest.split("/") if p not in ("", "."))
    return Location(scheme=scheme, authority=authority, parts=parts)


def label_from_path(path: str, root: str | None = None) -> str | None:
    """The label of an image is the name of the folder that holds it.

    `path` and `root` are raw spellings (Spark's `path` column, an S3 key): a folder named
    'x%41' is labelled 'x%41'. Returns None when the file has no folder of its own under
    `root` (a file directly in the input root has no label).

    >>> from fruits_p8 import label_from_path
    >>> label_from_path("s3://fruits/Test/Apple Braeburn/r_3_100.jpg")
    'Apple Braeburn'
    >>> label_from_path("/data/Test/3_100.jpg", root="/data/Test") is None
    True
    """
    loc = parse_location(path, decode=False)
    if len(loc.parts) < 2:
        return None
    if root is not None:
        root_loc = parse_location(root, decode=False)
        if loc.parts[: len(root_loc.parts)] == root_loc.parts and len(loc.parts) - len(
            root_loc.parts
        ) < 2:
            return None
    return loc.parts[-2]


def folders_of(path: str) -> tuple[str, ...]:
    """The folders holding a file, outermost first, as spelled (a raw path: no decoding)."""
    return parse_location(path, decode=False).parts[:-1]

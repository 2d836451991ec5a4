"""`--glob`: which file names a run reads, matched by the project itself, never by Hadoop.

The syntax is Hadoop's pathGlobFilter's, which earlier versions passed it to: `*`, `?`,
`[abc]`, `[a-z]`, `[!a]` or `[^a]`, `{jpg,png}` (nested), and `\\` to take the next character
literally. Matching is case-sensitive and applies to a file's name only, not its folders.
"""

from __future__ import annotations

import functools
import re

from fruits_p8.errors import UsageError


class GlobError(UsageError):
    """A --glob that is not a valid pattern."""


@functools.lru_cache(maxsize=64)
def compile_glob(glob: str) -> re.Pattern[str]:
    """The regular expression a file name must match in full.

    >>> from fruits_p8.io.glob import compile_glob
    >>> bool(compile_glob("*.{jpg,jpeg}").fullmatch("r_3_100.jpeg"))
    True
    >>> compile_glob("[")
    Traceback (most recent call last):
    fruits_p8.io.glob.GlobError: --glob '[': '[' is never closed
    """
    if not glob:
        raise GlobError("--glob must not be empty")
    if "/" in glob:
        raise GlobError(f"--glob {glob!r}: it matches file names only, so it holds no '/'")
    regex, end = _sequence(glob, 0, in_braces=False)
    if end != len(glob):
        raise GlobError(f"--glob {glob!r}: '}}' at position {end} closes no '{{'")
    return re.compile(regex, re.DOTALL)


def name_matches(name: str, glob: str) -> bool:
    """Whether a file name matches `glob` (case-sensitive)."""
    return compile_glob(glob).fullmatch(name) is not None


def _sequence(glob: str, i: int, in_braces: bool) -> tuple[str, int]:
    """Translate from `i` until the end, or (inside braces) an unescaped ',' or '}'."""
    out = []
    while i < len(glob):
        char = glob[i]
        if in_braces and char in ",}":
            return "".join(out), i
        if char == "\\":
            if i + 1 == len(glob):
                raise GlobError(f"--glob {glob!r}: a '\\' at the end escapes nothing")
            out.append(re.escape(glob[i + 1]))
            i += 2
        elif char == "*":
            out.append(".*")
            i += 1
        elif char == "?":
            out.append(".")
            i += 1
        elif char == "[":
            part, i = _bracket(glob, i)
            out.append(part)
        elif char == "{":
            part, i = _braces(glob, i)
            out.append(part)
        elif char == "}" and not in_braces:
            return "".join(out), i
        else:
            out.append(re.escape(char))
            i += 1
    if in_braces:
        raise GlobError(f"--glob {glob!r}: '{{' is never closed")
    return "".join(out), i


def _braces(glob: str, start: int) -> tuple[str, int]:
    options = []
    i = start + 1
    while True:
        part, i = _sequence(glob, i, in_braces=True)
        options.append(part)
        if glob[i] == "}":
            return "(?:" + "|".join(options) + ")", i + 1
        i += 1  # past ','


def _bracket(glob: str, start: int) -> tuple[str, int]:
    i = start + 1
    negate = i < len(glob) and glob[i] in "!^"
    if negate:
        i += 1
    members = []
    first = True
    while i < len(glob) and (glob[i] != "]" or first):
        char = glob[i]
        if char == "\\" and i + 1 < len(glob):
            char = glob[i + 1]
            i += 1
        if i + 2 < len(glob) and glob[i + 1] == "-" and glob[i + 2] != "]":
            low, high = char, glob[i + 2]
            if low > high:
                raise GlobError(f"--glob {glob!r}: range {low}-{high} is empty")
            members.append(f"{re.escape(low)}-{re.escape(high)}")
            i += 3
        else:
            members.append(re.escape(char))
            i += 1
        first = False
    if i >= len(glob):
        raise GlobError(f"--glob {glob!r}: '[' is never closed")
    return ("[^" if negate else "[") + "".join(members) + "]", i + 1

"""Validation by video blocks: Fruits 360 photos are frames of a rotating fruit's video, so
neighbouring frames are near-copies and a random split would score memory, not recognition."""

from __future__ import annotations

import re
import zlib

import numpy as np

BLOCK = 20  # frames per block: whole blocks go to one side
_NAME = re.compile(r"(?:(r\d?)_)?(\d+)_100\.jpg")


def video_frame(path: str) -> tuple[str, int] | None:
    """(rotation sequence, frame) of a Fruits 360 file name; None for other names.

    >>> video_frame("s3://b/Test/Kiwi/r2_37_100.jpg"), video_frame("IMG_0001.jpg")
    (('r2', 37), None)
    """
    match = _NAME.fullmatch(path.rsplit("/", 1)[-1])
    return (match.group(1) or "", int(match.group(2))) if match else None


def in_validation(path: str, block: int = BLOCK) -> bool:
    """Odd blocks of frames validate, even ones train; a name that is not a video frame
    goes by a hash of its path (one in five validates)."""
    frame = video_frame(path)
    if frame is None:
        return zlib.crc32(path.encode("utf-8", "surrogateescape")) % 5 == 0
    return (frame[1] // block) % 2 == 1


def validation_mask(paths: list[str], block: int = BLOCK) -> np.ndarray:
    """in_validation of each path, as a boolean array."""
    return np.array([in_validation(p, block) for p in paths], dtype=bool)

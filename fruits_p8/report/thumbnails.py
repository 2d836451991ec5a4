"""Small JPEG thumbnails of the images the report shows (suspects, their neighbours,
near-duplicates), read from where the images live: a person decides faster by looking."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from fruits_p8.io.paths import Location
from fruits_p8.io.s3 import S3Settings
from fruits_p8.io.storage import storage_for

log = logging.getLogger(__name__)
SIZE = 72
FETCH_THREADS = 8


def thumbnail(data: bytes, size: int = SIZE) -> bytes | None:
    """The image shrunk to fit size×size, as JPEG; None when it cannot be decoded."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((size, size))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="JPEG", quality=85)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return buffer.getvalue()


def _reader(settings: S3Settings | None) -> Callable[[str], bytes | None]:
    """Reads an image by path through the storage its URI names, one getter (and so one S3
    client) per kind of location; None where fruits_p8 cannot read single files, or for
    remote paths without `settings` (no client made from whatever credentials are around)."""
    getters: dict[str, Callable[[str], bytes] | None] = {}
    lock = threading.Lock()

    def read(path: str) -> bytes | None:
        location = Location.raw(path)
        scheme = "file" if location.is_local else location.scheme
        with lock:
            if scheme not in getters:
                files = (storage_for(location, settings).files
                         if settings is not None or scheme == "file" else None)
                getters[scheme] = None if files is None else files.getter()
        get = getters[scheme]
        return None if get is None else get(location)

    return read


def thumbnails(paths: Iterable[str], settings: S3Settings | None = None,
               size: int = SIZE) -> dict[str, bytes]:
    """Thumbnails of the readable images among `paths` (local or s3://); an image that is
    gone or unreadable is left out (the page shows its path instead)."""
    read = _reader(settings)

    def one(path: str) -> tuple[str, bytes | None]:
        try:
            data = read(path)
        except Exception as exc:  # a missing picture must not stop the report
            log.debug("no thumbnail for %s: %s", path, exc)
            return path, None
        return path, None if data is None else thumbnail(data, size)

    with ThreadPoolExecutor(FETCH_THREADS) as pool:
        found = dict(pool.map(one, sorted(set(paths))))
    return {path: data for path, data in found.items() if data is not None}

"""Read image files into a DataFrame (path, label, content, length, modificationTime, ...).

The files are listed by the project (io/listing.py), not by Hadoop, and read by the tasks
(io/reading.py): every matching file comes out as exactly one row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fruits_p8.errors import InputError
from fruits_p8.io.listing import DEFAULT_MAX_FILE_SIZE, Listing
from fruits_p8.io.paths import parse_location
from fruits_p8.io.reading import listing_frame
from fruits_p8.io.s3 import S3Settings, check_bucket
from fruits_p8.schema import IMAGE_DDL


def resolve_input(path: str, settings: S3Settings | None = None) -> str:
    """A local input as an absolute path (checked to exist); an s3:// bucket is checked to
    exist when settings are given."""
    loc = parse_location(path)
    if loc.is_s3:
        if not loc.authority:
            raise InputError(f"no bucket in {path}")
        if settings is not None:
            check_bucket(settings.client(), loc.authority, settings)
        return path.rstrip("/")
    if not loc.is_local:
        raise InputError(f"--input must be a local folder or an s3:// URI, got {path}")
    local = Path(path if loc.scheme == "" else "/" + loc.key).expanduser()
    if not local.exists():
        raise InputError(f"input not found: {path}")
    if not local.is_dir():
        raise InputError(f"input must be a folder of images, got a file: {path}")
    return str(local.resolve())


@dataclass(frozen=True)
class ImageFiles:
    """The images of a run: a lazy frame of IMAGE_COLUMNS, and the listing it reads."""

    frame: object
    listing: Listing

    @property
    def count(self) -> int:
        return self.listing.count


def read_images(spark, root: str, glob: str = "*.jpg", limit: int | None = None,
                storage=None, max_file_size: int = DEFAULT_MAX_FILE_SIZE,
                skip_hidden: bool = False) -> ImageFiles:
    """Every file under `root` (recursively, hidden names too) whose name matches `glob`,
    with its label, read through `storage` (storage.storage_for(root, spark=spark) by
    default). With `limit`, the first files in path order are kept. A file that cannot be
    read is a row with `read_error` set, never a missing row.

    >>> from fruits_p8 import EMBEDDED_SAMPLE, read_images
    >>> images = read_images(spark, str(EMBEDDED_SAMPLE))
    >>> images.count, images.frame.select("label").distinct().count()
    (360, 18)
    """
    if storage is None:
        from fruits_p8.io.storage import storage_for

        storage = storage_for(root, spark=spark)
    listing = storage.list_images(root, glob, max_file_size, skip_hidden).limited(limit)
    reader = storage.reader(root)
    frame = listing_frame(spark, listing).mapInArrow(reader.batches, IMAGE_DDL)
    return ImageFiles(frame, listing)

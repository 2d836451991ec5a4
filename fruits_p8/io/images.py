"""Read image files into a DataFrame (path, label, content, length, modificationTime, ...).

The files are listed by the project (io/listing.py), not by Hadoop, and read by the tasks
(io/reading.py): every matching file comes out as exactly one row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fruits_p8.errors import InputError
from fruits_p8.io.listing import DEFAULT_MAX_FILE_SIZE, Listing
from fruits_p8.io.paths import Location
from fruits_p8.io.reading import listing_frame
from fruits_p8.io.s3 import S3Settings, check_bucket
from fruits_p8.io.storage import storage_for
from fruits_p8.schema import IMAGE_DDL


def resolve_input(text: str, settings: S3Settings | None = None) -> Location:
    """The input a person typed, parsed once: a local folder (absolute, checked to exist) or
    an s3:// prefix (its bucket checked to exist when settings are given)."""
    location = Location.parse(text)
    if location.is_s3:
        if not location.authority:
            raise InputError(f"no bucket in {text}")
        if settings is not None:
            check_bucket(settings.client(), location.authority, settings)
        return location
    if not location.is_local:
        raise InputError(f"--input must be a local folder or an s3:// URI, got {text}")
    local = Path(location.local)
    if not local.exists():
        raise InputError(f"input not found: {text}")
    if not local.is_dir():
        raise InputError(f"input must be a folder of images, got a file: {text}")
    return Location.parse(str(local.resolve()))


@dataclass(frozen=True)
class ImageFiles:
    """The images of a run: a lazy frame of IMAGE_COLUMNS, and the listing it reads."""

    frame: object
    listing: Listing

    @property
    def count(self) -> int:
        return self.listing.count


def read_images(spark, root: str, glob: str = "*.jpg", limit: int | None = None,
                settings: S3Settings | None = None, max_file_size: int = DEFAULT_MAX_FILE_SIZE,
                skip_hidden: bool = False) -> ImageFiles:
    """Every file under `root` (a folder or s3:// prefix, recursively, hidden names too)
    whose name matches `glob`, with its label, read through the storage `root` calls for
    (`spark`'s S3 filesystem where it has one; `settings` say where S3 is). With `limit`,
    the first files in path order are kept. A file that cannot be read is a row with
    `read_error` set, never a missing row.

    >>> from fruits_p8 import EMBEDDED_SAMPLE, read_images
    >>> images = read_images(spark, str(EMBEDDED_SAMPLE))
    >>> images.count, images.frame.select("label").distinct().count()
    (360, 18)
    """
    location = resolve_input(root, settings)
    storage = storage_for(location, settings, spark)
    listing = storage.list_images(location, glob, max_file_size, skip_hidden).limited(limit)
    reader = storage.reader(location)
    frame = listing_frame(spark, listing).mapInArrow(reader.batches, IMAGE_DDL)
    return ImageFiles(frame, listing)

"""`fruits-p8 upload` and `ls`: images into S3, and what is there."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fruits_p8.commands.common import Formatter, add_s3_options, positive_int, s3_settings
from fruits_p8.errors import UsageError


def add_commands(sub) -> None:
    """upload and ls."""
    upload = sub.add_parser(
        "upload", formatter_class=Formatter,
        help="upload a local image tree to s3:// (parallel, resumable, skips unchanged)",
        description="Upload every file under LOCAL_DIR to s3://BUCKET/PREFIX, keeping the "
        "folder layout. Objects already there with the same size and MD5 are skipped, so a "
        "rerun after an interruption sends only what is missing.",
    )
    upload.add_argument("local_dir", type=Path, metavar="LOCAL_DIR")
    upload.add_argument("uri", metavar="S3_URI", help="s3://bucket/prefix")
    upload.add_argument("--create-bucket", action="store_true",
                        help="create the bucket (in --region, encrypted, public access "
                        "blocked) if it does not exist")
    upload.add_argument("--glob", default="*", help="only files whose name matches")
    upload.add_argument("--workers", type=positive_int, default=16,
                        help="parallel uploads")
    add_s3_options(upload)
    upload.set_defaults(handler=cmd_upload)

    ls = sub.add_parser("ls", formatter_class=Formatter,
                        help="summarise the images under an s3:// URI (per label)")
    ls.add_argument("uri", metavar="S3_URI", help="s3://bucket/prefix")
    ls.add_argument("--glob", default="*.jpg", help="what counts as an image")
    add_s3_options(ls)
    ls.set_defaults(handler=cmd_ls)


def _s3_uri(text: str):
    """The S3 location a person typed, parsed once (io.paths.Location)."""
    from fruits_p8.io.paths import Location

    location = Location.parse(text)
    if not location.is_s3 or not location.authority:
        raise UsageError(f"expected an s3://bucket/prefix URI, got {text!r}")
    return location


def cmd_upload(args: argparse.Namespace) -> int:
    from fruits_p8.io.upload import upload_tree
    from fruits_p8.progress import CountProgress

    uri = _s3_uri(args.uri)
    console = getattr(args, "console", sys.stderr)
    bar = CountProgress(console, interactive=console.isatty())

    def show(stats) -> None:
        bar.update(stats.done, stats.total_files, stats.bytes_done, stats.total_bytes,
                   f"{stats.skipped} unchanged")

    stats = upload_tree(args.local_dir, uri, s3_settings(args), glob=args.glob,
                        workers=args.workers, create=args.create_bucket, on_progress=show)
    print(f"uploaded {stats.uploaded} files, {stats.skipped} already there unchanged "
          f"({stats.total_files} under {args.local_dir}) to {uri.text()}")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    from fruits_p8.io.upload import summarise
    from fruits_p8.progress import human_bytes

    summary = summarise(_s3_uri(args.uri), s3_settings(args), args.glob)
    width = max([len(label) for label in summary.per_label] + [5])
    for label, count in summary.per_label.items():
        print(f"{label:<{width}}  {count:>7}  {human_bytes(summary.bytes_per_label[label]):>9}")
    print(f"{summary.total} images in {len(summary.per_label)} labels under {summary.uri}"
          + (f"; {summary.unlabelled} directly under the prefix (no label)"
             if summary.unlabelled else "")
          + (f"; {summary.other_files} other files" if summary.other_files else ""))
    return 0

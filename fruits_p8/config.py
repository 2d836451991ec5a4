"""The one configuration object of a run, validated up front and passed explicitly, and the
defaults it starts from, among them the real photos shipped with the package:

>>> from fruits_p8 import EMBEDDED_SAMPLE
>>> len(list(EMBEDDED_SAMPLE.iterdir())), len(list(EMBEDDED_SAMPLE.glob("*/*.jpg")))
(18, 360)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from fruits_p8.errors import UsageError
from fruits_p8.features.precision import DEFAULT_PRECISION, PRECISIONS
from fruits_p8.io.glob import compile_glob
from fruits_p8.io.listing import DEFAULT_MAX_FILE_SIZE
from fruits_p8.io.s3 import S3Settings
from fruits_p8.schema import DEFAULT_REGION, IO_MODES

DEFAULT_K = 200
DEFAULT_BACKBONE = "efficientnet_lite0"
DEFAULT_BATCH_SIZE = 64
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 32, 1024  # the CNN input sides --image-size accepts
MAX_POINTS = 2000  # images drawn in the report's PCA scatter: enough to see the clusters
# The real photos shipped inside the package: `fruits-p8 run`'s input when none is given.
EMBEDDED_SAMPLE = Path(__file__).parent / "resources" / "fruits-360-sample" / "Test"


def default_cache_dir(environ: Mapping[str, str]) -> Path:
    """Where converted weights and other reusable files live ($FRUITS_P8_CACHE or XDG).

    >>> from fruits_p8 import default_cache_dir
    >>> default_cache_dir({"FRUITS_P8_CACHE": "/data/cache"}).as_posix()
    '/data/cache'
    >>> default_cache_dir({"HOME": "/home/ana"}).as_posix()
    '/home/ana/.cache/fruits_p8'
    """
    if environ.get("FRUITS_P8_CACHE"):
        return Path(environ["FRUITS_P8_CACHE"]).expanduser()
    base = environ.get("XDG_CACHE_HOME") or os.path.join(environ.get("HOME", "."), ".cache")
    return Path(base).expanduser() / "fruits_p8"


@dataclass(frozen=True)
class RunConfig:
    """Everything a pipeline run depends on; nothing is read from the environment later.

    `fitted`: the folder of an earlier run whose standardise + PCA this run applies instead
    of fitting its own (k is then the model's: give k=None); `refit`: with `incremental`,
    fit anew instead of keeping the previous output's basis.

    >>> from fruits_p8 import RunConfig
    >>> RunConfig(input="photos", output="features", k=None, variance=0.95).variance
    0.95
    >>> RunConfig(input="photos", output="features", k=0)
    Traceback (most recent call last):
    fruits_p8.errors.UsageError: --k must be a positive integer, got 0
    """

    input: str
    output: str
    glob: str = "*.jpg"
    backbone: str = DEFAULT_BACKBONE
    weights: str = "auto"
    k: int | None = DEFAULT_K
    variance: float | None = None
    pca_solver: str = "gram"
    batch_size: int = DEFAULT_BATCH_SIZE
    precision: str = DEFAULT_PRECISION
    partitions: int | None = None
    limit: int | None = None
    master: str | None = None
    threads_per_task: int | None = None
    overwrite: bool = False
    incremental: bool = False
    fitted: str | None = None
    refit: bool = False
    seed: int = 0
    cache_dir: Path = field(default_factory=lambda: default_cache_dir(os.environ))
    endpoint_url: str | None = None
    region: str = DEFAULT_REGION
    io: str = "auto"
    spark_conf: Mapping[str, str] = field(default_factory=dict)
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    skip_hidden: bool = False
    image_size: int | None = None

    def __post_init__(self) -> None:
        problems = list(_problems(self))
        if problems:
            raise UsageError(problems[0])

    def s3_settings(self) -> S3Settings:
        """Where this run's S3 is (region, endpoint): credentials come from boto3's chain."""
        return S3Settings(region=self.region, endpoint_url=self.endpoint_url)

    def with_(self, **changes: object) -> RunConfig:
        """A copy with some fields changed (and validated again)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly view for the run report."""
        data = asdict(self)
        data["cache_dir"] = str(self.cache_dir)
        data["spark_conf"] = dict(self.spark_conf)
        return data


def _problems(c: RunConfig):
    if not c.input:
        yield "--input must not be empty"
    if not c.output:
        yield "--output must not be empty"
    if c.k is not None and c.variance is not None:
        yield "give either --k or --variance, not both"
    if c.k is None and c.variance is None and c.fitted is None:
        yield "give --k or --variance"
    if c.refit and not c.incremental:
        yield "--refit goes with --incremental (a run without it always fits anew)"
    if c.refit and c.fitted is not None:
        yield "give either --refit or --fitted, not both"
    if c.k is not None and c.k < 1:
        yield f"--k must be a positive integer, got {c.k}"
    if c.variance is not None and not 0.0 < c.variance <= 1.0:
        yield f"--variance must be in (0, 1], got {c.variance}"
    if c.batch_size < 1:
        yield f"--batch-size must be a positive integer, got {c.batch_size}"
    if c.precision not in PRECISIONS:
        yield (f"--precision must be {', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]}, "
               f"got {c.precision!r}")
    if c.partitions is not None and c.partitions < 1:
        yield f"--partitions must be a positive integer, got {c.partitions}"
    if c.limit is not None and c.limit < 1:
        yield f"--limit must be a positive integer, got {c.limit}"
    if c.threads_per_task is not None and c.threads_per_task < 1:
        yield f"--threads-per-task must be a positive integer, got {c.threads_per_task}"
    if c.pca_solver not in ("gram", "spark"):
        yield f"--pca-solver must be gram or spark, got {c.pca_solver!r}"
    if c.io not in IO_MODES:
        yield f"--io must be {', '.join(IO_MODES[:-1])} or {IO_MODES[-1]}, got {c.io!r}"
    if c.image_size is not None and not MIN_IMAGE_SIZE <= c.image_size <= MAX_IMAGE_SIZE:
        yield (f"--image-size must be between {MIN_IMAGE_SIZE} and {MAX_IMAGE_SIZE} pixels, "
               f"got {c.image_size}")
    if c.max_file_size < 1:
        yield f"--max-file-size must be a positive number of bytes, got {c.max_file_size}"
    try:
        compile_glob(c.glob)
    except UsageError as exc:
        yield str(exc)

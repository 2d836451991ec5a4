"""Find and read the fitted model of a finished output, locally or in S3, without Spark."""

from __future__ import annotations

from fruits_p8.errors import FittedModelError
from fruits_p8.io.output import open_output
from fruits_p8.io.paths import parse_location
from fruits_p8.io.s3 import S3Settings
from fruits_p8.reduce.basis import PcaBasis
from fruits_p8.reduce.saved import read_saved
from fruits_p8.schema import MODEL_DIR


def read_fitted(uri: str, settings: S3Settings | None = None) -> PcaBasis:
    """The fitted basis of the finished output at `uri` (or of `uri`'s parent when `uri` is that
    output's model/ folder).

    >>> from fruits_p8 import EMBEDDED_SAMPLE, RunConfig, read_fitted, run
    >>> _ = run(RunConfig(input=str(EMBEDDED_SAMPLE), output=str(tmp / "walnut"), k=3,
    ...                   limit=30), spark=spark)
    >>> model = read_fitted(str(tmp / "walnut"))
    >>> model.k, model.made_by.backbone, model.mean.shape
    (3, 'efficientnet_lite0', (1280,))
    """
    candidates = [uri.rstrip("/")]
    loc = parse_location(uri.rstrip("/"))
    if loc.parts and loc.parts[-1] == MODEL_DIR:
        candidates.insert(0, candidates[0].rsplit("/", 1)[0])
    for where in candidates:
        files = open_output(where, settings or S3Settings()).read_folder(MODEL_DIR)
        if files is not None:
            return read_saved(files, f"{where}/{MODEL_DIR}")
    raise FittedModelError(f"no fitted model at {uri}: give the folder of a finished "
                           f"fruits_p8 run (outputs hold {MODEL_DIR}/; older ones have none: "
                           "run them again)")

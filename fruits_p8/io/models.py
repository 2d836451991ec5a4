"""Find and read the fitted model of a finished output, locally or in S3, without Spark."""

from __future__ import annotations

from fruits_p8.errors import FittedModelError, UsageError
from fruits_p8.io.output import LocalOutput, S3Output, open_output
from fruits_p8.io.paths import Location
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
    location = Location.parse(uri)
    candidates = [location]
    if location.name == MODEL_DIR:
        candidates.insert(0, location.parent)  # the output holding model/
    for where in candidates:
        output = open_output(where, settings or S3Settings())
        output.settle()  # a commit that a crash interrupted is finished first, as `run` does
        files = output.read_folder(MODEL_DIR)
        if files is not None:
            return read_saved(files, f"{output.uri}/{MODEL_DIR}")
    raise FittedModelError(f"no fitted model at {uri}: give the folder of a finished "
                           f"fruits_p8 run (outputs hold {MODEL_DIR}/; older ones have none: "
                           "run them again)")


def check_kept_basis(output: LocalOutput | S3Output, k: int | None,
                     variance: float | None) -> None:
    """--incremental without --refit keeps the standardise + PCA of the output it replaces:
    refuse a --k or --variance that asks for another basis, rather than ignore it."""
    output.settle()
    files = output.read_folder(MODEL_DIR)
    if files is None:  # nothing there yet, or an output without model/: the run fits anew
        return
    model = read_saved(files, f"{output.uri}/{MODEL_DIR}")
    asked = ((output.read_report() or {}).get("pca") or {}).get("requested_variance")
    if (variance is None and k == model.k) or (variance is not None and variance == asked):
        return
    kept = f"--variance {asked}" if asked is not None else f"--k {model.k}"
    wanted = f"--variance {variance}" if variance is not None else f"--k {k}"
    raise UsageError(
        f"--incremental keeps the standardise + PCA of {output.uri} ({kept}: k={model.k}) "
        f"and cannot give {wanted}: run it with {kept}, or add --refit to fit anew on all "
        "the images (every stored pca vector changes)")

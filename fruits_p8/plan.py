"""Before any work: what a run will read and write, checked without Spark or images."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from fruits_p8 import __version__
from fruits_p8.config import RunConfig
from fruits_p8.errors import FittedModelError, UsageError
from fruits_p8.features.backbones import Backbone, check_weights_spec, get_backbone
from fruits_p8.features.forward import preprocessing
from fruits_p8.features.weights import Weights
from fruits_p8.io.images import resolve_input
from fruits_p8.io.models import check_kept_basis, read_fitted
from fruits_p8.io.output import LocalOutput, S3Output, open_output
from fruits_p8.io.paths import Location
from fruits_p8.reduce import check_k
from fruits_p8.reduce.basis import MadeBy, PcaBasis


@dataclass(frozen=True)
class Plan:
    """What preflight resolved: where to read, where to write, which backbone, and the
    saved model to apply (--fitted) if any."""

    root: Location
    output: LocalOutput | S3Output
    backbone: Backbone
    fitted: PcaBasis | None = None


def check_apart(root: Location, output: Location) -> None:
    """The output must not be, hold, or sit inside the input: the run would read its own
    files, and replacing the output could delete the images."""
    if output.within(root) and len(output.parts) == len(root.parts):
        where = "is the input folder"
    elif root.within(output):
        where = f"holds the input {root.text()}: replacing it would delete the images"
    elif output.within(root):
        where = f"is inside the input {root.text()}: the run would read its own output"
    else:
        return
    raise UsageError(f"--output {output.text()} {where}; choose an output outside the input")


def _resolved(location: Location) -> Location:
    """A local location with its links resolved, as the input's is (io.images)."""
    return Location.of_path(Path(location.local).resolve()) if location.is_local else location


def preflight(config: RunConfig) -> Plan:
    """Checks that need no Spark and no images: input and output apart, output replaceable
    (and not being written by another run), model, k, input location, the fitted model.

    >>> from fruits_p8 import RunConfig, preflight
    >>> preflight(RunConfig(input="/no/such/folder", output=str(tmp / "out")))
    Traceback (most recent call last):
    fruits_p8.errors.InputError: input not found: /no/such/folder
    """
    settings = config.s3_settings()
    root = resolve_input(config.input, settings)
    target = Location.parse(config.output)
    output = open_output(target, settings, config.io)
    check_apart(root, _resolved(target))
    output.check(config.overwrite or config.incremental)
    if config.incremental and not config.refit and config.fitted is None:
        check_kept_basis(output, config.k, config.variance)
    backbone = get_backbone(config.backbone)
    check_weights_spec(backbone, config.weights)
    if config.k is not None and config.fitted is None:
        check_k(config.k, backbone.feature_dim)
    fitted = None
    if config.fitted is not None:
        fitted = read_fitted(config.fitted, settings)
        check_fitted(fitted, config, backbone)
    return Plan(root, output, backbone, fitted)


def check_fitted(fitted: PcaBasis, config: RunConfig, backbone: Backbone) -> None:
    """What can be checked of --fitted before the weights are loaded: the features this run
    makes must be those the model was fitted on, and k is the model's."""
    precision = fitted.made_by.precision if config.precision == "auto" else config.precision
    check_same_features(fitted, replace(
        fitted.made_by, backbone=backbone.name, feature_dim=backbone.feature_dim,
        preprocessing=preprocessing(config.image_size, backbone), precision=precision),
        f"--fitted {config.fitted}")
    if config.variance is not None or config.k not in (None, fitted.k):
        raise UsageError(f"--fitted {config.fitted} keeps its k={fitted.k} components: "
                         "drop --k and --variance")


def made_by(config: RunConfig, weights: Weights, backbone: Backbone) -> MadeBy:
    """How this run makes features: what a model fitted on them records."""
    return MadeBy(backbone=backbone.name, feature_dim=backbone.feature_dim,
                  weights_sha256=weights.sha256, weights=config.weights,
                  preprocessing=preprocessing(config.image_size, backbone),
                  precision=config.precision,
                  fruits_p8=__version__)


def check_same_features(model: PcaBasis, making: MadeBy, what: str) -> None:
    """A model applies only to features made as those it was fitted on."""
    differences = model.made_by.differences(making)
    if differences:
        raise FittedModelError(f"the model of {what} was fitted on other features: "
                               + "; ".join(differences))

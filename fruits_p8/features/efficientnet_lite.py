"""EfficientNet-Lite0/1/2 in Keras, and the conversion of their PyTorch ImageNet weights.

Lite0 is EfficientNet-B0's block layout without squeeze-excitation, with ReLU6 and a fixed
stem (32) and head (1280). Lite1 and Lite2 scale it as EfficientNet does (channels by a width
multiplier rounded to 8, repeats by a depth multiplier rounded up) but keep the stem, the head
and the repeats of the first and last stage fixed (TF's efficientnet_lite_builder,
fix_head_stem). Convolutions use TF "same" padding, which is what the original TF
checkpoints (and the PyTorch port's static-same padding) were trained with.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from fruits_p8.features.tf_runtime import import_tensorflow

BN_EPSILON = 1e-3
STEM = 32
FEATURES = 1280
CLASSES = 1000
DIVISOR = 8


@dataclass(frozen=True)
class Stage:
    repeats: int
    kernel: int
    stride: int
    expand: int
    channels_in: int
    channels_out: int


@dataclass(frozen=True)
class Variant:
    """One member of the family: EfficientNet's width and depth multipliers, its resolution."""

    name: str
    width: float
    depth: float
    resolution: int


LITE0 = Variant("lite0", 1.0, 1.0, 224)
LITE1 = Variant("lite1", 1.0, 1.1, 240)
LITE2 = Variant("lite2", 1.1, 1.2, 260)
VARIANTS = {v.name: v for v in (LITE0, LITE1, LITE2)}

STAGES = (  # Lite0 (= B0 without SE); the others are scaled from it
    Stage(1, 3, 1, 1, 32, 16),
    Stage(2, 3, 2, 6, 16, 24),
    Stage(2, 5, 2, 6, 24, 40),
    Stage(3, 3, 2, 6, 40, 80),
    Stage(3, 5, 1, 6, 80, 112),
    Stage(4, 5, 2, 6, 112, 192),
    Stage(1, 3, 1, 6, 192, 320),
)


@dataclass(frozen=True)
class Block:
    index: int
    kernel: int
    stride: int
    expand: int
    channels_in: int
    channels_out: int

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.channels_in == self.channels_out


def round_filters(channels: int, width: float) -> int:
    """Channels times the width multiplier, to a multiple of 8 and never 10 % below."""
    scaled = channels * width
    rounded = max(DIVISOR, int(scaled + DIVISOR / 2) // DIVISOR * DIVISOR)
    return rounded + DIVISOR if rounded < 0.9 * scaled else rounded


def stages(variant: Variant = LITE0) -> tuple[Stage, ...]:
    """The seven stages of `variant`: Lite keeps the first and last stage's repeats and the
    stem's 32 channels (the first stage's input), and scales the rest."""
    out: list[Stage] = []
    for i, stage in enumerate(STAGES):
        fixed = i in (0, len(STAGES) - 1)
        out.append(Stage(
            repeats=stage.repeats if fixed else math.ceil(variant.depth * stage.repeats),
            kernel=stage.kernel, stride=stage.stride, expand=stage.expand,
            channels_in=out[-1].channels_out if out else STEM,
            channels_out=round_filters(stage.channels_out, variant.width),
        ))
    return tuple(out)


def blocks(variant: Variant = LITE0) -> list[Block]:
    """The MBConv blocks of `variant` in order (Lite0 16, Lite1 and Lite2 21)."""
    out: list[Block] = []
    for stage in stages(variant):
        for repeat in range(stage.repeats):
            out.append(
                Block(
                    index=len(out),
                    kernel=stage.kernel,
                    stride=stage.stride if repeat == 0 else 1,
                    expand=stage.expand,
                    channels_in=stage.channels_in if repeat == 0 else stage.channels_out,
                    channels_out=stage.channels_out,
                )
            )
    return out


def build(input_size: int | None = None, include_top: bool = False,
          variant: Variant = LITE0):
    """The Keras model: scaled pixels in, 1280 pooled features (or 1000 logits) out."""
    input_size = input_size or variant.resolution
    import_tensorflow()
    import keras
    from keras import layers

    def conv_bn(x, filters, kernel, stride, name, activation=True, depthwise=False):
        if depthwise:
            x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False,
                                       name=f"{name}_conv")(x)
        else:
            x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                              name=f"{name}_conv")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
        return layers.ReLU(max_value=6.0, name=f"{name}_relu")(x) if activation else x

    inputs = keras.Input((input_size, input_size, 3), name="pixels")
    x = conv_bn(inputs, STEM, 3, 2, "stem")
    for block in blocks(variant):
        shortcut = x
        prefix = f"block{block.index}"
        if block.expand != 1:
            x = conv_bn(x, block.channels_in * block.expand, 1, 1, f"{prefix}_expand")
        x = conv_bn(x, None, block.kernel, block.stride, f"{prefix}_dw", depthwise=True)
        x = conv_bn(x, block.channels_out, 1, 1, f"{prefix}_project", activation=False)
        if block.residual:
            x = layers.Add(name=f"{prefix}_add")([shortcut, x])
    x = conv_bn(x, FEATURES, 1, 1, "head")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if include_top:
        x = layers.Dense(CLASSES, name="logits")(x)
    return keras.Model(inputs, x, name=f"efficientnet_{variant.name}")


def _bn(state: Mapping[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    return [state[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]


def _conv(weight: np.ndarray) -> np.ndarray:
    return weight.transpose(2, 3, 1, 0)  # OIHW -> HWIO


def _depthwise(weight: np.ndarray) -> np.ndarray:
    return weight.transpose(2, 3, 0, 1)  # C1HW -> HWC1


def keras_weights_from_torch(state: Mapping[str, np.ndarray],
                             variant: Variant = LITE0) -> dict[str, list[np.ndarray]]:
    """PyTorch state dict (lukemelas naming) -> {keras layer name: its weight arrays}; a
    checkpoint with more or fewer blocks than `variant` is a ValueError."""
    layout = blocks(variant)
    found = {int(key.split(".")[1]) for key in state if key.startswith("_blocks.")}
    if found != set(range(len(layout))):
        raise ValueError(f"the checkpoint has {len(found)} blocks, EfficientNet-"
                         f"{variant.name.capitalize()} {len(layout)}")
    out: dict[str, list[np.ndarray]] = {
        "stem_conv": [_conv(state["_conv_stem.weight"])],
        "stem_bn": _bn(state, "_bn0"),
        "head_conv": [_conv(state["_conv_head.weight"])],
        "head_bn": _bn(state, "_bn1"),
        "logits": [state["_fc.weight"].T, state["_fc.bias"]],
    }
    for block in layout:
        torch_prefix, prefix = f"_blocks.{block.index}", f"block{block.index}"
        if block.expand != 1:
            out[f"{prefix}_expand_conv"] = [_conv(state[f"{torch_prefix}._expand_conv.weight"])]
            out[f"{prefix}_expand_bn"] = _bn(state, f"{torch_prefix}._bn0")
        out[f"{prefix}_dw_conv"] = [_depthwise(state[f"{torch_prefix}._depthwise_conv.weight"])]
        out[f"{prefix}_dw_bn"] = _bn(state, f"{torch_prefix}._bn1")
        out[f"{prefix}_project_conv"] = [_conv(state[f"{torch_prefix}._project_conv.weight"])]
        out[f"{prefix}_project_bn"] = _bn(state, f"{torch_prefix}._bn2")
    return {name: [np.ascontiguousarray(a, dtype=np.float32) for a in arrays]
            for name, arrays in out.items()}


def assign(model, named: Mapping[str, list[np.ndarray]]) -> None:
    """Set every weighted layer of `model` from `named`; a missing or misshapen one is an error."""
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in named:
            raise KeyError(f"no weights for layer {layer.name}")
        layer.set_weights(named[layer.name])

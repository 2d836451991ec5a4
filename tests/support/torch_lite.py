"""An independent EfficientNet-Lite forward pass in torch.nn.functional (test-only reference).

Nothing is taken from the Keras port under test: the layout is read from the checkpoint's
tensors (block count, kernels, channels; a block whose output channels differ from its input
starts a stage) and the strides from the EfficientNet paper's table (stage i of 7 strides by
STAGE_STRIDES[i] in its first block). TF 'same' padding per input size, BN eps 1e-3, ReLU6.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)


def _same_conv(x, weight, stride=1, groups=1):
    ih, iw = x.shape[-2:]
    kh, kw = weight.shape[-2:]
    ph = max((math.ceil(ih / stride) - 1) * stride + kh - ih, 0)
    pw = max((math.ceil(iw / stride) - 1) * stride + kw - iw, 0)
    x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
    return F.conv2d(x, weight, None, stride, 0, 1, groups)


def _bn(x, state, prefix):
    return F.batch_norm(x, state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"],
                        state[f"{prefix}.weight"], state[f"{prefix}.bias"], False, 0.0, 1e-3)


class Reference:
    """Features and logits of an EfficientNet-Lite checkpoint (any of Lite0..Lite4)."""

    def __init__(self, state: dict[str, torch.Tensor]):
        self.state = state
        count = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("_blocks."))
        self.strides, stage = [], -1
        for i in range(count):
            out_ch, mid = state[f"_blocks.{i}._project_conv.weight"].shape[:2]
            expand = state.get(f"_blocks.{i}._expand_conv.weight")
            in_ch = expand.shape[1] if expand is not None else mid
            starts = i == 0 or out_ch != state[f"_blocks.{i - 1}._project_conv.weight"].shape[0]
            stage += starts
            self.strides.append(STAGE_STRIDES[stage] if starts else 1)
            assert starts or in_ch == out_ch
        assert stage == len(STAGE_STRIDES) - 1, f"{stage + 1} stages in the checkpoint"

    def features(self, x: torch.Tensor) -> torch.Tensor:
        s = self.state
        x = F.relu6(_bn(_same_conv(x, s["_conv_stem.weight"], 2), s, "_bn0"))
        for i, stride in enumerate(self.strides):
            p, y = f"_blocks.{i}", x
            if f"{p}._expand_conv.weight" in s:
                y = F.relu6(_bn(_same_conv(y, s[f"{p}._expand_conv.weight"]), s, f"{p}._bn0"))
            dw = s[f"{p}._depthwise_conv.weight"]
            y = F.relu6(_bn(_same_conv(y, dw, stride, groups=dw.shape[0]), s, f"{p}._bn1"))
            y = _bn(_same_conv(y, s[f"{p}._project_conv.weight"]), s, f"{p}._bn2")
            x = x + y if stride == 1 and x.shape[1] == y.shape[1] else y
        x = F.relu6(_bn(_same_conv(x, s["_conv_head.weight"]), s, "_bn1"))
        return x.mean(dim=(2, 3))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.features(x), self.state["_fc.weight"], self.state["_fc.bias"])


def load(path: str) -> Reference:
    return Reference(torch.load(path, map_location="cpu", weights_only=True))

"""MobileNetV2 (Sandler et al., 2018), written without torchvision: torchvision's architecture.

The state dict has torchvision's ``mobilenet_v2`` keys and shapes at every width (``width`` is
its ``width_mult``), so its weights files load (``model.weights``, ``batchlab.models.twins``),
and on images of 128 px or more it computes torchvision's function. Smaller images keep the
CIFAR-style strides (no parameter changes; see ``_STAGES``). Parameters start from PyTorch's
default initialisation, not torchvision's, so zoo runs train as they always have.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from batchlab.models.layers import conv_block, dropout_p, image_shape, imagenet_layout
from batchlab.spec import ModelSpec

# (expansion t, output channels c, repeats n, first stride s) per stage: the paper's Table 2,
# as in torchvision. The ImageNet net downsamples 32x, which would reduce a 32x32 CIFAR image to
# 1x1, so on small images (layers.imagenet_layout) the stem and the 24-channel stage keep
# stride 1 and the net downsamples 8x (32 -> 4): the later stages still see spatial structure.
_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
_SMALL_IMAGE_UNSTRIDED_STAGE = 1  # the 24-channel stage
_STEM_CHANNELS = 32
_LAST_CHANNELS = 1280
_DIVISOR = 8
_DEFAULT_DROPOUT = 0.2


def make_divisible(value: float, divisor: int = _DIVISOR) -> int:
    """Round a scaled channel count to the nearest multiple of ``divisor``, as the paper does.

    Never rounds down by more than 10 %, so a small width multiplier does not lose more
    capacity than it asked for.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class InvertedResidual(nn.Module):
    """1x1 expansion → 3x3 depthwise → 1x1 linear projection, with a skip when shapes match.

    The projection has no activation (the paper's "linear bottleneck": ReLU in the narrow space
    would destroy information). Laid out as torchvision's ``InvertedResidual`` (``conv.0`` ...
    ``conv.3``, the projection's conv and BatchNorm unwrapped), so the state-dict keys match.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_block(in_channels, hidden, 1, act=nn.ReLU6))
        layers += [
            conv_block(hidden, hidden, 3, stride=stride, groups=hidden, act=nn.ReLU6),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.residual else out

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # The zoo's earlier layout named the body "block" and wrapped the projection's conv and
        # BatchNorm in one Sequential: its state dicts (a checkpoint of a run interrupted before
        # an upgrade, a saved model) still load. The parameters were created in the same order.
        projection = len(self.conv) - 2
        for key in [k for k in state_dict if k.startswith(f"{prefix}block.")]:
            index, _, tail = key.removeprefix(f"{prefix}block.").partition(".")
            if int(index) == projection:  # block.<p>.0 (conv) -> conv.<p>, block.<p>.1 (BN) -> conv.<p+1>
                sub, _, tail = tail.partition(".")
                index = str(projection + int(sub))
            state_dict[f"{prefix}conv.{index}.{tail}"] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args)


def build_mobilenet_v2(
    spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int
) -> nn.Module:
    """MobileNetV2 with width multiplier ``spec.width`` for images of 4x4 or more.

    ``features``: stem conv 3x3 → 17 inverted-residual blocks (expansion 6, ReLU6, BatchNorm) →
    1x1 conv to 1280 channels; ``pool``: adaptive average pool and flatten (no parameters);
    ``classifier``: dropout (0.2, or ``spec.dropout``) → linear. Channel counts are scaled by
    ``spec.width`` and rounded to multiples of 8; the last conv keeps its 1280 channels for
    widths below 1, as in the paper. Strides are torchvision's on images of 128 px or more,
    otherwise the stem and the 24-channel stage have stride 1 (see ``_STAGES``).
    """
    c, _, _ = image_shape("mobilenet_v2", input_shape, min_size=4)
    small = not imagenet_layout(input_shape)
    width = spec.width
    channels = make_divisible(_STEM_CHANNELS * width)
    features: list[nn.Module] = [conv_block(c, channels, 3, stride=1 if small else 2, act=nn.ReLU6)]
    for stage, (expansion, out, repeats, stride) in enumerate(_STAGES):
        if small and stage == _SMALL_IMAGE_UNSTRIDED_STAGE:
            stride = 1
        out_channels = make_divisible(out * width)
        for i in range(repeats):
            # Only the first block of a stage changes resolution (and usually width).
            block_stride = stride if i == 0 else 1
            features.append(InvertedResidual(channels, out_channels, block_stride, expansion))
            channels = out_channels
    last = make_divisible(_LAST_CHANNELS * max(1.0, width))
    features.append(conv_block(channels, last, 1, act=nn.ReLU6))
    classifier = nn.Sequential(
        nn.Dropout(dropout_p(spec, _DEFAULT_DROPOUT)),
        nn.Linear(last, num_classes),
    )
    return nn.Sequential(OrderedDict(
        features=nn.Sequential(*features),
        pool=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
        classifier=classifier,
    ))

"""MobileNetV2 (Sandler et al., 2018) adapted to small images, written without torchvision."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from batchlab.models.layers import conv_block, dropout_p, image_shape
from batchlab.spec import ModelSpec

# (expansion t, output channels c, repeats n, first stride s) per stage: the paper's Table 2,
# except that the 24-channel stage keeps stride 1 (and the stem, below, has stride 1). The
# ImageNet net downsamples 32x, which would reduce a 32x32 CIFAR image to 1x1; the CIFAR
# variant downsamples 8x (32 → 4), so the later stages still see some spatial structure.
_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
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
    would destroy information).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_block(in_channels, hidden, 1, act=nn.ReLU6))
        layers += [
            conv_block(hidden, hidden, 3, stride=stride, groups=hidden, act=nn.ReLU6),
            conv_block(hidden, out_channels, 1, act=None),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


def build_mobilenet_v2(
    spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int
) -> nn.Module:
    """MobileNetV2 with width multiplier ``spec.width`` for images of 4x4 or more.

    Stem conv 3x3 (stride 1) → 17 inverted-residual blocks (expansion 6, ReLU6, BatchNorm) →
    1x1 conv to 1280 channels → adaptive average pool → dropout (0.2, or ``spec.dropout``) →
    linear. Channel counts are scaled by ``spec.width`` and rounded to multiples of 8; the last
    conv keeps its 1280 channels for widths below 1, as in the paper.
    """
    c, _, _ = image_shape("mobilenet_v2", input_shape, min_size=4)
    width = spec.width
    channels = make_divisible(_STEM_CHANNELS * width)
    features: list[nn.Module] = [conv_block(c, channels, 3, act=nn.ReLU6)]
    for expansion, out, repeats, stride in _STAGES:
        out_channels = make_divisible(out * width)
        for i in range(repeats):
            # Only the first block of a stage changes resolution (and usually width).
            block_stride = stride if i == 0 else 1
            features.append(InvertedResidual(channels, out_channels, block_stride, expansion))
            channels = out_channels
    last = make_divisible(_LAST_CHANNELS * max(1.0, width))
    features += [
        conv_block(channels, last, 1, act=nn.ReLU6),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ]
    classifier = nn.Sequential(
        nn.Dropout(dropout_p(spec, _DEFAULT_DROPOUT)),
        nn.Linear(last, num_classes),
    )
    return nn.Sequential(OrderedDict(features=nn.Sequential(*features), classifier=classifier))

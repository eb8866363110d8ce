"""SqueezeNet 1.1 (Iandola et al., 2016) adapted to small images."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from batchlab.models.layers import conv_block, dropout_p, image_shape
from batchlab.spec import ModelSpec

# SqueezeNet 1.1's layout after the stem: "M" is a 3x3 stride-2 max-pool, a tuple is a Fire
# module (squeeze channels, expand-1x1 channels, expand-3x3 channels).
_LAYOUT: tuple[str | tuple[int, int, int], ...] = (
    "M",
    (16, 64, 64),
    (16, 64, 64),
    "M",
    (32, 128, 128),
    (32, 128, 128),
    "M",
    (48, 192, 192),
    (48, 192, 192),
    (64, 256, 256),
    (64, 256, 256),
)
_STEM_CHANNELS = 64
_DEFAULT_DROPOUT = 0.5


class Fire(nn.Module):
    """Squeeze with 1x1 convs, then expand with parallel 1x1 and 3x3 convs, concatenated."""

    def __init__(self, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int) -> None:
        super().__init__()
        self.squeeze = conv_block(in_channels, squeeze, 1, norm=False)
        self.expand1x1 = conv_block(squeeze, expand1x1, 1, norm=False)
        self.expand3x3 = conv_block(squeeze, expand3x3, 3, norm=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)
        return torch.cat([self.expand1x1(s), self.expand3x3(s)], dim=1)


def build_squeezenet(spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """SqueezeNet 1.1 for images of 4x4 or more.

    The ImageNet stem (3x3 stride 2, then a pool) would quarter a 32x32 image before any Fire
    module, so the stem here has stride 1 and the three max-pools (padding 1) do all the
    downsampling (32 → 4, 8 → 1). The classifier is SqueezeNet's: dropout (0.5, or
    ``spec.dropout``) → 1x1 conv to one map per class → global average pool. The ReLU that
    SqueezeNet applies to those maps is left out: on logits it clamps every class score at zero,
    which can stall training with a dead class.
    """
    c, _, _ = image_shape("squeezenet", input_shape, min_size=4)
    layers: list[nn.Module] = [conv_block(c, _STEM_CHANNELS, 3, norm=False)]
    channels = _STEM_CHANNELS
    for item in _LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(3, stride=2, padding=1))
        else:
            squeeze, e1, e3 = item
            layers.append(Fire(channels, squeeze, e1, e3))
            channels = e1 + e3
    classifier = nn.Sequential(
        nn.Dropout(dropout_p(spec, _DEFAULT_DROPOUT)),
        nn.Conv2d(channels, num_classes, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    return nn.Sequential(OrderedDict(features=nn.Sequential(*layers), classifier=classifier))

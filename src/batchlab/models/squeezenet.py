"""SqueezeNet 1.1 (Iandola et al., 2016), written without torchvision: torchvision's architecture.

The state dict has torchvision's ``squeezenet1_1`` keys and shapes, so its weights files load
(``model.weights``, ``batchlab.models.twins``). Differences, none of which touches a parameter:
small images (under 128 px, ``layers.imagenet_layout``) get a stride-1 stem and padded pools;
the classifier has no ReLU on its logits (see :func:`build_squeezenet`); parameters start from
PyTorch's default initialisation, not torchvision's, so zoo runs train as they always have.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from batchlab.models.layers import dropout_p, image_shape, imagenet_layout
from batchlab.spec import ModelSpec

# SqueezeNet 1.1's layout after the stem conv and its ReLU: "M" is a 3x3 stride-2 max-pool, a
# tuple is a Fire module (squeeze channels, expand-1x1 channels, expand-3x3 channels).
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
    """Squeeze with 1x1 convs, then expand with parallel 1x1 and 3x3 convs, concatenated.

    Attribute names are torchvision's (``squeeze``, ``expand1x1``, ``expand3x3`` and their
    ``*_activation``), so the state-dict keys match.
    """

    def __init__(self, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(in_channels, squeeze, 1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, 1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, 3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [self.expand1x1_activation(self.expand1x1(s)), self.expand3x3_activation(self.expand3x3(s))],
            dim=1,
        )

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # the zoo's earlier layout wrapped each conv with its ReLU: "squeeze.0.weight" (see Features)
        for conv in ("squeeze", "expand1x1", "expand3x3"):
            for param in ("weight", "bias"):
                old = f"{prefix}{conv}.0.{param}"
                if old in state_dict:
                    state_dict[f"{prefix}{conv}.{param}"] = state_dict.pop(old)
        super()._load_from_state_dict(state_dict, prefix, *args)


class Features(nn.Sequential):
    """The feature layers; a plain Sequential that also loads the zoo's earlier layout.

    That layout wrapped the stem conv with its ReLU (``0.0.weight``), which shifted every later
    layer down by one: its state dicts (a checkpoint of a run interrupted before an upgrade, a
    saved model) still load. The parameters were created in the same order.
    """

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        if f"{prefix}0.0.weight" in state_dict:
            old = {k: state_dict.pop(k) for k in [k for k in state_dict if k.startswith(prefix)]}
            for key, value in old.items():
                index, _, tail = key.removeprefix(prefix).partition(".")
                new = f"0.{tail.removeprefix('0.')}" if index == "0" else f"{int(index) + 1}.{tail}"
                state_dict[prefix + new] = value
        super()._load_from_state_dict(state_dict, prefix, *args)


def build_squeezenet(spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """SqueezeNet 1.1 for images of 4x4 or more.

    On images of 128 px or more, torchvision's layout: stem 3x3 stride 2 (no padding), three
    3x3 stride-2 max-pools rounding up (``ceil_mode``). On smaller images that would quarter a
    32x32 image before any Fire module, so the stem has stride 1 (padding 1) and the three
    max-pools (padding 1) do all the downsampling (32 → 4, 8 → 1). The classifier is
    SqueezeNet's: dropout (0.5, or ``spec.dropout``) → 1x1 conv to one map per class → global
    average pool. The ReLU that SqueezeNet applies to those maps is left out: on logits it
    clamps every class score at zero, which can stall training with a dead class.
    """
    c, _, _ = image_shape("squeezenet", input_shape, min_size=4)
    small = not imagenet_layout(input_shape)
    layers: list[nn.Module] = [
        nn.Conv2d(c, _STEM_CHANNELS, 3, stride=1 if small else 2, padding=1 if small else 0),
        nn.ReLU(inplace=True),
    ]
    channels = _STEM_CHANNELS
    for item in _LAYOUT:
        if item == "M":
            # padded on small images, as the zoo's pools always were (their results stay the same)
            pool = nn.MaxPool2d(3, 2, padding=1) if small else nn.MaxPool2d(3, 2, ceil_mode=True)
            layers.append(pool)
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
    return nn.Sequential(OrderedDict(features=Features(*layers), classifier=classifier))

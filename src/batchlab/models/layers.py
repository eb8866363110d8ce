"""Building blocks and shape checks shared by the zoo models.

Every zoo builder validates the data's ``input_shape`` here first, so a mismatch (a conv
net on flat features, an image too small for the network's pooling) is a
:class:`~batchlab.errors.ModelError` with a suggestion, never a shape error deep in the
first forward pass.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from batchlab.errors import ModelError
from batchlab.spec import ModelSpec


def conv_block(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    padding: int | None = None,
    groups: int = 1,
    norm: bool = True,
    act: type[nn.Module] | None = nn.ReLU,
) -> nn.Sequential:
    """Conv2d → optional BatchNorm2d → optional activation.

    ``padding`` defaults to ``kernel_size // 2`` ("same" size at stride 1). With ``norm`` the
    conv has no bias, because BatchNorm's shift makes it redundant. ``act=None`` gives the
    linear projection MobileNetV2 uses at the end of each bottleneck.
    """
    pad = kernel_size // 2 if padding is None else padding
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, pad, groups=groups, bias=not norm)
    ]
    if norm:
        layers.append(nn.BatchNorm2d(out_channels))
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


class Reshape(nn.Module):
    """Reshape each example to ``shape`` (the batch dimension is kept).

    Lets a model accept both ``(N, L)`` and ``(N, C, L)`` batches for the same data shape.
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


def dropout_p(spec: ModelSpec, default: float) -> float:
    """The model's default dropout probability, unless ``spec.dropout`` overrides it."""
    return default if spec.dropout is None else spec.dropout


def output_numel(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Number of features per example that ``module`` outputs for ``input_shape`` inputs.

    Found by a dummy forward of one zero example. It runs in eval mode under ``no_grad`` so that
    BatchNorm running statistics are left untouched and dropout draws no random numbers: the
    builders must leave the global RNG exactly where a build without the probe would.
    """
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(torch.zeros(1, *input_shape))
    finally:
        module.train(was_training)
    return out[0].numel()


# The zoo's torchvision models (mobilenet_v2, squeezenet) downsample images this large (shorter
# side, pixels) as torchvision does, 32x, which still leaves a 4x4 map (7x7 at 224 px); smaller
# images take the small-image strides (8x: 32 px -> 4x4), which 32x would reduce to 1x1.
IMAGENET_LAYOUT_MIN_SIZE = 128


def imagenet_layout(input_shape: tuple[int, ...]) -> bool:
    """True when images of ``input_shape`` (C, H, W) get torchvision's ImageNet strides."""
    return min(input_shape[-2:]) >= IMAGENET_LAYOUT_MIN_SIZE


def image_shape(model: str, input_shape: tuple[int, ...], min_size: int) -> tuple[int, int, int]:
    """Check that a 2-D conv model can take ``input_shape`` and return ``(C, H, W)``.

    Raises ModelError for flat features ``(D,)``, sequences ``(C, L)`` and images smaller than
    ``min_size`` on either side, each time saying which model would fit instead.
    """
    if len(input_shape) != 3:
        if len(input_shape) == 1:
            got = f"flat features of shape {input_shape}"
            alternative = "use model.name = 'mlp', which takes data of any shape"
        elif len(input_shape) == 2:
            got = f"sequences of shape {input_shape} (channels, length)"
            alternative = "use model.name = 'cnn1d' for (channels, length) data, or 'mlp'"
        else:
            got = f"data of shape {input_shape}"
            alternative = "use model.name = 'mlp', which flattens any shape"
        raise ModelError(
            f"model '{model}' is a 2-D convolutional network and needs image-shaped data "
            f"(channels, height, width), but the data gives {got}; {alternative}."
        )
    c, h, w = input_shape
    if h < min_size or w < min_size:
        raise ModelError(
            f"model '{model}' needs images of at least {min_size}x{min_size} pixels, but the "
            f"data gives {h}x{w}; use larger images (for image folders set data.image_size) "
            "or a model that fits small inputs such as 'lenet5' or 'mlp'."
        )
    return c, h, w


def num_features(input_shape: tuple[int, ...]) -> int:
    """Number of values in one example of shape ``input_shape``."""
    return math.prod(input_shape)

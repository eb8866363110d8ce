"""The small classics: an MLP, the Keras MNIST CNN ("lenet5"), a small AlexNet, the MNIST-1D CNN.

Each builder takes ``(spec, input_shape, num_classes)`` and returns a module mapping a batch
``(N, *input_shape)`` to logits ``(N, num_classes)``.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from batchlab.errors import ModelError
from batchlab.models.layers import (
    Reshape,
    conv_block,
    dropout_p,
    image_shape,
    num_features,
    output_numel,
)
from batchlab.spec import ModelSpec


def build_mlp(spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Flatten → (Linear → ReLU [→ Dropout]) per ``spec.hidden`` → Linear.

    Takes data of any shape. Dropout is added only when ``spec.dropout`` is set and non-zero:
    the plain MLP is the baseline for batch-size studies, so it has no regularisation unless
    asked for.
    """
    layers: list[nn.Module] = [nn.Flatten()]
    width = num_features(input_shape)
    for hidden in spec.hidden:
        layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
        if spec.dropout:
            layers.append(nn.Dropout(spec.dropout))
        width = hidden
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def build_lenet5(spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The classic Keras MNIST CNN.

    conv32(3x3) → ReLU → conv64(3x3) → ReLU → maxpool2 → dropout(0.25) → flatten → fc128 →
    ReLU → dropout(0.5) → fc. ``spec.dropout`` replaces both dropout probabilities. The convs
    are unpadded as in Keras, except on inputs smaller than 16 pixels on a side (8x8 digits),
    where padding 1 keeps enough spatial extent for the pooling; any image of 4x4 or more works.
    """
    c, h, w = image_shape("lenet5", input_shape, min_size=4)
    pad = 1 if min(h, w) < 16 else 0
    features = nn.Sequential(
        conv_block(c, 32, 3, padding=pad, norm=False),
        conv_block(32, 64, 3, padding=pad, norm=False),
        nn.MaxPool2d(2),
        nn.Dropout(dropout_p(spec, 0.25)),
        nn.Flatten(),
    )
    classifier = nn.Sequential(
        nn.Linear(output_numel(features, input_shape), 128),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout_p(spec, 0.5)),
        nn.Linear(128, num_classes),
    )
    return nn.Sequential(OrderedDict(features=features, classifier=classifier))


# (out_channels, max-pool after this conv?) for the five AlexNet convolutions. AlexNet's
# 64-192-384-256-256 is scaled down so the whole net stays near 2 M parameters.
_ALEXNET_CONVS = ((64, True), (128, True), (256, False), (256, False), (128, True))
_ALEXNET_POOL = 2  # adaptive pool output side: 128 * 2 * 2 = 512 classifier inputs
_ALEXNET_HIDDEN = 512


def build_alexnet_small(
    spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int
) -> nn.Module:
    """AlexNet for small images: five conv-BN-ReLU layers, three max-pools, an MLP classifier.

    AlexNet's 11x11 stride-4 stem would reduce a 32x32 image to almost nothing, so every conv is
    3x3 stride 1 and only the three 2x2 max-pools downsample (32 → 4). An adaptive average pool
    fixes the classifier's input size, so any image of 8x8 or more works with the same weights.
    The classifier has dropout 0.5 before each hidden layer, as in AlexNet (``spec.dropout``
    overrides it).
    """
    c, _, _ = image_shape("alexnet_small", input_shape, min_size=8)
    layers: list[nn.Module] = []
    channels = c
    for out_channels, pool in _ALEXNET_CONVS:
        layers.append(conv_block(channels, out_channels, 3))
        if pool:
            layers.append(nn.MaxPool2d(2))
        channels = out_channels
    layers += [nn.AdaptiveAvgPool2d(_ALEXNET_POOL), nn.Flatten()]
    p = dropout_p(spec, 0.5)
    classifier = nn.Sequential(
        nn.Dropout(p),
        nn.Linear(channels * _ALEXNET_POOL**2, _ALEXNET_HIDDEN),
        nn.ReLU(inplace=True),
        nn.Dropout(p),
        nn.Linear(_ALEXNET_HIDDEN, _ALEXNET_HIDDEN),
        nn.ReLU(inplace=True),
        nn.Linear(_ALEXNET_HIDDEN, num_classes),
    )
    return nn.Sequential(OrderedDict(features=nn.Sequential(*layers), classifier=classifier))


# The ConvBase of the MNIST-1D reference code (greydanus/mnist1d, notebooks/models.py):
# (kernel, stride, padding) of its three convolutions, all with 25 channels.
_CNN1D_CHANNELS = 25
_CNN1D_CONVS = ((5, 2, 1), (3, 2, 1), (3, 2, 1))


def build_cnn1d(spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The MNIST-1D paper's CNN for sequences of shape ``(C, L)``, or ``(L,)`` read as ``(1, L)``.

    conv(C→25, k5, s2, p1) → ReLU → conv(25→25, k3, s2, p1) → ReLU → conv(25→25, k3, s2, p1) →
    ReLU → flatten → linear. On MNIST-1D's 40 points that is 25 x 5 = 125 linear inputs and
    5,210 parameters for 10 classes, as in the reference. No dropout, as in the reference.
    """
    if len(input_shape) == 1:
        shape = (1, input_shape[0])
    elif len(input_shape) == 2:
        shape = (input_shape[0], input_shape[1])
    else:
        raise ModelError(
            f"model 'cnn1d' needs sequence data of shape (channels, length) or (length,), but "
            f"the data gives shape {input_shape}; for images use 'lenet5' (or another 2-D conv "
            "model), or 'mlp' for data of any shape."
        )
    if shape[1] < 3:
        raise ModelError(
            f"model 'cnn1d' needs sequences of at least 3 points (its first conv has kernel 5 "
            f"with padding 1), but the data gives length {shape[1]}; use 'mlp' instead."
        )
    layers: list[nn.Module] = [Reshape(shape)]
    channels = shape[0]
    for kernel, stride, padding in _CNN1D_CONVS:
        layers += [
            nn.Conv1d(channels, _CNN1D_CHANNELS, kernel, stride, padding),
            nn.ReLU(inplace=True),
        ]
        channels = _CNN1D_CHANNELS
    features = nn.Sequential(*layers, nn.Flatten())
    head = nn.Linear(output_numel(features, shape), num_classes)
    return nn.Sequential(OrderedDict(features=features, classifier=head))

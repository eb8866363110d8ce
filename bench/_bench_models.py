"""The model families of the generated judgement bench: small, fast on one CPU thread.

Each factory takes the input shape and the number of outputs (classes, or 1 for a
regression) and returns a fresh module; ``build(family, shape, outputs)`` picks one.
batchlab receives the same factory as the user's model (``model=``), and the plain loop calls
it directly.

Not part of batchlab and not a test module.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: bump when a change alters a model (it invalidates the cached ground truth)
VERSION = 1


def mlp(shape: tuple[int, ...], outputs: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape), 128), nn.ReLU(),
                         nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, outputs))


def cnn(shape: tuple[int, ...], outputs: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(shape[0], 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(128, outputs))


class _Block(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


def resnet_bn(shape: tuple[int, ...], outputs: int) -> nn.Module:
    """A stem, a pooling and two residual blocks with BatchNorm (a tiny ResNet)."""
    return nn.Sequential(
        nn.Conv2d(shape[0], 12, 3, padding=1, bias=False), nn.BatchNorm2d(12), nn.ReLU(),
        nn.MaxPool2d(2), _Block(12), _Block(12), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(12, outputs))


def conv1d(shape: tuple[int, ...], outputs: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv1d(shape[0], 32, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(32, 32, 5, padding=2), nn.ReLU(), nn.AdaptiveAvgPool1d(4), nn.Flatten(),
        nn.Linear(128, outputs))


class GRUNet(nn.Module):
    """A one-layer GRU over the sequence (N, C, L) read in chunks of 4 samples (10 GRU steps
    for MNIST-1D's 40: a recurrent net that trains in seconds), out from its last state."""

    def __init__(self, shape: tuple[int, ...], outputs: int, hidden: int = 32, chunk: int = 4) -> None:
        super().__init__()
        self.chunk = chunk
        self.gru = nn.GRU(shape[0] * chunk, hidden, batch_first=True)
        self.head = nn.Linear(hidden, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, length = x.shape
        usable = length - length % self.chunk
        steps = x[..., :usable].reshape(n, c, -1, self.chunk).permute(0, 2, 1, 3).flatten(2)
        _, h = self.gru(steps)
        return self.head(h[-1])


class TinyTransformer(nn.Module):
    """Patches of 4 samples of the sequence as tokens, one pre-norm encoder layer, mean pool."""

    def __init__(self, shape: tuple[int, ...], outputs: int, dim: int = 32, patch: int = 4) -> None:
        super().__init__()
        self.patch = patch
        tokens = shape[-1] // patch
        self.embed = nn.Linear(shape[0] * patch, dim)
        self.pos = nn.Parameter(torch.zeros(1, tokens, dim))
        layer = nn.TransformerEncoderLayer(dim, 4, 2 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, length = x.shape
        usable = length - length % self.patch
        tokens = x[..., :usable].reshape(n, c, -1, self.patch).permute(0, 2, 1, 3).flatten(2)
        return self.head(self.encoder(self.embed(tokens) + self.pos).mean(1))


FAMILIES = {"mlp": mlp, "cnn": cnn, "resnet_bn": resnet_bn, "conv1d": conv1d, "gru": GRUNet,
            "transformer": TinyTransformer}
#: which input kinds (see _bench_data.SOURCES) a family takes
TAKES = {"mlp": ("tabular", "image", "sequence"), "cnn": ("image",), "resnet_bn": ("image",),
         "conv1d": ("sequence",), "gru": ("sequence",), "transformer": ("sequence",)}


def build(family: str, shape: tuple[int, ...], outputs: int) -> nn.Module:
    return FAMILIES[family](shape, outputs)

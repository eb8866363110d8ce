"""Numeric precision and memory format of a run: ``train.precision`` and ``train.channels_last``.

``Precision`` bundles what the loop needs for mixed precision in three calls — ``autocast()``
around forward passes (training and evaluation), ``backward(loss)`` and ``step(optimizer)`` —
so the loop reads the same whatever the setting, with no ``if`` per step:

- ``fp32``: no autocast, plain ``backward`` and ``step`` (the default; bit-identical to a loop
  without any of this).
- ``bf16``: ``torch.autocast`` with bfloat16 on the run's device. bfloat16 has float32's
  exponent range, so gradients cannot underflow and no scaler is needed.
- ``fp16``: ``torch.autocast`` with float16 plus a ``torch.amp.GradScaler``: float16 gradients
  of small losses underflow to zero without loss scaling. The scaler is used on every device
  that supports it (CUDA, and CPU in torch >= 2.3), not only CUDA, for that same reason; a
  step whose scaled gradients overflow is skipped and the scale lowered, as torch documents.

``channels_last`` stores 4-D activations as NHWC, which oneDNN (CPU) and cuDNN convolutions run
faster. It needs 4-D image inputs: on any other data it is refused with an error rather than
silently ignored, because a setting that does nothing is more likely a mistake in the spec
than a wish (an MLP on flat features has nothing to reorder).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from batchlab.errors import SpecError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Precision:
    """How forward, backward and the optimizer step run for ``train.precision = name``."""

    name: str
    device_type: str
    scaler: torch.amp.GradScaler | None = None

    def autocast(self) -> AbstractContextManager[object]:
        """The context every forward pass (training and evaluation) runs in."""
        if self.name == "fp32":
            return nullcontext()
        return torch.autocast(self.device_type, dtype=DTYPES[self.name])

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``, scaled first under fp16 (gradients accumulate scaled)."""
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()``; under fp16 unscaled, skipped on overflow, scale updated."""
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()


def make_precision(name: str, device: torch.device) -> Precision:
    """The :class:`Precision` for ``name`` ("fp32", "bf16", "fp16") on ``device``.

    Raises SpecError when this torch cannot autocast that dtype on that device (saying which
    setting to use instead)."""
    if name == "fp32":
        return Precision(name, device.type)
    if name not in DTYPES:
        raise SpecError(f"train.precision = {name!r} is not one of 'fp32', 'bf16', 'fp16'.")
    try:
        with torch.autocast(device.type, dtype=DTYPES[name]):
            pass
        scaler = torch.amp.GradScaler(device.type) if name == "fp16" else None
    except (RuntimeError, ValueError, TypeError, AttributeError) as err:
        raise SpecError(
            f"train.precision = {name!r} is not supported on {device.type} by torch "
            f"{torch.__version__} ({str(err).splitlines()[0]}); use 'fp32'"
            + (" or 'bf16'" if name == "fp16" else "") + " on this device.") from None
    return Precision(name, device.type, scaler)


def check_channels_last(input_shape: tuple[int, ...]) -> None:
    """SpecError unless one example is (C, H, W), i.e. a batch is 4-D (see the module doc)."""
    if len(input_shape) != 3:
        raise SpecError(
            f"train.channels_last = true needs image inputs (batches of shape N x C x H x W), "
            f"but this data's examples have shape {tuple(input_shape)}; set "
            "train.channels_last = false (the memory format only matters for convolutions).")


def to_channels_last(model: nn.Module) -> nn.Module:
    """``model`` with its 4-D parameters and buffers (convolution weights) in channels_last."""
    return model.to(memory_format=torch.channels_last)


def as_channels_last(x: torch.Tensor) -> torch.Tensor:
    """A 4-D batch in channels_last (a no-op when it already is); other tensors unchanged."""
    return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x

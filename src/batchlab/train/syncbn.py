"""BatchNorm over the global batch of a DDP run on CPU (``train.sync_batchnorm``).

torch's ``nn.SyncBatchNorm`` is the tool on GPUs, and it refuses CPU tensors (and DDP refuses
it in a CPU module). ``GlobalBatchNorm`` does the same on any device with the process group's
all-reduce: in training mode the mean and (biased) variance per channel are those of the
examples of all ranks together, and the gradient flows through both all-reduces
(``_AllReduceSum``: forward the sum over ranks, backward the sum of every rank's gradient,
since every rank's output depends on every rank's input), so a run over N processes
normalises as one process would at the global batch. The running statistics take the global
mean and unbiased variance, as ``BatchNorm`` does; evaluation uses them as ``BatchNorm`` does.
The variance is taken around the global mean (two all-reduces per layer, not E[x^2] - mean^2,
which loses digits when the mean is large).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class _AllReduceSum(torch.autograd.Function):
    """The sum over ranks, differentiable (torch.distributed.nn's is deprecated)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        out = grad.clone()
        dist.all_reduce(out)
        return out


def _sum_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    return _AllReduceSum.apply(tensor)


class GlobalBatchNorm(_BatchNorm):
    """A BatchNorm layer (1d, 2d or 3d input) whose training statistics span every rank."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        count = torch.full((1,), input.numel() / max(input.shape[1], 1), dtype=input.dtype,
                           device=input.device)
        sums = _sum_over_ranks(torch.cat([input.sum(dims), count]))
        total = float(sums[-1].detach())  # examples per channel over all ranks
        mean = sums[:-1] / total
        centered = input - mean.view(shape)
        var = _sum_over_ranks((centered * centered).sum(dims)) / total
        out = centered * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            self._update_running(mean.detach(), var.detach(), total)
        return out

    @torch.no_grad()
    def _update_running(self, mean: torch.Tensor, var: torch.Tensor, total: float) -> None:
        """As ``BatchNorm``: an exponential (or, momentum None, cumulative) average of the
        batch mean and the unbiased batch variance."""
        assert self.num_batches_tracked is not None and self.running_mean is not None
        assert self.running_var is not None
        self.num_batches_tracked.add_(1)
        factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        unbiased = var * (total / max(total - 1.0, 1.0))
        self.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)


def convert_global_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every BatchNorm layer replaced by a ``GlobalBatchNorm`` holding the same
    parameters and buffers (as ``nn.SyncBatchNorm.convert_sync_batchnorm`` does)."""
    out = module
    if isinstance(module, _BatchNorm) and not isinstance(module, GlobalBatchNorm):
        out = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)
        if module.affine:
            with torch.no_grad():
                out.weight = module.weight
                out.bias = module.bias
        out.running_mean = module.running_mean
        out.running_var = module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, convert_global_batchnorm(child))
    return out

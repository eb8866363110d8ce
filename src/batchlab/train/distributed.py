"""One run over several processes: the process group, the shard of each batch, the DDP step.

A run with ``train.devices = N`` and ``train.strategy = "ddp"`` trains in N processes (ranks)
launched by ``batchlab.train.launch``. Every rank runs the same loop (``train_run``) on the
same data with the same seed, so every rank draws the same batch order; from each *global*
batch of ``batch_size`` examples rank r takes its contiguous share (``shard``), and
``DistributedDataParallel`` averages the gradients. The step's sample set is the 1-process
batch, so the update equals the 1-process update up to float rounding.

A ``Replica`` is what the loop sees of that: it wraps the model (SyncBatchNorm, DDP), builds
the sharded step, and says whether this rank leads. The leader (rank 0) evaluates, records,
writes checkpoints and decides when the run ends; the other ranks (followers) only step, never
end a run on their own before the leader does (they record nothing and never evaluate), and
are ended by the launcher when the leader's run ends. ``SOLO`` is the do-nothing stand-in of
a 1-process run, so the loop needs no ``if`` for it.

Sharding and weights: a full batch splits into equal shares (``batch_size / N``, checked by
the spec). An epoch's last, partial batch splits as evenly as it goes; each rank's mean loss
is weighted by its share times N, so DDP's average of the gradients is the gradient of the
global batch's mean loss, and a rank left with no example contributes zeros.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from batchlab.train.inputs import LossFn
from batchlab.train.precision import Precision
from batchlab.train.step import TrainStep, make_train_step
from batchlab.train.syncbn import convert_global_batchnorm

#: how long a rank waits in a collective (the others may be evaluating or checkpointing)
COLLECTIVE_TIMEOUT = timedelta(hours=2)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shard(n: int, rank: int, world: int) -> slice:
    """Rank ``rank``'s contiguous share of a batch of ``n`` examples: ``n / world`` each when
    it divides, else the first ``n % world`` ranks take one more (possibly an empty slice)."""
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


class _ShareLoss:
    """The loss of one rank's share, weighted so that DDP's mean over ranks is the global
    batch's mean loss: ``loss_fn`` x ``weight`` (share / (n / world)); an empty share gives
    a zero that still reaches every parameter (DDP's reducer waits for all of them)."""

    def __init__(self, loss_fn: LossFn) -> None:
        self.loss_fn = loss_fn
        self.weight = 1.0

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if len(targets) == 0:
            return outputs.sum() * 0.0
        loss = self.loss_fn(outputs, targets)
        return loss if self.weight == 1.0 else loss * self.weight


@dataclass(frozen=True)
class Solo:
    """A 1-process run: the model trains as it is, this process leads."""

    rank: int = 0
    world: int = 1
    leader: bool = True

    def wrap(self, model: nn.Module) -> tuple[nn.Module, nn.Module]:
        """(the model to evaluate and save, the module to train): the same one."""
        return model, model

    def make_step(self, trained: nn.Module, loss_fn: LossFn, optimizer: torch.optim.Optimizer,
                  batch_size: int, micro: int, precision: Precision) -> TrainStep:
        return make_train_step(trained, loss_fn, optimizer, batch_size, micro, precision)

    def facts(self) -> dict[str, object]:
        """What the run's summary records about its processes (nothing for one)."""
        return {}


SOLO = Solo()


@dataclass(frozen=True)
class Replica:
    """Rank ``rank`` of ``world`` in an initialised process group (``join``)."""

    rank: int
    world: int
    sync_batchnorm: bool = False
    backend: str = "gloo"
    leader: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "leader", self.rank == 0)

    def wrap(self, model: nn.Module) -> tuple[nn.Module, nn.Module]:
        """(the bare model to evaluate and save, its DDP wrapper to train). With
        ``sync_batchnorm`` its BatchNorm layers first take the global batch's statistics (each
        layer's forward then waits for every rank): torch's SyncBatchNorm on GPUs, which
        refuses CPU tensors, and ``GlobalBatchNorm`` on CPU."""
        on_cuda = next(model.parameters()).device.type == "cuda"
        if self.sync_batchnorm:
            model = (nn.SyncBatchNorm.convert_sync_batchnorm(model) if on_cuda
                     else convert_global_batchnorm(model))
        ids = [torch.cuda.current_device()] if on_cuda else None
        return model, DistributedDataParallel(model, device_ids=ids)

    def make_step(self, trained: nn.Module, loss_fn: LossFn, optimizer: torch.optim.Optimizer,
                  batch_size: int, micro: int, precision: Precision) -> TrainStep:
        """The update on a *global* batch: this rank trains its share, DDP averages the
        gradients (only on the last micro-batch when accumulating), and the returned loss is
        the global batch's mean (one scalar all-reduce, so every rank records the same)."""
        share_loss = _ShareLoss(loss_fn)
        hold: Callable[[], object] = trained.no_sync  # type: ignore[assignment]
        inner = make_train_step(trained, share_loss, optimizer, batch_size // self.world, micro,
                                precision, hold=hold)

        def step(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
            part = shard(len(yb), self.rank, self.world)
            share_loss.weight = (part.stop - part.start) * self.world / len(yb)
            loss = inner(xb[part], yb[part]).float().clone()
            dist.all_reduce(loss)
            return loss / self.world
        return step

    def facts(self) -> dict[str, object]:
        return {"devices": self.world, "strategy": "ddp", "backend": self.backend,
                "sync_batchnorm": self.sync_batchnorm}


def join(rank: int, world: int, port: int, backend: str) -> None:
    """Join the process group of ``world`` ranks whose rank 0 listens on loopback ``port``."""
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=COLLECTIVE_TIMEOUT)


def leave() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_initialized():
        dist.destroy_process_group()

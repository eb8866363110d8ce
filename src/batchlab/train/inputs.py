"""Where a run's data, model, loss and optimizer come from: the spec (the default) or the caller.

The trainer and the probes build everything from the config by default: the data set the
DataSpec names, the model the ModelSpec names (one output per class, or per regression
target), ``spec_loss`` (cross-entropy on class labels, MSE on float regression targets), the
TrainSpec's optimizer. The
Python API (``batchlab.api``) trains the user's own objects instead (an ``nn.Module``,
arrays, a loss function, an optimizer factory) by passing a ``RunInputs`` whose fields
replace those four builders; everything else (schedule, batches, evaluation, checkpoints,
events) is the same code path. ``RunInputs()`` is exactly today's spec-driven behaviour.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from batchlab.data import Dataset, load_dataset
from batchlab.data.dataset import output_width
from batchlab.errors import ModelError
from batchlab.models import build_model
from batchlab.spec import DataSpec, ModelSpec, TrainSpec
from batchlab.train.optim import build_optimizer

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ModelBuilder = Callable[[ModelSpec, Dataset], nn.Module]
OptimizerBuilder = Callable[[TrainSpec, Iterable[nn.Parameter], float], torch.optim.Optimizer]


def spec_model(spec: ModelSpec, data: Dataset) -> nn.Module:
    """The model the spec names, sized for ``data`` (the zoo or a user factory): one output
    per class, or per target column of a regression."""
    return build_model(spec, data.input_shape, output_width(data.num_classes, data.train_y))


def spec_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The spec path's loss: cross-entropy on integer class labels, MSE on float targets.

    For a regression the outputs must have the targets' shape; a model's (N, 1) output for
    (N,) targets is squeezed to (N,) first, because ``mse_loss`` would otherwise broadcast the
    pair to an (N, N) matrix and train on every prediction against every target.
    """
    if not torch.is_floating_point(targets):
        return F.cross_entropy(outputs, targets)
    if outputs.ndim == targets.ndim + 1 and outputs.shape[-1] == 1:
        outputs = outputs.squeeze(-1)
    if outputs.shape != targets.shape:
        raise ModelError(
            f"the model returns outputs of shape {tuple(outputs.shape)} for regression targets "
            f"of shape {tuple(targets.shape)}; make its last layer output one value per target "
            "column (a factory that takes num_classes is given that number).")
    return F.mse_loss(outputs, targets)


@dataclass(frozen=True)
class RunInputs:
    """The four builders a run uses; each default is the spec-driven one.

    ``load_data(data_spec)``: train/validation tensors. ``build_model(model_spec, data)``: a
    fresh module, called right after ``torch.manual_seed(seed)`` so its initialisation is
    the run's. ``loss_fn(outputs, targets)``: the training and evaluation loss (mean over the
    batch). ``make_optimizer(train_spec, params, lr)``: the optimizer at initial LR ``lr``
    (the loop then sets the scheduled LR on every param group each step).
    """

    load_data: Callable[[DataSpec], Dataset] = load_dataset
    build_model: ModelBuilder = spec_model
    loss_fn: LossFn = field(default=spec_loss)
    make_optimizer: OptimizerBuilder = build_optimizer


def has_accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> bool:
    """Whether accuracy means something here: class scores (N, C) against integer labels (N,).

    A regression (float targets) or any other output shape records its loss alone.
    """
    return (outputs.ndim == 2 and targets.ndim == 1
            and not torch.is_floating_point(targets) and not torch.is_complex(targets))

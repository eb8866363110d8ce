"""Checks the Python API makes on the user's objects before anything trains or is stored.

The same promises as a spec's preflight (``execute.sweep.preflight``): the model takes a batch
of the data, class labels get one output per class, every batch size fits in the training set,
every schedule is valid; and what only objects can get wrong: a loss that fails or is not a
scalar, a regression whose outputs and targets differ by a trailing 1 (which a loss such as
``MSELoss`` silently broadcasts to an N x N comparison), an optimizer factory that fails.
"""

from __future__ import annotations

import inspect
import pickle
import warnings
from typing import TYPE_CHECKING, Any

import torch

from batchlab.errors import BatchlabError, ModelError, SpecError
from batchlab.execute.sweep import refuse_batches_larger_than_data
from batchlab.models.check import check_forward

if TYPE_CHECKING:
    from batchlab.objects import ObjectInputs
    from batchlab.plan import RunSpec
    from batchlab.spec import RunConfig, TrainSpec
    from batchlab.train.inputs import LossFn


def check_regression_shapes(out: torch.Tensor, targets: torch.Tensor, loss_fn: LossFn) -> None:
    """ModelError when float targets and outputs differ only by trailing size-1 dimensions,
    e.g. targets (N,) and outputs (N, 1), and ``loss_fn`` broadcasts them: an element-wise
    loss would compare every output with every target (N, N) and train every output towards
    the mean of all targets. A loss that aligns the shapes itself (``out.squeeze(-1)``) gives
    the same value on aligned outputs, and is accepted."""
    if not torch.is_floating_point(targets) or out.shape == targets.shape:
        return
    squeeze = [d for d in out.shape if d != 1] == [d for d in targets.shape if d != 1]
    if not squeeze or out.ndim == targets.ndim:
        return
    with warnings.catch_warnings():  # torch warns about the very broadcast this checks for
        warnings.simplefilter("ignore")
        try:
            as_given = loss_fn(out, targets)
            aligned = loss_fn(out.reshape(targets.shape), targets)
        except Exception:  # the loss cannot take one of them: the loss check names it
            as_given = aligned = None
    if isinstance(as_given, torch.Tensor) and isinstance(aligned, torch.Tensor) and \
            as_given.shape == aligned.shape and torch.allclose(as_given, aligned):
        return
    if out.ndim > targets.ndim:
        fix = ("return out.squeeze(-1) from the model's forward, or give targets of shape "
               f"{tuple(out.shape[1:])} per example (y.reshape(-1, 1))")
    else:
        fix = "return outputs of the targets' shape (out.unsqueeze(-1)), or give targets y.reshape(-1)"
    raise ModelError(
        f"the model's outputs have shape {tuple(out.shape)} but the targets {tuple(targets.shape)}; "
        "a loss such as MSELoss would broadcast them to a comparison of every output with every "
        f"target (N x N) and not learn. Make them the same shape: {fix}."
    )


def _forward_fix(net: torch.nn.Module, xb: torch.Tensor) -> str:
    """What to change when the model fails on a batch: its dtype when its weights are not the
    inputs' float32 (``model.double()``: torch's "mat1 and mat2 must have the same dtype"
    says nothing of batchlab's conversion), inputs of one number per example (1-D ``x``),
    else the shape it accepts."""
    dtypes = sorted({str(p.dtype) for p in net.parameters() if p.is_floating_point()} - {str(xb.dtype)})
    if dtypes:
        return (f"Its parameters are {', '.join(dtypes)} but batchlab gives the model float32 "
                "inputs (every input is converted to float32): pass model.float() (for mixed "
                "precision, keep float32 weights and set precision='bf16').")
    if xb.ndim == 1:  # x of shape (N,): a Linear(1, ...) gets (N,) and multiplies it as a row
        return ("Each example is a single number (inputs of shape (N,)); for one input feature "
                "pass x.reshape(-1, 1), giving the model inputs of shape (N, 1).")
    return "Make the model accept the data's shape."


def check_device(train: TrainSpec) -> None:
    """SpecError for ``device="cuda"`` on a machine without CUDA, as the CLI's preflight says
    it: each run failed with it one by one (a probe raised torch's RuntimeError)."""
    if train.device == "cuda" and not torch.cuda.is_available():
        raise SpecError("device='cuda' but this machine has no CUDA device; use device='auto' "
                        "(CUDA when present) or 'cpu'.")


def check_layout(config: RunConfig, objects: ObjectInputs) -> str | None:
    """The CLI's preflight checks of what needs image examples: SpecError for ``resized_crop``
    or ``channels_last`` on other examples (each run failed with it, one by one); the note
    ``check_augment`` gives for crop/flip of flat examples, or None."""
    from batchlab.data.augment import check_augment
    from batchlab.train.precision import check_channels_last

    shape = tuple(objects.data.train_x.shape[1:])
    if config.train.channels_last:
        check_channels_last(shape)
    return check_augment(config.data.augment, shape)


def check_objects(config: RunConfig, objects: ObjectInputs) -> None:
    """Fail before anything runs or is stored: the device exists, the data splits, the model
    takes a batch and gives one output per class for class labels (as a spec's model must),
    the loss gives a scalar for it, and the optimizer factory works. Errors name the object
    and the fix."""
    check_device(config.train)
    check_layout(config, objects)
    inputs = objects.run_inputs()
    data = inputs.load_data(config.data)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        net = inputs.build_model(config.model, data)
        xb, yb = data.train_x[:2], data.train_y[:2]
        try:
            out = net(xb)
        except Exception as err:
            raise ModelError(
                f"{objects.describe()} fails on a batch of inputs of shape {tuple(xb.shape)}: "
                f"{type(err).__name__}: {err}. {_forward_fix(net, xb)}"
            ) from None
        if not isinstance(out, torch.Tensor):  # nn.LSTM: (output, (h, c)); a dict of heads
            raise ModelError(
                f"{objects.describe()} returns a {type(out).__name__}, not a tensor; the loss "
                "and the accuracy need one tensor from forward: logits (N, classes) for labels, "
                "predictions for a regression. Wrap the model in a module whose forward "
                "returns that tensor (for an nn.LSTM: out, _ = self.lstm(x); return "
                "self.head(out[:, -1]))."
            )
        if data.num_classes:  # labels 0..C-1: every label, not only these two, needs an output
            check_forward(net, xb, data.num_classes, objects.model_name,
                          f" (labels 0..{data.num_classes - 1})",
                          "cross-entropy would leave the extra outputs as classes no example has"
                          if int(out.shape[-1]) > data.num_classes else
                          "a label without an output fails the run when a batch holds one")
        check_regression_shapes(out, yb, inputs.loss_fn)
        try:
            value = inputs.loss_fn(out, yb)
        except Exception as err:
            raise ModelError(
                f"the loss fails on the model's outputs {tuple(out.shape)} and targets "
                f"{tuple(yb.shape)} {yb.dtype}: {type(err).__name__}: {err}. Make the model's "
                "last layer match the targets (e.g. one output per class for labels)."
            ) from None
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise ModelError("the loss must return a scalar tensor (the batch mean); "
                             f"it returned {type(value).__name__} {getattr(value, 'shape', '')}.")
    if not any(p.requires_grad for p in net.parameters()):  # the optimizer would say "empty list"
        raise ModelError(
            f"{objects.describe()} has no trainable parameters (it has none, or every one has "
            "requires_grad=False), so no run would learn anything; leave at least the layers "
            "to train with requires_grad=True."
        )
    try:  # a factory that fails would otherwise fail every run, one by one
        inputs.make_optimizer(config.train, net.parameters(), 0.01)
    except BatchlabError:
        raise
    except Exception as err:
        raise SpecError(f"optimizer= fails on the model's parameters: {type(err).__name__}: "
                        f"{err}. It must take (params, lr) and return a torch.optim.Optimizer.") from None


def preflight(runs: list[RunSpec], objects: ObjectInputs) -> list[str]:
    """``check_objects``' companion for a sweep: every batch size fits in the training set
    (refused, as the CLI does, rather than trained full-batch), every schedule is valid
    (of the runs whose ``lr = "auto"`` is resolved: a dry run leaves some unmeasured), every
    device exists, no run forwards one example at a time through a model whose BatchNorm
    trains (``spec_train.batchnorm_error``) and none needs images of examples that are not
    (``check_layout``). Returns the notes on schedules that are not what their name promises
    over the run (``schedule_notes``: a warm-up as long as the run, a first decay past its
    end) and on crop/flip of flat examples, each once, for the sweep to say as the CLI's
    preflight does."""
    from batchlab.train.scaling import scaled_lr
    from batchlab.train.schedules import run_length, schedule_fn, schedule_notes, steps_per_epoch

    n_train = len(objects.run_inputs().load_data(runs[0].config.data).train_y)
    too_big: dict[int, int] = {}
    notes: list[str] = []
    for run in runs:
        t = run.config.train
        check_device(t)  # a grid over train.device: check_objects saw the first run's only
        # as the CLI's preflight: crop or flip moved a table's columns without a word
        note = check_layout(run.config, objects)
        notes += [note] if note and note not in notes else []
        if t.batch_size > n_train:
            too_big[t.batch_size] = n_train
            continue
        if t.lr == "auto":  # a dry run leaves it unmeasured: its schedule is checked once it is
            continue
        spe = steps_per_epoch(n_train, t.batch_size)
        total = run_length(t.steps, t.epochs, spe)
        schedule_fn(t.schedule, scaled_lr(t.numeric_lr(), t.batch_size, t.scale_lr,
                                          t.base_batch_size), total, spe)
        notes += [n for n in schedule_notes(t.schedule, total, spe) if n not in notes]
    refuse_batches_larger_than_data(too_big, "train= with more examples, or a smaller val_fraction")
    singles = [run.config.train for run in runs if run.config.train.micro_batch() < 2]
    if singles:  # the model is copied only when some run could meet the refusal
        from batchlab.spec_train import batchnorm_error
        from batchlab.train.accumulate import trains_batchnorm

        with torch.random.fork_rng(devices=[]):
            net = objects.make_model()
        if trains_batchnorm(net):
            raise SpecError(f"{batchnorm_error(singles[0], objects.model_name)}.")
    return notes


def _main_objects(objects: ObjectInputs, model: Any, loss: Any, optimizer: Any) -> list[str]:
    """Names of the classes and functions among the objects defined in ``__main__``."""
    from torch import nn

    found = [type(m) for m in model.modules()] if isinstance(model, nn.Module) else [model]
    found += [f if inspect.isfunction(f) or inspect.isclass(f) else type(f)
              for f in (loss, optimizer) if f is not None and not isinstance(f, str)]
    return sorted({getattr(f, "__qualname__", repr(f)) for f in found
                   if getattr(f, "__module__", None) == "__main__"})


def refuse_unsendable(workers: int, objects: ObjectInputs, model: Any, loss: Any,
                      optimizer: Any) -> None:
    """SpecError unless worker processes can receive the objects: they are pickled (no
    lambdas or local functions), and a class or function of ``__main__`` is only found again
    when the main program is a file each (spawned) worker can run again; a notebook or
    ``python -c`` is not."""
    import __main__

    main = _main_objects(objects, model, loss, optimizer)
    if main and not getattr(__main__, "__file__", None):
        raise SpecError(
            f"workers={workers}: {', '.join(main)} {'is' if len(main) == 1 else 'are'} defined in "
            "this notebook (or 'python -c'), which worker processes cannot import. Move "
            f"{'it' if len(main) == 1 else 'them'} into a module file beside the notebook (e.g. "
            "mymodels.py) and import from there, or use workers=1."
        )
    try:
        pickle.dumps(objects.run_inputs())
    except Exception as err:
        raise SpecError(
            f"workers={workers}: the objects cannot be sent to worker processes ({type(err).__name__}: "
            f"{err}); use module-level functions and classes for model=, loss= and optimizer= "
            "(no lambdas or functions defined inside functions), or workers=1."
        ) from None

"""The user's own objects as run inputs: a model, data, a loss and an optimizer factory.

``ObjectInputs.create`` checks what the Python API was given and turns it into

- ``RunInputs`` for the trainer and the probes: the model is deep-copied fresh for every run
  and re-initialised under the run's seed (``reset_parameters()`` on every submodule that has
  it, right after ``torch.manual_seed(seed)``), so runs at different seeds start from
  different weights and a rerun starts from the same ones; a callable model is called instead;
- the spec fields that name them, so a run id covers the objects: ``data.path =
  "memory:<hash of the tensors>"``, ``model.name = "python:<class>"`` and ``model.kwargs``
  holding the hashes of the architecture (repr + parameter and buffer shapes + frozen
  parameters + the plain attributes and buffer values of the user's own module classes) and
  of the loss and optimizer callables (qualified name + source). Change any of them and the sweep trains
  new runs; leave them and a rerun skips what is finished, as with a spec file.

Not covered by the hash (stated in docs/python-api.md): plain functions a ``forward`` calls (only
module classes are hashed), and classes whose source Python cannot read (``python -c``).
"""

from __future__ import annotations

import copy
import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from batchlab.data.dataset import output_width
from batchlab.data.memory import InMemoryData
from batchlab.errors import ModelError, SpecError
from batchlab.spec import DataSpec, ModelSpec, TrainSpec
from batchlab.train.inputs import LossFn, RunInputs
from batchlab.train.optim import build_optimizer

OptimizerFactory = Callable[[Any, float], torch.optim.Optimizer]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _source(obj: Any) -> str:
    """The source of a function or class, or '' when Python cannot show it (a builtin, C)."""
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ""


PLAIN = (int, float, str, bool, type(None), tuple)


def _settings(obj: Any) -> str:
    """What configures a callable object beyond its class: its repr, its plain attributes
    (``nn.HuberLoss(delta=2.0)`` does not show ``delta`` in its repr) and, for a module, its
    buffers (a class-weighted ``CrossEntropyLoss``)."""
    attrs = sorted((k, repr(v)) for k, v in getattr(obj, "__dict__", {}).items()
                   if isinstance(v, PLAIN) and not k.startswith("_"))
    buffers = ([(k, v.tolist()) for k, v in obj.named_buffers()]
               if isinstance(obj, nn.Module) else [])
    return repr(obj) + repr(attrs) + repr(buffers)


def callable_fingerprint(fn: Any) -> str:
    """``module.qualname@hash`` of a function, class or callable object: its qualified name,
    its source (or its class's) and, for an object (``nn.MSELoss()``, ``functools.partial``),
    its settings."""
    target = fn if inspect.isfunction(fn) or inspect.isclass(fn) or inspect.ismethod(fn) else type(fn)
    name = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"
    extra = "" if target is fn else _settings(fn)
    return f"{name}@{_sha(_source(target) + extra)}"


def reinitialise(module: nn.Module) -> nn.Module:
    """Reset every submodule that knows how (``reset_parameters``), drawing from torch's RNG."""
    for m in module.modules():
        reset = getattr(m, "reset_parameters", None)
        if callable(reset):
            reset()
    return module


def _tensor_sha(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's bytes (any dtype: bfloat16 has no numpy twin, so read as bytes)."""
    raw = tensor.detach().cpu().reshape(-1).contiguous().view(torch.uint8)
    return hashlib.sha256(raw.numpy().tobytes()).hexdigest()[:16]


def _own_settings(module: nn.Module) -> list[str]:
    """What configures the module beyond its repr, shapes and class sources: the plain
    attributes of every submodule whose class is not torch's (``self.p = p`` read by
    ``forward``; torch's modules show theirs in the repr), the values of the buffers those
    own (not reset by ``reset_parameters``, so every run keeps them), and which parameters
    are frozen (``requires_grad=False``: they are not trained). Empty for a model with none
    of these, so its fingerprint is the one it had before they were covered."""
    lines = []
    for prefix, sub in module.named_modules():
        if type(sub).__module__.startswith("torch."):
            continue
        attrs = sorted((k, repr(v)) for k, v in vars(sub).items()
                       if isinstance(v, PLAIN) and not k.startswith("_") and k != "training")
        buffers = [f"{k}:{_tensor_sha(v)}" for k, v in sub.named_buffers(recurse=False)]
        if attrs or buffers:
            lines.append(f"settings {prefix}: {attrs!r} {buffers!r}")
    frozen = [name for name, p in module.named_parameters() if not p.requires_grad]
    if frozen:
        lines.append(f"frozen: {frozen!r}")
    return lines


def architecture_fingerprint(module: nn.Module) -> str:
    """Hash of the module's repr, the source of every module class in it (an edited
    ``forward`` of a block inside the model counts), every parameter's and buffer's name,
    shape and dtype (not the parameters' values: each run re-initialises them) and
    ``_own_settings`` (an attribute such as a dropout rate, a constant buffer, frozen
    parameters: two models differing only there train differently, so they must not share
    a run id)."""
    classes = {f"{c.__module__}.{c.__qualname__}": c for c in map(type, module.modules())}
    sources = [_source(classes[name]) for name in sorted(classes)]
    shapes = [f"{n}:{tuple(t.shape)}:{t.dtype}" for n, t in
              [*module.named_parameters(), *module.named_buffers()]]
    return _sha("\n".join([repr(module), *sources, *shapes, *_own_settings(module)]))


# The builders below are small classes rather than closures so that ``RunInputs`` pickle:
# worker processes (``bl.sweep(workers=N)``) receive them.


@dataclass(frozen=True)
class _CopyModel:
    """A fresh, re-initialised copy of ``template`` per call."""

    template: nn.Module

    def __call__(self) -> nn.Module:
        return reinitialise(copy.deepcopy(self.template))


def _name(obj: Any) -> str:
    """A callable's name for messages: ``make_net``, ``Linear``, or its repr."""
    return str(getattr(obj, "__qualname__", None) or repr(obj))


def factory_arguments(factory: Callable[..., Any], input_shape: tuple[int, ...],
                      outputs: int) -> dict[str, Any]:
    """The keywords ``factory`` is called with, as a spec's ``model.name = "module:factory"``
    gets them (``models.factory``): ``input_shape`` (one example's shape) and ``num_classes``
    (the outputs the data needs: classes, or regression targets), those it declares, all of
    them when it takes ``**kwargs``, none for ``lambda: Net()``. ModelError when it needs
    arguments batchlab cannot give (a module class such as ``nn.Linear``)."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a builtin without a signature: call it bare
        return {}
    params = signature.parameters.values()
    var_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    named = {p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                   inspect.Parameter.KEYWORD_ONLY)}
    offered = {"input_shape": tuple(input_shape), "num_classes": outputs}
    call = {k: v for k, v in offered.items() if var_keyword or k in named}
    try:
        signature.bind(**call)
    except TypeError as err:
        given = ", ".join(f"{k}={v!r}" for k, v in call.items()) or "no arguments"
        name = _name(factory)
        if inspect.isclass(factory):
            raise ModelError(
                f"model={name} is a class, not a module instance, and batchlab cannot build it "
                f"with {given} ({err}). Pass an instance, e.g. model={name}(...) with its "
                f"arguments, or a function returning one (model=lambda: {name}(...)); a class "
                "is built like a factory, with the input_shape and num_classes it declares."
            ) from None
        raise ModelError(
            f"model={name} cannot be called with {given} ({err}); batchlab calls a model "
            "factory with the input_shape and num_classes it declares, and nothing else. Its "
            f"signature is {name}{signature}: give its other parameters defaults, or bind "
            f"them with functools.partial({name}, ...) or a lambda."
        ) from None
    return call


@dataclass(frozen=True)
class _CallFactory:
    """``factory(**kwargs)``, checked to be a module; what it raises is a ModelError naming it."""

    factory: Callable[..., Any]
    kwargs: dict[str, Any]

    def __call__(self) -> nn.Module:
        try:
            net = self.factory(**self.kwargs)
        except Exception as err:  # the user's code: name it, keep its traceback as the cause
            given = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items()) or "no arguments"
            raise ModelError(
                f"model={_name(self.factory)} raised {type(err).__name__}: {err} (called with "
                f"{given}). Fix the factory so that it returns a fresh torch.nn.Module."
            ) from err
        if not isinstance(net, nn.Module):
            raise ModelError(
                f"model={_name(self.factory)!r} returned a "
                f"{type(net).__name__}, not a torch.nn.Module; pass a module or a "
                "function that returns one."
            )
        return net


@dataclass(frozen=True)
class _BuildModel:
    """``RunInputs.build_model``: the spec and data are the objects' own, so unused."""

    make: Callable[[], nn.Module]

    def __call__(self, spec: Any, data: Any) -> nn.Module:
        return self.make()


def _model_maker(model: Any, data: InMemoryData) -> tuple[Callable[[], nn.Module], str]:
    """A function returning a fresh, re-initialised module, and the model's display name;
    a factory is called with the keywords ``factory_arguments`` gives for ``data``."""
    if isinstance(model, nn.Module):
        try:  # a snapshot: later edits to the user's module do not leak in
            template = copy.deepcopy(model)
        except Exception as err:
            name = type(model).__qualname__
            raise ModelError(
                f"model={name} cannot be copied ({type(err).__name__}: {err}): every run starts "
                "from its own copy of the module, re-initialised under the run's seed, so the "
                "module must survive copy.deepcopy. Keep what cannot be copied (a lock, an open "
                f"file, a connection) off the module, or pass a function that builds a fresh "
                f"one (model=lambda: {name}(...))."
            ) from err
        return _CopyModel(template), type(model).__qualname__
    if callable(model):
        outputs = output_width(data.num_classes(), data.train_y)
        kwargs = factory_arguments(model, tuple(data.train_x.shape[1:]), outputs)
        return _CallFactory(model, kwargs), getattr(model, "__qualname__", type(model).__qualname__)
    raise ModelError(
        f"model= is a {type(model).__name__}; pass a torch.nn.Module (copied and "
        "re-initialised for every run) or a function that returns a fresh one."
    )


@dataclass(frozen=True)
class _BuildOptimizer:
    """``RunInputs.make_optimizer`` from the user's ``(params, lr) -> Optimizer``, checked."""

    factory: Callable[[Any, float], Any]

    def __call__(self, spec: TrainSpec, params: Any, lr: float) -> torch.optim.Optimizer:
        made = self.factory(params, lr)
        if not isinstance(made, torch.optim.Optimizer):
            raise SpecError(
                f"optimizer={getattr(self.factory, '__qualname__', self.factory)!r} returned a "
                f"{type(made).__name__}; it must take (params, lr) and return a "
                "torch.optim.Optimizer, e.g. lambda params, lr: torch.optim.Adam(params, lr=lr)."
            )
        return made


def _optimizer_builder(optimizer: Any) -> Callable[[TrainSpec, Any, float], torch.optim.Optimizer]:
    if optimizer is None or isinstance(optimizer, str):
        return build_optimizer
    return _BuildOptimizer(optimizer)


@dataclass(frozen=True)
class ObjectInputs:
    """The checked objects of one API call, as trainer inputs and as the spec fields naming them."""

    data: InMemoryData
    make_model: Callable[[], nn.Module]
    model_name: str
    loss_fn: LossFn
    optimizer: Any  # None, a name, or a factory (params, lr) -> Optimizer
    fingerprints: dict[str, str]

    @classmethod
    def create(cls, model: Any, train: Any, val: Any = None, loss: LossFn | None = None,
               optimizer: Any = None) -> ObjectInputs:
        """Check and fingerprint the objects; ModelError/DataError/SpecError say what to fix."""
        data = InMemoryData.from_objects(train, val)
        make_model, name = _model_maker(model, data)
        if inspect.isclass(loss):  # called on (outputs, targets) it would build a loss, not run one
            prefix = "nn." if getattr(loss, "__module__", "").startswith("torch.nn") else ""
            raise SpecError(f"loss={_name(loss)} is a class, not a loss; pass an instance, "
                            f"loss={prefix}{_name(loss)}() (with its settings), or a function "
                            "loss(outputs, targets) returning the batch mean.")
        if loss is not None and not callable(loss):
            raise SpecError(f"loss= is a {type(loss).__name__}; pass a function "
                            "loss(outputs, targets) -> scalar tensor, e.g. torch.nn.MSELoss().")
        if loss is None and not data.classification:
            raise SpecError(
                f"train's targets are floating point {tuple(data.train_y.shape)}, which reads as "
                "a regression, but no loss= was given and the default is classification "
                "cross-entropy; pass loss=torch.nn.MSELoss() (or your own loss(outputs, "
                "targets)), or integer class labels for a classification."
            )
        if optimizer is not None and not isinstance(optimizer, str) and not callable(optimizer):
            raise SpecError(f"optimizer= is a {type(optimizer).__name__}; pass a name ('sgd', "
                            "'adam', 'adamw', 'rmsprop', 'adagrad') or a function (params, lr) -> Optimizer.")
        with torch.random.fork_rng(devices=[]):  # building the probe copy must not move the user's RNG
            torch.manual_seed(0)  # and a buffer a reset draws must hash the same on every call
            arch = architecture_fingerprint(make_model())
        prints = {"architecture": arch}
        if not isinstance(model, nn.Module):
            prints["factory"] = callable_fingerprint(model)
        if loss is not None:
            prints["loss"] = callable_fingerprint(loss)
        if optimizer is not None and not isinstance(optimizer, str):
            prints["optimizer"] = callable_fingerprint(optimizer)
        return cls(data, make_model, name, loss or F.cross_entropy, optimizer, prints)

    def model_spec(self) -> ModelSpec:
        return ModelSpec(name=f"python:{self.model_name}", kwargs=self.fingerprints)

    def data_spec(self, **fields: Any) -> DataSpec:
        return self.data.spec(**fields)

    def run_inputs(self) -> RunInputs:
        """Builders for ``train_run``/``fresh_setup``; the data spec's split/limit apply."""
        return RunInputs(
            load_data=self.data.dataset,
            build_model=_BuildModel(self.make_model),
            loss_fn=self.loss_fn,
            make_optimizer=_optimizer_builder(self.optimizer),
        )

    def describe(self) -> str:
        """The objects in words, for error messages."""
        return f"model={self.model_name}" + "".join(f", {k}" for k in ("loss", "optimizer")
                                                      if k in self.fingerprints)

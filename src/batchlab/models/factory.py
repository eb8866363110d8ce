"""User models: ``model.name = "package.module:factory"`` builds the user's own nn.Module.

The factory is any callable (a function or an nn.Module subclass). batchlab passes it the
keywords it declares among ``input_shape`` (tuple of ints, one example's shape) and
``num_classes`` (int) — all of them when it takes ``**kwargs`` — plus ``dropout`` when the
factory names that parameter and ``model.dropout`` is set (so a sweep over model.dropout reaches
user models too), plus everything in ``model.kwargs``. The built-in models' own fields,
``model.hidden`` (mlp) and ``model.width`` (mobilenet_v2), reach a factory that names the
parameter, like ``dropout``; set for any other factory they are refused (they would change the
run id and nothing else, so identical runs would train again). Every failure is a ModelError of
one paragraph saying what went wrong and what to check.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib
import importlib.util
import inspect
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from torch import nn

from batchlab.errors import ModelError
from batchlab.spec import ModelSpec

# Arguments batchlab derives from the data; setting them in model.kwargs would build a model
# that does not fit the data, so that is an error rather than a silent override.
_RESERVED = ("input_shape", "num_classes")
_SEEN = "__batchlab_source_sha256__"  # on a user module: the source batchlab last built from
# Fields of the built-in models, with what they are there. Only a factory that names the
# parameter receives one; a value other than the default for any other factory would change
# the run id and nothing else (identical runs trained again), so it is refused.
_BUILTIN_FIELDS = {"hidden": "the mlp's hidden layer widths",
                   "width": "mobilenet_v2's width multiplier"}


def is_factory_name(name: str) -> bool:
    """True when ``name`` refers to a user factory rather than a zoo model."""
    return ":" in name


def build_from_factory(
    spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int
) -> nn.Module:
    """Import ``spec.name`` ("package.module:factory"), call it, and check it made an nn.Module.

    ``factory`` may be a dotted attribute path (``module:Class.create``).
    """
    name = spec.name
    module_name, _, attr = name.partition(":")
    module_name, attr = module_name.strip(), attr.strip()
    if not module_name or not attr:
        raise ModelError(
            f"model.name = '{name}' is not a valid factory reference; write it as "
            "'package.module:factory', where factory is a function or nn.Module class in an "
            "importable module."
        )
    factory = _resolve(name, module_name, attr)
    call_kwargs = _call_arguments(name, factory, spec, input_shape, num_classes)
    try:
        model = factory(**call_kwargs)
    except Exception as err:  # the user's code: any failure is reported, with its text
        raise ModelError(
            f"model factory '{name}' raised {type(err).__name__}: {err} (called with "
            f"{_describe(call_kwargs)}). Fix the factory or the model.kwargs it is given."
        ) from err
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"model factory '{name}' returned {type(model).__name__}, not a torch.nn.Module; "
            "it must return the model instance itself (for example 'return MyNet(...)')."
        )
    return model


def _resolve(name: str, module_name: str, attr: str) -> Callable[..., Any]:
    """Import the module and look up the (possibly dotted) attribute."""
    # Pick up modules created since the interpreter started (a notebook or a test writing the
    # file just before building); the import system caches directory listings.
    importlib.invalidate_caches()
    try:
        module = _current(importlib.import_module(module_name))
    except ImportError as err:
        raise ModelError(
            f"cannot import module '{module_name}' for model.name = '{name}': {err}. Check that "
            "the module is on PYTHONPATH (run from the folder that contains it, or add that "
            "folder to PYTHONPATH) or installed in this environment, and that it imports cleanly."
        ) from err
    except Exception as err:  # a bug at the module's top level
        raise ModelError(
            f"importing module '{module_name}' for model.name = '{name}' raised "
            f"{type(err).__name__}: {err}. Fix the error in that module and retry."
        ) from err
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            candidates = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, candidates, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            where = getattr(module, "__file__", None) or module_name
            raise ModelError(
                f"module '{module_name}' ({where}) has no attribute '{attr}' for "
                f"model.name = '{name}'.{hint} Check the name after the ':'."
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise ModelError(
            f"'{name}' is a {type(obj).__name__}, not a callable; the name after ':' must be a "
            "function or nn.Module class that builds the model."
        )
    return obj


def _current(module: ModuleType) -> ModuleType:
    """``module``, reloaded when its source file changed since batchlab last built from it.

    A long-lived session (a notebook) keeps the module it imported first; the sweep sees the
    edited file's fingerprint and retrains, so it must also train the edited code, not the
    copy in memory. The source hash batchlab saw is kept on the module itself.
    """
    path = getattr(module, "__file__", None)
    if not path or not path.endswith(".py") or module.__name__ == "__main__":
        return module
    try:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return module
    if getattr(module, _SEEN, digest) != digest:
        # the .pyc is trusted by mtime in whole seconds and size: an edit within the second
        # that keeps the size (ReLU -> Tanh) would reload the old bytecode
        with contextlib.suppress(OSError, ValueError, NotImplementedError):
            Path(importlib.util.cache_from_source(path)).unlink(missing_ok=True)
        module = importlib.reload(module)  # errors surface like import errors, in _resolve
    setattr(module, _SEEN, digest)
    return module


def _call_arguments(
    name: str,
    factory: Callable[..., Any],
    spec: ModelSpec,
    input_shape: tuple[int, ...],
    num_classes: int,
) -> dict[str, Any]:
    """Keyword arguments for ``factory``: the offered ones it accepts, plus ``spec.kwargs``."""
    clash = [k for k in _RESERVED if k in spec.kwargs]
    if clash:
        raise ModelError(
            f"model.kwargs sets {', '.join(clash)} for '{name}', but batchlab passes "
            f"{' and '.join(_RESERVED)} from the data; remove {', '.join(clash)} from model.kwargs."
        )
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        # Some builtins and C extensions have no signature: pass only what the user gave.
        _builtin_fields(name, spec, set())
        return dict(spec.kwargs)
    params = signature.parameters
    var_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = {
        n
        for n, p in params.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    offered: dict[str, Any] = {"input_shape": tuple(input_shape), "num_classes": num_classes}
    call = {k: v for k, v in offered.items() if var_keyword or k in named}
    call.update(_builtin_fields(name, spec, named))
    # dropout only when declared by name: a **kwargs factory forwarding to a model without a
    # dropout argument would otherwise break as soon as a spec sets model.dropout.
    if spec.dropout is not None and "dropout" in named and "dropout" not in spec.kwargs:
        call["dropout"] = spec.dropout
    call.update(spec.kwargs)
    try:
        signature.bind(**call)
    except TypeError as err:
        raise ModelError(
            f"model factory '{name}' cannot be called with {_describe(call)}: {err}. Its "
            f"signature is {name.partition(':')[2]}{signature}; batchlab passes input_shape and "
            "num_classes when the factory declares them, and model.kwargs must supply the rest "
            "and nothing it does not accept."
        ) from None
    return call


def _builtin_fields(name: str, spec: ModelSpec, named: set[str]) -> dict[str, Any]:
    """The built-in models' fields set away from their defaults (``_BUILTIN_FIELDS``) that the
    factory names as parameters (``named``), to pass it; ModelError for one it does not name,
    or one model.kwargs sets too (which of the two would it get?)."""
    passed: dict[str, Any] = {}
    for field, what in _BUILTIN_FIELDS.items():
        value = getattr(spec, field)
        if value == ModelSpec.model_fields[field].default:
            continue  # every stored config holds the default: nothing was asked for
        if field in spec.kwargs:
            raise ModelError(
                f"model.{field} = {value!r} and model.kwargs.{field} = {spec.kwargs[field]!r} are "
                f"both set for the factory '{name}'; set only model.kwargs.{field} (what the "
                f"factory receives) and remove model.{field}."
            )
        if field not in named:
            raise ModelError(
                f"model.{field} = {value!r} is set, but model '{name}' is your factory and it has "
                f"no '{field}' parameter, so it would never receive it (model.{field} is "
                f"{what}); the run would be the same as without it under a new run id. Remove "
                f"model.{field} (and any --set model.{field}=...), or give the factory a '{field}' "
                f"parameter (or set model.kwargs.{field}) to pass it a value."
            )
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # the spec's float field reads width = 128 as 128.0; layer sizes need ints
        passed[field] = value
    return passed


def _describe(kwargs: dict[str, Any]) -> str:
    """``a=1, b=(2, 3)`` for error messages, or 'no arguments'."""
    if not kwargs:
        return "no arguments"
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())

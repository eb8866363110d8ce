"""The model registry: zoo names → builders, and :func:`build_model`, the one entry point."""

from __future__ import annotations

import difflib
from collections.abc import Callable

from torch import nn

from batchlab.errors import ModelError
from batchlab.models.classic import build_alexnet_small, build_cnn1d, build_lenet5, build_mlp
from batchlab.models.factory import build_from_factory, is_factory_name
from batchlab.models.torchvision_zoo import BUILDERS, build_torchvision_zoo
from batchlab.models.vision import build_library_model, is_library_name
from batchlab.spec import ModelSpec

Builder = Callable[[ModelSpec, tuple[int, ...], int], nn.Module]

_ZOO: dict[str, Builder] = {
    "mlp": build_mlp,
    "lenet5": build_lenet5,
    "alexnet_small": build_alexnet_small,
    "mobilenet_v2": build_torchvision_zoo,
    "squeezenet": build_torchvision_zoo,
    "cnn1d": build_cnn1d,
}

MODEL_NAMES: tuple[str, ...] = tuple(_ZOO)
#: the ModelSpec fields each zoo model reads (a torchvision:/timm: model: ``_LIBRARY_FIELDS``);
#: model.hidden / model.width set for one that does not read them are refused
#: (``_refuse_unread_fields``). lenet5, alexnet_small and cnn1d keep their references' layer
#: widths: a width knob would make them other architectures under the same name.
ZOO_FIELDS: dict[str, tuple[str, ...]] = {
    "mlp": ("hidden", "dropout"),
    "lenet5": ("dropout",),
    "alexnet_small": ("dropout",),
    "mobilenet_v2": ("width", "dropout", "weights", "freeze"),
    "squeezenet": ("dropout", "weights", "freeze"),
    "cnn1d": (),
}
_LIBRARY_FIELDS = ("kwargs", "dropout", "weights", "freeze")
_SIZE_FIELDS = {"hidden": "the mlp's hidden layer widths",
                "width": "mobilenet_v2's width multiplier"}


def build_model(spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Build the model ``spec`` names for examples of ``input_shape`` and ``num_classes`` classes.

    ``spec.name`` is a zoo name (see ``MODEL_NAMES``), ``"package.module:factory"`` for a user
    factory, or ``"torchvision:<builder>"`` / ``"timm:<name>"`` (``batchlab.models.vision``; only
    those and the zoo's ``mobilenet_v2``/``squeezenet`` take ``model.weights`` and
    ``model.freeze``). The module maps a batch ``(N, *input_shape)`` to logits ``(N, num_classes)``.
    Construction draws only from torch's global RNG, so it is deterministic under
    ``torch.manual_seed``. Raises ModelError for an unknown name, a model that cannot take
    ``input_shape`` (e.g. a conv net on flat features) or a factory that fails.
    """
    shape = _check_shape(input_shape)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ModelError(f"num_classes must be a positive integer, got {num_classes!r}.")
    if is_library_name(spec.name):  # before factories: "torchvision:x" has a ':' too
        _refuse_unread_fields(spec, _LIBRARY_FIELDS)
        return build_library_model(spec, shape, num_classes)
    if spec.name in BUILDERS:  # torchvision's: they take weights and freeze
        _refuse_unread_fields(spec, ZOO_FIELDS[spec.name])
        return build_torchvision_zoo(spec, shape, num_classes)
    _refuse_library_fields(spec)
    if is_factory_name(spec.name):  # refuses the fields the factory does not name itself
        return build_from_factory(spec, shape, num_classes)
    builder = _ZOO.get(spec.name)
    if builder is None:
        raise ModelError(_unknown_name_message(spec.name))
    _refuse_unread_fields(spec, ZOO_FIELDS[spec.name])
    return builder(spec, shape, num_classes)


def _refuse_unread_fields(spec: ModelSpec, reads: tuple[str, ...]) -> None:
    """model.hidden / model.width set away from their defaults for a model that does not read
    them (``reads``): refused, as for a factory, since the run would be the one without them
    under a new run id (trained again, and read as a different model)."""
    for field, what in _SIZE_FIELDS.items():
        value = getattr(spec, field)
        if field in reads or value == ModelSpec.model_fields[field].default:
            continue
        takes = ", ".join(f"model.{f}" for f in reads) or "none of the model fields"
        instead = "'mlp'" if field == "hidden" else "'mobilenet_v2'"
        raise ModelError(
            f"model.{field} = {value!r} is set, but model '{spec.name}' never reads it "
            f"(model.{field} is {what}), so the run would be the same as without it under a "
            f"new run id. '{spec.name}' takes {takes}. Remove model.{field} (and any --set "
            f"model.{field}=... or sweep over it), or use model.name = {instead}"
            + (", or pass the size in model.kwargs" if "kwargs" in reads else "") + "."
        )


def _refuse_library_fields(spec: ModelSpec) -> None:
    """model.weights / model.freeze on a zoo model not built by torchvision, or a factory: say
    where they apply instead of ignoring them (a silently random "pretrained" model would be the
    worst outcome)."""
    named = ", ".join(BUILDERS)
    if spec.weights is not None:
        raise ModelError(
            f"model.weights is set, but model '{spec.name}' is not a torchvision: or timm: model, "
            f"nor a zoo model built by torchvision ({named}); batchlab loads weights "
            "into those only. For your own model, load the state dict in "
            "your factory (model.load_state_dict(torch.load(path))); or set model.name = "
            f"'{next(iter(BUILDERS))}' (the zoo's, built by torchvision) or "
            "'torchvision:<builder>' (e.g. 'torchvision:resnet18')."
        )
    if spec.freeze != "none":
        raise ModelError(
            f"model.freeze = '{spec.freeze}' needs a torchvision: or timm: model, or a zoo model "
            f"built by torchvision ({named}), where batchlab knows the classifier head "
            f"and so the backbone; not '{spec.name}'. In your "
            "own factory, set requires_grad=False on the layers to freeze: batchlab trains only "
            "the parameters that require grad."
        )


def _check_shape(input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """``input_shape`` as a tuple of positive ints (lists and numpy ints are accepted)."""
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise ModelError(
            f"input_shape must be a non-empty sequence of positive sizes (one example's shape, "
            f"without the batch dimension), got {input_shape!r}."
        )
    return shape


def _unknown_name_message(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), MODEL_NAMES, n=1, cutoff=0.5)
    hint = f"Did you mean '{close[0]}'? " if close else ""
    return (
        f"unknown model '{name}'. {hint}The zoo has: {', '.join(MODEL_NAMES)}. For your own "
        "model, set model.name = 'package.module:factory', where factory is a function or "
        "nn.Module class (in an importable module) that returns the nn.Module; it receives "
        "input_shape and num_classes if it declares them, plus model.kwargs. For torchvision "
        "and timm architectures: 'torchvision:<builder>' or 'timm:<name>' (optional extras)."
    )

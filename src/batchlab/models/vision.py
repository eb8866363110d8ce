"""Real architectures: ``model.name = "torchvision:<builder>"`` or ``"timm:<name>"``.

torchvision builders are those of ``torchvision.models.list_models(module=torchvision.models)``
(the classification models: resnet18, mobilenet_v2, vit_b_16, ...), built with
``torchvision.models.get_model``; timm models are any ``timm.list_models()`` name, built with
``timm.create_model(name, pretrained=False)``. Both libraries are optional and imported only
here, when a spec names them (``batchlab.models.optional`` says what to install otherwise).

The model is built as its library defines it (ImageNet's 1,000 classes), ``model.weights``
is loaded into it (``batchlab.models.weights``; local files only), and then its classifier
head is replaced by a fresh one for the data's classes: torchvision's ``fc``, ``classifier``
(or its last Linear / 1x1 Conv2d), ``heads.head`` or ``head``; timm's ``reset_classifier``.
``model.kwargs`` go to the builder (e.g. ``width_mult`` for mobilenet_v2), ``model.dropout`` as
torchvision's ``dropout`` / timm's ``drop_rate``. ``model.freeze = "backbone"`` then freezes
everything but the new head (``batchlab.models.freeze``).

Input: images (C, H, W). Grey data (1 channel) on a model whose first convolution takes 3
channels is repeated to 3 channels on the way in (a forward pre-hook, so the state dict keeps
its keys): this equals a first convolution whose weights are summed over the colour channels,
the usual way to apply RGB-pretrained weights to grey images. Any other channel mismatch is a
ModelError. The image size is the data's (``data.image_size``); models that need a fixed size
(vit_*) fail the pre-run forward check with a message saying so.
"""

from __future__ import annotations

import difflib
from typing import Any

import torch
from torch import nn

from batchlab.errors import ModelError
from batchlab.models.freeze import freeze_backbone
from batchlab.models.optional import import_optional
from batchlab.models.weights import is_weights_file, load_backbone, local_file, torchvision_weights
from batchlab.spec import ModelSpec

PREFIXES = ("torchvision:", "timm:")
# torchvision's head layouts, in the order they are looked for (see _torchvision_head)
_HEAD_PATHS = ("fc", "classifier", "heads.head", "head")
# auxiliary classifiers: built off (a training-mode forward would return a tuple), and their
# keys in a weights file (the published ones have them) are not part of the backbone
_AUX = {"googlenet": ("aux1.", "aux2."), "inception_v3": ("AuxLogits.",)}


def is_library_name(name: str) -> bool:
    """True for ``torchvision:<builder>`` and ``timm:<name>``."""
    return name.strip().startswith(PREFIXES)


def build_library_model(spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Build ``spec.name`` for images of ``input_shape`` (C, H, W) and ``num_classes`` classes,
    with ``spec.weights`` loaded and ``spec.freeze`` applied (see the module docstring).
    Raises ModelError for a missing library, an unknown name, bad kwargs or weights."""
    library, _, arch = spec.name.strip().partition(":")
    arch = arch.strip()
    if len(input_shape) != 3:
        raise ModelError(
            f"model.name = '{spec.name}' takes images (channels, height, width), but this data's "
            f"examples have shape {input_shape}; use an image data set (image_folder, cifar10, "
            "mnist_idx) or a zoo model that fits the data."
        )
    if library == "torchvision":
        model, head = _torchvision(spec, arch, num_classes)
    else:
        model, head = _timm(spec, arch, num_classes)
    adapt_channels(model, input_shape[0], spec.name)
    if spec.freeze == "backbone":
        freeze_backbone(model, head)
    return model


def _torchvision(spec: ModelSpec, arch: str, num_classes: int) -> tuple[nn.Module, str]:
    models = import_optional("torchvision", f"model.name = '{spec.name}'").models
    names = models.list_models(module=models)
    if arch not in names:
        raise ModelError(_unknown(spec.name, arch, names, "torchvision.models.list_models(module="
                                  "torchvision.models)"))
    kwargs = _kwargs(spec, ("num_classes", "weights"), dropout="dropout")
    if arch in _AUX:
        kwargs.setdefault("aux_logits", False)
        # torchvision's default today, said explicitly: left unset, it warns on every build
        # that the default will change
        kwargs.setdefault("init_weights", True)
    named = spec.weights if spec.weights and not is_weights_file(spec.weights) else None
    enum = torchvision_weights(models, arch, named) if named else None
    model = _call(spec.name, models.get_model, arch, weights=enum, **kwargs)
    head = _torchvision_head(model, spec.name)
    if spec.weights and not named:
        load_backbone(model, local_file(spec.weights), head, spec.name, _AUX.get(arch, ()))
    _replace(model, head, num_classes)
    return model, head


def _timm(spec: ModelSpec, arch: str, num_classes: int) -> tuple[nn.Module, str]:
    timm = import_optional("timm", f"model.name = '{spec.name}'")
    if not timm.is_model(arch):
        raise ModelError(_unknown(spec.name, arch, timm.list_models(), "timm.list_models('*pattern*')"))
    if spec.weights and not is_weights_file(spec.weights):
        raise ModelError(
            f"model.weights = '{spec.weights}' is a torchvision weights name, but timm models load "
            "weights from a local file only (.pth/.pt/.bin/.safetensors, e.g. the "
            "model.safetensors of the model's Hugging Face page, downloaded beforehand)."
        )
    kwargs = _kwargs(spec, ("num_classes", "pretrained"), dropout="drop_rate")
    model = _call(spec.name, timm.create_model, arch, pretrained=False, **kwargs)
    if spec.weights:
        load_backbone(model, local_file(spec.weights), _module_path(model, model.get_classifier()),
                      spec.name)
    model.reset_classifier(num_classes)
    return model, _module_path(model, model.get_classifier())


def _kwargs(spec: ModelSpec, reserved: tuple[str, ...], dropout: str) -> dict[str, Any]:
    """``model.kwargs`` for the builder, plus ``model.dropout`` under the library's name."""
    clash = [k for k in reserved if k in spec.kwargs]
    if clash:
        raise ModelError(
            f"model.kwargs sets {', '.join(clash)} for '{spec.name}', but batchlab sets the classes "
            "from the data and the weights from model.weights; remove it from model.kwargs."
        )
    kwargs = dict(spec.kwargs)
    if spec.dropout is not None:
        kwargs.setdefault(dropout, spec.dropout)
    return kwargs


def _call(name: str, builder: Any, arch: str, **kwargs: Any) -> nn.Module:
    try:
        return builder(arch, **kwargs)
    except ModelError:
        raise
    except Exception as err:  # unknown or bad keyword arguments, mostly
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if v is not None) or "no arguments"
        raise ModelError(
            f"building '{name}' raised {type(err).__name__}: {err} (called with {given}). Check "
            "model.kwargs (and model.dropout) against that model's constructor arguments."
        ) from None


def _unknown(name: str, arch: str, names: list[str], how: str) -> str:
    close = difflib.get_close_matches(arch, names, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return f"model.name = '{name}': there is no such model.{hint} List the names with {how}."


def _torchvision_head(model: nn.Module, name: str) -> str:
    """Dotted path of the classifier layer: ``fc``, ``classifier`` or its last Linear / Conv2d
    (squeezenet's 1x1 conv), ``heads.head`` (vit) or ``head`` (swin)."""
    modules = dict(model.named_modules())
    for path in _HEAD_PATHS:
        module = modules.get(path)
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            return path
        if isinstance(module, nn.Sequential):
            layers = [f"{path}.{n}" for n, m in module.named_children()
                      if isinstance(m, (nn.Linear, nn.Conv2d))]
            if layers:
                return layers[-1]
    raise ModelError(
        f"batchlab cannot find the classifier head of '{name}' (looked for a Linear or Conv2d at "
        f"{', '.join(_HEAD_PATHS)} or at the end of a Sequential there); build it in your own "
        "factory instead (model.name = 'package.module:factory')."
    )


def _module_path(model: nn.Module, module: nn.Module) -> str:
    return next(path for path, m in model.named_modules() if m is module)


def _replace(model: nn.Module, path: str, num_classes: int) -> None:
    """Put a freshly initialised layer of ``num_classes`` outputs at ``path``, same kind and input."""
    old = model.get_submodule(path)
    bias = old.bias is not None
    if isinstance(old, nn.Linear):
        new: nn.Module = nn.Linear(old.in_features, num_classes, bias=bias)
    else:
        new = nn.Conv2d(old.in_channels, num_classes, old.kernel_size, old.stride, old.padding, bias=bias)
    parent, _, leaf = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, new)


def adapt_channels(model: nn.Module, channels: int, name: str) -> None:
    """Repeat grey images to the 3 channels the first convolution wants; refuse other mismatches
    (ModelError). Also used for zoo models built for RGB weights (``batchlab.models.torchvision_zoo``)."""
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    wanted = first.in_channels if first is not None else channels
    if wanted == channels:
        return
    if channels == 1 and wanted == 3:
        model.register_forward_pre_hook(_grey_to_rgb)
        return
    raise ModelError(
        f"'{name}' takes images of {wanted} channels but this data's images have {channels}; "
        "use data with that many channels (grey images are repeated to 3 channels automatically)."
    )


def _grey_to_rgb(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Forward pre-hook: (N, 1, H, W) -> (N, 3, H, W) without copying (a broadcast view)."""
    x: torch.Tensor = args[0]
    return (x.expand(-1, 3, -1, -1), *args[1:])

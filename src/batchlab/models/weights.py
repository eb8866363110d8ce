"""Pretrained weights for torchvision:/timm: models and the zoo's mobilenet_v2/squeezenet
(``batchlab.models.torchvision_zoo``), from local files only (never downloaded).

``model.weights`` is either

* a state-dict file: ``.pth`` / ``.pt`` / ``.bin`` (``torch.save(model.state_dict(), ...)``,
  read with ``weights_only=True``, so a file holding code is refused) or ``.safetensors``
  (needs the safetensors package). A checkpoint dict that keeps the state dict under
  ``state_dict`` / ``model`` / ``model_state_dict`` is accepted too, and a ``module.`` prefix
  left by DataParallel is stripped. Relative paths are relative to the working folder,
  like ``data.path``.
* a torchvision weights name, ``IMAGENET1K_V1`` / ``DEFAULT`` or the full
  ``MobileNet_V2_Weights.IMAGENET1K_V1``, read from the torch hub cache:
  ``torch.hub.get_dir()/checkpoints/<file name of the weights' URL>`` (``$TORCH_HOME/hub/...``).
  When the file is not there the error gives that exact path and the URL to fetch it from.

The file's weights are loaded into the model as its builder made it, *before* its classifier
head is replaced for the data's classes: the backbone must match key for key and shape for
shape (a ModelError lists what differs), and the file's head, if any, is ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from batchlab.errors import ModelError
from batchlab.models.optional import import_optional

FILE_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
_NESTED_KEYS = ("state_dict", "model", "model_state_dict")
_LISTED = 8  # keys named per kind of mismatch in an error


def is_weights_file(value: str) -> bool:
    """True when ``model.weights`` names a file rather than a torchvision weights name."""
    return Path(value).suffix.lower() in FILE_SUFFIXES or "/" in value or os.sep in value


def local_file(value: str) -> Path:
    """The existing state-dict file ``value`` names; ModelError when it is not one."""
    path = Path(value).expanduser()
    if path.suffix.lower() not in FILE_SUFFIXES:
        raise ModelError(
            f"model.weights = '{value}' is not a state-dict file name: batchlab reads "
            f"{', '.join(FILE_SUFFIXES)} files (save one with torch.save(model.state_dict(), "
            "'weights.pth')), or a torchvision weights name such as 'IMAGENET1K_V1'."
        )
    if not path.is_file():
        where = "is a folder" if path.is_dir() else "does not exist"
        raise ModelError(
            f"model.weights = '{value}' {where} (looked at {path.resolve()}); give the path of a "
            "state-dict file, absolute or relative to the folder batchlab runs in."
        )
    return path


def hub_cache_file(url: str) -> Path:
    """Where torch.hub keeps the download of ``url``: the file torchvision's builder reads."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def torchvision_weights(models: Any, arch: str, value: str) -> Any:
    """The torchvision weights enum member ``value`` names for builder ``arch``, after checking
    that its file is in the torch hub cache (so the builder reads it and downloads nothing)."""
    try:
        enum = models.get_model_weights(arch)
    except Exception:  # builders without published weights
        raise ModelError(
            f"torchvision's '{arch}' has no published weights, so model.weights = '{value}' cannot "
            "be resolved; give a local state-dict file instead."
        ) from None
    prefix, _, member = value.rpartition(".")
    if prefix and prefix != enum.__name__:
        raise ModelError(f"model.weights = '{value}' names {prefix}, but torchvision:{arch} takes "
                         f"{enum.__name__}; use one of: {_members(enum)}.")
    try:
        weights = enum[member]
    except KeyError:
        raise ModelError(f"torchvision:{arch} has no weights '{member}'; its weights are "
                         f"{_members(enum)}. A local state-dict file is named by its path, with a "
                         f"{'/'.join(FILE_SUFFIXES)} suffix.") from None
    cached = hub_cache_file(weights.url)
    if not cached.is_file():
        raise ModelError(
            f"model.weights = '{value}' ({weights}) is read from the local torch hub cache and is "
            f"not there: put the file at {cached} (download it from {weights.url}; the folder is "
            "torch.hub.get_dir()/checkpoints, set by $TORCH_HOME). batchlab never downloads "
            "weights; or give the path of a local state-dict file instead."
        )
    return weights


def _members(enum: Any) -> str:
    return ", ".join(["DEFAULT", *enum.__members__])


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of the state-dict file at ``path`` (on the CPU), unwrapped from a checkpoint
    dict and stripped of DataParallel's ``module.`` prefix."""
    if path.suffix.lower() == ".safetensors":
        loader = import_optional("safetensors.torch", f"model.weights = '{path}'")
        read = lambda: loader.load_file(str(path), device="cpu")  # noqa: E731
    else:
        read = lambda: torch.load(path, map_location="cpu", weights_only=True)  # noqa: E731
    try:
        state = read()
    except ModelError:
        raise
    except Exception as err:  # corrupt, truncated, a pickled whole model, not a torch file
        raise ModelError(
            f"cannot read the weights file {path}: {type(err).__name__}: {err}. It must be a state "
            "dict saved with torch.save(model.state_dict(), path) (or safetensors' save_file); a "
            "whole pickled model is refused because loading it would run code."
        ) from None
    if isinstance(state, dict):
        for key in _NESTED_KEYS:
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"the weights file {path} does not hold a state dict (a mapping of "
                         "parameter names to tensors); save one with torch.save(model.state_dict(), path).")
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


def load_backbone(model: nn.Module, path: Path, head: str, name: str,
                  ignore: tuple[str, ...] = ()) -> None:
    """Load the state dict at ``path`` into ``model``, except the classifier head (the module
    at ``head``, about to be replaced) and keys under ``ignore`` prefixes (auxiliary heads the
    model was built without). Every other key must match the model's in name and shape;
    otherwise ModelError lists the differences (``name`` is model.name, for the message)."""
    skip = (f"{head}.", *ignore)
    file = {k: v for k, v in read_state_dict(path).items() if not k.startswith(skip)}
    own = {k: v for k, v in model.state_dict().items() if not k.startswith(skip)}
    missing = [k for k in own if k not in file]
    unexpected = [k for k in file if k not in own]
    wrong = [f"{k} {tuple(file[k].shape)} vs {tuple(own[k].shape)}"
             for k in own if k in file and file[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        parts = [f"{label} ({len(keys)}): {', '.join(keys[:_LISTED])}{', ...' if len(keys) > _LISTED else ''}"
                 for label, keys in (("missing from the file", missing),
                                     ("in the file but not in the model", unexpected),
                                     ("shape in the file vs the model", wrong)) if keys]
        raise ModelError(
            f"the weights file {path} does not fit {name} (its classifier head '{head}' aside): "
            f"{'; '.join(parts)}. Use weights saved from the same architecture (and the same "
            "model.kwargs, e.g. width), or fix model.name."
        )
    model.load_state_dict(file, strict=False)  # strict on everything but the skipped head


def resolve_file(spec: Any) -> Path:
    """The file ``spec.weights`` (a ModelSpec with weights set) reads: the local file, or for a
    torchvision weights name (on torchvision: models and the zoo's mobilenet_v2 / squeezenet)
    its file in the hub cache. ModelError when there is none."""
    value = str(spec.weights)
    if is_weights_file(value):
        return local_file(value)
    from batchlab.models.torchvision_zoo import BUILDERS  # here: it imports this module

    library, _, arch = spec.name.strip().partition(":")
    if spec.name in BUILDERS:  # the zoo's mobilenet_v2 / squeezenet are torchvision's
        library, arch = "torchvision", BUILDERS[spec.name]
    if library != "torchvision":
        raise ModelError(f"model.weights = '{value}' is a torchvision weights name; '{spec.name}' "
                         "takes a local state-dict file.")
    models = import_optional("torchvision", f"model.weights = '{value}'").models
    return hub_cache_file(torchvision_weights(models, arch.strip(), value).url)

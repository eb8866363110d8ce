"""The zoo's ``mobilenet_v2`` and ``squeezenet``: torchvision's ``mobilenet_v2`` and
``squeezenet1_1``, built by ``torchvision.models`` (through ``batchlab.models.vision``, so
``model.weights``, files or torchvision weights names, and ``model.freeze`` work as for
``torchvision:`` models), adapted to the zoo's inputs without touching a parameter:

- images under 128 px (shorter side, ``layers.imagenet_layout``) keep the small-image strides,
  8x downsampling instead of 32x (which would leave a 32 px image 1x1): ``mobilenet_v2``'s stem
  and 24-channel stage get stride 1; ``squeezenet``'s stem gets stride 1 and padding 1 and its
  max-pools padding 1 instead of rounding up;
- ``squeezenet`` has no ReLU on its logits (on logits it clamps every class score at zero,
  which can stall training with a dead class);
- without weights, the stem takes the data's channels (grey MNIST: 1); with weights, grey
  images are repeated to the 3 channels the weights take (``vision.adapt_channels``).

``model.width`` is ``mobilenet_v2``'s ``width_mult``, ``model.dropout`` the builders'
``dropout``. Parameters start from torchvision's initialisation. State dicts of the zoo's
earliest layout (written before the zoo took torchvision's keys) still load: see
``_earlier_layout``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from batchlab.models.freeze import freeze_backbone
from batchlab.models.layers import image_shape, imagenet_layout
from batchlab.models.vision import build_library_model
from batchlab.spec import ModelSpec

# zoo name -> torchvision builder
BUILDERS = {"mobilenet_v2": "mobilenet_v2", "squeezenet": "squeezenet1_1"}
HEAD = "classifier.1"  # the classifier layer of both: new for the data's classes, never frozen


def build_torchvision_zoo(spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Build zoo model ``spec.name`` (a key of ``BUILDERS``) for images ``input_shape``
    (C, H, W, at least 4x4) and ``num_classes`` classes, with ``spec.weights`` loaded and
    ``spec.freeze`` applied. Raises ModelError for data that is not images, images that are too
    small, weights that do not fit (the differing keys listed) or a weights name whose file is
    not in the torch hub cache (its path and URL given)."""
    c, h, w = image_shape(spec.name, input_shape, min_size=4)
    builder = BUILDERS[spec.name]
    kwargs: dict[str, Any] = {"width_mult": spec.width} if builder == "mobilenet_v2" else {}
    # the zoo's own stem for other channel counts, unless weights fix it at 3 (then grey
    # images are repeated to RGB by build_library_model)
    own_stem = spec.weights is None and c != 3
    library = spec.model_copy(update={"name": f"torchvision:{builder}", "kwargs": kwargs, "freeze": "none"})
    model = build_library_model(library, (3, h, w) if own_stem else (c, h, w), num_classes)
    small = not imagenet_layout(input_shape)
    if builder == "mobilenet_v2":
        _mobilenet_v2(model, c if own_stem else None, small)
    else:
        _squeezenet(model, c if own_stem else None, small)
    model._register_load_state_dict_pre_hook(_earlier_layout, with_module=True)
    if spec.freeze == "backbone":
        freeze_backbone(model, HEAD)
    return model


def _stem(conv: nn.Conv2d, channels: int | None, small: bool, padding: int | None = None) -> nn.Conv2d:
    """``conv`` with stride 1 (and ``padding``) on small images; a new conv of the same kind
    when the stem must take ``channels`` input channels."""
    if channels is not None:
        conv = nn.Conv2d(channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                         bias=conv.bias is not None)
    if small:
        conv.stride = (1, 1)
        if padding is not None:
            conv.padding = (padding, padding)
    return conv


def _mobilenet_v2(model: nn.Module, channels: int | None, small: bool) -> None:
    model.features[0][0] = _stem(model.features[0][0], channels, small)
    if small:  # the 24-channel stage's first block: its depthwise conv (no residual either way)
        model.features[2].conv[1][0].stride = (1, 1)


def _squeezenet(model: nn.Module, channels: int | None, small: bool) -> None:
    model.features[0] = _stem(model.features[0], channels, small, padding=1)
    if small:
        for i, layer in enumerate(model.features):
            if isinstance(layer, nn.MaxPool2d):  # padded: the zoo's pools always were
                model.features[i] = nn.MaxPool2d(3, 2, padding=1)
    model.classifier[2] = nn.Identity()  # no ReLU on the logits (see the module docstring)


def _earlier_layout(module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """Load-state-dict pre-hook: rename the keys of the zoo's earliest layout (a checkpoint of a
    run interrupted before an upgrade, a saved model) to torchvision's. That layout created the
    parameters in the same order; it named mobilenet_v2's block body ``block`` with the
    projection's conv and BatchNorm in one Sequential, and wrapped squeezenet's stem and Fire
    convs with their ReLUs (``features.0.0.weight``, ``squeeze.0.weight``), which shifted every
    later feature layer down by one."""
    keys = [k for k in state_dict if k.startswith(prefix)]
    if any(".block." in k for k in keys):  # mobilenet_v2
        for key in keys:
            head, sep, tail = key.partition(".block.")
            if not sep:
                continue
            index, _, rest = tail.partition(".")
            projection = len(module.get_submodule(head.removeprefix(prefix)).conv) - 2
            if int(index) == projection:  # block.<p>.0 (conv) -> conv.<p>, .1 (BN) -> conv.<p+1>
                sub, _, rest = rest.partition(".")
                index = str(projection + int(sub))
            state_dict[f"{head}.conv.{index}.{rest}"] = state_dict.pop(key)
    elif f"{prefix}features.0.0.weight" in state_dict and isinstance(module.features[0], nn.Conv2d):
        for key in keys:  # squeezenet
            value = state_dict.pop(key)
            tail = key.removeprefix(f"{prefix}features.")
            if tail != key.removeprefix(prefix):
                index, _, rest = tail.partition(".")
                rest = rest.removeprefix("0.") if index == "0" else rest
                for conv in ("squeeze", "expand1x1", "expand3x3"):
                    rest = rest.replace(f"{conv}.0.", f"{conv}.")
                key = f"{prefix}features.{0 if index == '0' else int(index) + 1}.{rest}"
            state_dict[key] = value

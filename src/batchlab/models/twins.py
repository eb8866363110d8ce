"""Zoo models with a torchvision twin: the same architecture, so torchvision's weights load.

The zoo's ``mobilenet_v2`` and ``squeezenet`` are written without torchvision but have exactly
the state-dict keys and shapes of torchvision's ``mobilenet_v2`` (at every ``width``) and
``squeezenet1_1``; ``tests/models/test_models_twins_vision.py`` checks keys, shapes and outputs
against torchvision itself. So ``model.weights`` takes a state-dict file in torchvision's format
(e.g. ``mobilenet_v2-b0353104.pth`` from the torch hub cache) with no torchvision installed, and
``model.freeze = "backbone"`` trains only the classifier layer, as for ``torchvision:`` models
(the same loading, head and freezing code: ``batchlab.models.weights`` / ``freeze``).

The file's classifier layer is ignored: the zoo model is built for the data's classes and its
head stays freshly initialised. With weights, the model is built for RGB (torchvision's weights
take 3 channels) and grey images are repeated to 3 channels on the way in, as for
``torchvision:`` models (``vision.adapt_channels``). Other zoo models take no weights:
``alexnet_small`` is not torchvision's ``alexnet`` (3x3 convs with BatchNorm, other widths), and
``mlp``, ``lenet5`` and ``cnn1d`` have no torchvision counterpart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from batchlab.errors import ModelError
from batchlab.models.freeze import freeze_backbone
from batchlab.models.vision import adapt_channels
from batchlab.models.weights import hub_cache_file, is_weights_file, load_backbone, local_file
from batchlab.spec import ModelSpec

Builder = Callable[[ModelSpec, tuple[int, ...], int], nn.Module]


@dataclass(frozen=True)
class Twin:
    """The torchvision counterpart of a zoo model."""

    builder: str  # torchvision.models builder with the same state-dict keys and shapes
    head: str  # the classifier layer's dotted path, the same in both (not loaded, not frozen)
    imagenet_url: str  # torchvision's ImageNet weights (IMAGENET1K_V1), named in error messages


TWINS: dict[str, Twin] = {
    "mobilenet_v2": Twin("mobilenet_v2", "classifier.1",
                         "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth"),
    "squeezenet": Twin("squeezenet1_1", "classifier.1",
                       "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth"),
}


def build_twin(
    builder: Builder, spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int
) -> nn.Module:
    """Build zoo model ``spec.name`` (a key of ``TWINS``) with ``builder``, load ``spec.weights``
    (a local state-dict file in torchvision's format) and apply ``spec.freeze``.

    Raises ModelError for a torchvision weights name (files only: resolving names needs
    torchvision), a file that does not fit (the differing keys listed), or data whose channels
    are neither 3 nor 1 when weights are given.
    """
    twin = TWINS[spec.name]
    if spec.weights is not None and not is_weights_file(spec.weights):
        raise ModelError(
            f"model.weights = '{spec.weights}' is a torchvision weights name, but zoo model "
            f"'{spec.name}' loads weights from a local file only (names are resolved through "
            f"torchvision, which the zoo does not need). Give the file's path, e.g. torchvision's "
            f"ImageNet weights at {hub_cache_file(twin.imagenet_url)} (download them from "
            f"{twin.imagenet_url}); or set model.name = 'torchvision:{twin.builder}' to use the "
            "name with torchvision installed."
        )
    rgb = spec.weights is not None and len(input_shape) == 3 and input_shape[0] != 3
    model = builder(spec, (3, *input_shape[1:]) if rgb else input_shape, num_classes)
    if rgb:
        adapt_channels(model, input_shape[0], spec.name)
    if spec.weights is not None:
        load_backbone(model, local_file(spec.weights), twin.head, spec.name)
    if spec.freeze == "backbone":
        freeze_backbone(model, twin.head)
    return model

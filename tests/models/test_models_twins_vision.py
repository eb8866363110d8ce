"""The zoo's mobilenet_v2 and squeezenet against torchvision's builders (batchlab.models.twins).

Same state-dict keys and shapes; torchvision's weights file loads through model.weights and gives
identical eval outputs on ImageNet-sized images; on small images the only difference is the
stride/padding the zoo documents. Also checks that ``torchvision_twins.json`` (the key/shape
lists the main-environment tests use, where torchvision is absent) is torchvision's; rewrite it
with ``python tests/models/test_models_twins_vision.py`` in a venv with torchvision.
Run in .ci/run's .venv-vision (``python -m pytest -m vision``); skipped without torchvision.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

try:
    import torchvision
except Exception as err:  # missing, or built for another torch ("torchvision::nms does not exist")
    pytest.skip(f"torchvision is not importable: {err}", allow_module_level=True)

from batchlab.models import build_model
from batchlab.models.twins import TWINS
from batchlab.models.weights import hub_cache_file
from batchlab.spec import ModelSpec

pytestmark = pytest.mark.vision
RECORDED = Path(__file__).with_name("torchvision_twins.json")
# (zoo name, zoo width, torchvision builder kwargs): the zoo's default and a rounded width
CASES = [("mobilenet_v2", 1.0, {}), ("mobilenet_v2", 0.5, {"width_mult": 0.5}), ("squeezenet", 1.0, {})]


def torchvision_model(zoo: str, kwargs: dict) -> nn.Module:
    torch.manual_seed(7)
    model = torchvision.models.get_model(TWINS[zoo].builder, **kwargs).eval()
    for m in model.modules():  # random running statistics, so BatchNorm is not the identity
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model


def shapes(state: dict[str, torch.Tensor]) -> list[list]:
    return [[k, list(v.shape)] for k, v in state.items()]


def recorded_states() -> list[dict]:
    """What torchvision_twins.json holds: each case's torchvision state-dict keys and shapes."""
    return [{"zoo": zoo, "width": width, "builder": TWINS[zoo].builder, "kwargs": kwargs,
             "state": shapes(torchvision.models.get_model(TWINS[zoo].builder, **kwargs).state_dict())}
            for zoo, width, kwargs in CASES]


def zoo_with_weights(zoo: str, width: float, file: Path, size: int) -> nn.Module:
    """The zoo model with torchvision's file loaded, for 1,000 classes and the file's head copied
    in (batchlab keeps the head new; copying it makes whole outputs comparable)."""
    model = build_model(ModelSpec(name=zoo, width=width, weights=str(file)), (3, size, size), 1000)
    head = TWINS[zoo].head
    state = torch.load(file, weights_only=True)
    model.get_submodule(head).load_state_dict({k.removeprefix(f"{head}."): v for k, v in state.items()
                                                if k.startswith(f"{head}.")})
    return model.eval()


def test_the_recorded_key_and_shape_lists_are_torchvisions():
    assert json.loads(RECORDED.read_text()) == recorded_states()


@pytest.mark.parametrize(("zoo", "width", "kwargs"), CASES)
def test_state_dict_keys_and_shapes_equal_torchvisions(zoo, width, kwargs):
    theirs = torchvision.models.get_model(TWINS[zoo].builder, **kwargs).state_dict()
    for size in (32, 224):  # the small-image strides change no parameter
        ours = build_model(ModelSpec(name=zoo, width=width), (3, size, size), 1000).state_dict()
        assert shapes(ours) == shapes(theirs)


@pytest.mark.parametrize(("zoo", "width", "kwargs"), CASES)
def test_torchvision_weights_file_gives_identical_outputs_at_imagenet_size(tmp_path, zoo, width, kwargs):
    theirs = torchvision_model(zoo, kwargs)
    torch.save(theirs.state_dict(), tmp_path / "tv.pth")
    ours = zoo_with_weights(zoo, width, tmp_path / "tv.pth", 224)
    if zoo == "squeezenet":
        theirs.classifier[2] = nn.Identity()  # the zoo leaves out the ReLU on the logits (documented)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(ours.features(x), theirs.features(x))
        out = ours(x)
        assert torch.equal(out, theirs(x))
    assert out.std() > 0


def small_image_strides(zoo: str, model: nn.Module) -> nn.Module:
    """torchvision's model with the zoo's documented small-image strides and padding."""
    if zoo == "mobilenet_v2":
        model.features[0][0].stride = (1, 1)  # the stem
        model.features[2].conv[1][0].stride = (1, 1)  # the 24-channel stage's depthwise conv
    else:
        model.features[0].stride, model.features[0].padding = (1, 1), (1, 1)
        for i in (2, 5, 8):
            model.features[i] = nn.MaxPool2d(3, 2, padding=1)
        model.classifier[2] = nn.Identity()
    return model


@pytest.mark.parametrize(("zoo", "width", "kwargs"), CASES)
def test_on_small_images_only_the_documented_strides_differ(tmp_path, zoo, width, kwargs):
    theirs = torchvision_model(zoo, kwargs)
    torch.save(theirs.state_dict(), tmp_path / "tv.pth")
    ours = zoo_with_weights(zoo, width, tmp_path / "tv.pth", 32)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(ours(x), theirs(x))  # the strides do differ ...
        assert torch.equal(ours(x), small_image_strides(zoo, theirs)(x))  # ... and nothing else


def test_the_named_imagenet_files_are_torchvisions():
    for zoo, twin in TWINS.items():
        weights = torchvision.models.get_model_weights(twin.builder).IMAGENET1K_V1
        assert weights.url == twin.imagenet_url, zoo
        assert hub_cache_file(weights.url).name == Path(twin.imagenet_url).name


def test_alexnet_small_is_not_torchvisions_alexnet():
    """Said in the README and twins.py: alexnet_small takes no torchvision weights."""
    ours = build_model(ModelSpec(name="alexnet_small"), (3, 224, 224), 1000).state_dict()
    theirs = torchvision.models.alexnet().state_dict()
    assert shapes(ours) != shapes(theirs)
    assert "alexnet_small" not in TWINS


if __name__ == "__main__":
    RECORDED.write_text("[\n" + ",\n".join(json.dumps(case) for case in recorded_states()) + "\n]\n")
    print(f"wrote {RECORDED}")

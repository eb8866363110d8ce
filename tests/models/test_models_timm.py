"""timm: models: reset_classifier for the data's classes, local weights, a frozen backbone.

timm is an optional extra (.ci/run installs it and checks that it imports); skipped without it.
"""

from __future__ import annotations

import pytest
import torch

try:
    import timm
except Exception as err:  # missing, or its torchvision does not import beside this torch
    pytest.skip(f"timm is not importable: {err}", allow_module_level=True)

from batchlab.errors import ModelError
from batchlab.models import build_model
from batchlab.spec import ModelSpec, TrainSpec
from batchlab.train.optim import build_optimizer

RGB = (3, 32, 32)


def build(name: str, shape=RGB, classes: int = 4, **fields):
    torch.manual_seed(0)
    return build_model(ModelSpec(name=f"timm:{name}", **fields), shape, classes)


def test_classifier_is_reset_for_the_data_classes():
    model = build("resnet18").eval()
    assert model.get_classifier().out_features == 4
    assert model(torch.randn(2, *RGB)).shape == (2, 4)


def test_nested_head_and_grey_images():
    model = build("convnext_atto", shape=(1, 32, 32), classes=3).eval()
    assert model.get_classifier() is model.get_submodule("head.fc")
    grey = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(grey), model(grey.repeat(1, 3, 1, 1)))


def test_unknown_name_suggests_close_ones():
    with pytest.raises(ModelError, match=r"no such model. Did you mean .*resnet18.*timm.list_models"):
        build("resnet18x")


def test_dropout_is_timm_drop_rate():
    assert build("resnet18", dropout=0.3).drop_rate == 0.3


def test_safetensors_weights_load_the_backbone(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(7)
    state = timm.create_model("resnet18", pretrained=False).state_dict()
    save_file(state, str(tmp_path / "model.safetensors"))
    model = build("resnet18", weights=str(tmp_path / "model.safetensors"))
    own = model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in state.items() if not k.startswith("fc."))
    assert own["fc.weight"].shape == (4, 512)


def test_weights_names_are_torchvision_only():
    with pytest.raises(ModelError, match="timm models load weights from a local file only"):
        build("resnet18", weights="IMAGENET1K_V1")


def test_freeze_backbone_trains_only_the_reset_classifier():
    model = build("resnet18", freeze="backbone")
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]
    opt = build_optimizer(TrainSpec(), model.parameters(), 0.1)
    assert sum(p.numel() for p in opt.param_groups[0]["params"]) == 4 * 512 + 4
    model.train()
    before = model.bn1.running_mean.clone()
    model(torch.randn(4, *RGB))  # a training-mode forward: the frozen BatchNorm keeps its statistics
    assert torch.equal(model.bn1.running_mean, before)

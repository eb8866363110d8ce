"""torchvision: models: builders with a new head, weights from local files, a frozen backbone.

torchvision is a core dependency: these tests run in the one environment, with no skip.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torchvision
from torch import nn

from batchlab.data.memory import InMemoryData
from batchlab.errors import ModelError
from batchlab.models import build_model
from batchlab.models.vision import _replace, _torchvision_head
from batchlab.models.weights import hub_cache_file
from batchlab.spec import ModelSpec, RunConfig, TrainSpec
from batchlab.train.inputs import RunInputs, spec_model
from batchlab.train.loop import train_run
from batchlab.train.optim import build_optimizer

RGB = (3, 32, 32)


def build(name: str, shape=RGB, classes: int = 5, **fields) -> nn.Module:
    torch.manual_seed(0)
    return build_model(ModelSpec(name=f"torchvision:{name}", **fields), shape, classes)


def reference_state(name: str, **kwargs) -> dict[str, torch.Tensor]:
    """A randomly initialised state dict of the builder's own model (ImageNet's 1,000 classes)."""
    torch.manual_seed(123)
    return torchvision.models.get_model(name, **kwargs).state_dict()


@pytest.mark.parametrize(("name", "head", "kind"), [
    ("mobilenet_v2", "classifier.1", nn.Linear),    # classifier[-1]
    ("resnet18", "fc", nn.Linear),                  # fc
    ("squeezenet1_1", "classifier.1", nn.Conv2d),   # a 1x1 conv inside classifier
    ("densenet121", "classifier", nn.Linear),       # classifier itself
])
def test_head_is_replaced_for_the_data_classes(name, head, kind):
    model = build(name, classes=7)
    layer = model.get_submodule(head)
    assert isinstance(layer, kind)
    assert (layer.out_features if kind is nn.Linear else layer.out_channels) == 7
    model.eval()
    assert model(torch.randn(2, *RGB)).shape == (2, 7)


def test_vit_head_is_found_at_heads_head():
    # vit_b_16 is 86 M parameters: the same class, 2 layers 64 wide, has the same layout
    vit = torchvision.models.VisionTransformer(image_size=32, patch_size=16, num_layers=2, num_heads=2,
                                               hidden_dim=64, mlp_dim=64)
    assert _torchvision_head(vit, "vit") == "heads.head"
    _replace(vit, "heads.head", 4)
    assert vit(torch.randn(2, *RGB)).shape == (2, 4)


def test_grey_images_are_repeated_to_the_three_colour_channels():
    model = build("resnet18", shape=(1, 32, 32)).eval()
    grey = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(grey), model(grey.repeat(1, 3, 1, 1)))


def test_other_channel_counts_are_refused():
    with pytest.raises(ModelError, match="takes images of 3 channels but this data's images have 2"):
        build("resnet18", shape=(2, 32, 32))


def test_non_image_data_is_refused():
    with pytest.raises(ModelError, match=r"takes images \(channels, height, width\).*shape \(64,\)"):
        build("resnet18", shape=(64,))


def test_unknown_builder_suggests_close_names():
    with pytest.raises(ModelError, match="no such model. Did you mean mobilenet_v2"):
        build("mobilenet_v22")


def test_kwargs_reach_the_builder_and_bad_ones_are_named():
    assert build("mobilenet_v2", kwargs={"width_mult": 0.5}).features[0][0].out_channels == 16
    with pytest.raises(ModelError, match="building 'torchvision:resnet18' raised TypeError.*wdith"):
        build("resnet18", kwargs={"wdith": 2})
    with pytest.raises(ModelError, match="model.kwargs sets num_classes"):
        build("resnet18", kwargs={"num_classes": 3})


def test_dropout_reaches_the_builder():
    assert build("mobilenet_v2", dropout=0.4).classifier[0].p == 0.4


def test_auxiliary_heads_are_off_so_training_returns_logits():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torchvision's FutureWarning on its default init, too
        model = build("googlenet", shape=(3, 64, 64)).train()
        assert build("inception_v3", shape=(3, 75, 75)).fc.out_features == 5
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 5)


# --------------------------------------------------------------------------- weights from a file


def test_local_weights_load_the_backbone_and_the_head_is_new(tmp_path):
    state = reference_state("mobilenet_v2")
    torch.save(state, tmp_path / "w.pth")
    model = build("mobilenet_v2", weights=str(tmp_path / "w.pth"))
    own = model.state_dict()
    backbone = [k for k in state if not k.startswith("classifier.1.")]
    assert backbone and all(torch.equal(own[k], state[k]) for k in backbone)
    assert own["classifier.1.weight"].shape == (5, 1280)  # the file's head (1000 classes) is not used


def test_checkpoint_dicts_and_dataparallel_prefixes_are_unwrapped(tmp_path):
    state = reference_state("resnet18")
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "c.pt")
    model = build("resnet18", weights=str(tmp_path / "c.pt"))
    assert torch.equal(model.state_dict()["conv1.weight"], state["conv1.weight"])


def test_safetensors_weights(tmp_path):
    safetensors = pytest.importorskip("safetensors.torch")
    state = reference_state("resnet18")
    safetensors.save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "w.safetensors"))
    model = build("resnet18", weights=str(tmp_path / "w.safetensors"))
    assert torch.equal(model.state_dict()["layer4.1.bn2.running_var"], state["layer4.1.bn2.running_var"])


def test_weights_of_another_architecture_list_the_mismatched_keys(tmp_path):
    torch.save(reference_state("resnet18"), tmp_path / "resnet.pth")
    with pytest.raises(ModelError) as err:
        build("mobilenet_v2", weights=str(tmp_path / "resnet.pth"))
    text = str(err.value)
    assert "does not fit torchvision:mobilenet_v2" in text
    assert "missing from the file (" in text and "features.0.0.weight" in text
    assert "in the file but not in the model (" in text and "conv1.weight" in text


def test_weights_of_another_width_list_the_shapes(tmp_path):
    torch.save(reference_state("mobilenet_v2", width_mult=0.5), tmp_path / "half.pth")
    with pytest.raises(ModelError, match=r"shape in the file vs the model \(\d+\): features.0.0.weight "
                                         r"\(16, 3, 3, 3\) vs \(32, 3, 3, 3\)"):
        build("mobilenet_v2", weights=str(tmp_path / "half.pth"))


def test_missing_and_unreadable_weight_files(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        build("resnet18", weights=str(tmp_path / "nope.pth"))
    (tmp_path / "bad.pth").write_bytes(b"not a torch file")
    with pytest.raises(ModelError, match="cannot read the weights file"):
        build("resnet18", weights=str(tmp_path / "bad.pth"))
    torch.save(nn.Linear(2, 2), tmp_path / "module.pth")  # a pickled module: refused, never run
    with pytest.raises(ModelError, match="whole pickled model is refused"):
        build("resnet18", weights=str(tmp_path / "module.pth"))


# --------------------------------------------------------------------------- weights by name


def test_weights_name_absent_from_the_hub_cache_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    where = tmp_path / "torch" / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth"
    with pytest.raises(ModelError) as err:
        build("mobilenet_v2", weights="IMAGENET1K_V1")
    assert f"put the file at {where}" in str(err.value)
    assert "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth" in str(err.value)
    assert not where.exists()  # nothing was downloaded


@pytest.mark.parametrize("name", ["IMAGENET1K_V1", "MobileNet_V2_Weights.IMAGENET1K_V1"])
def test_weights_name_reads_the_hub_cache_file(tmp_path, monkeypatch, name):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    weights = torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1
    cached = hub_cache_file(weights.url)
    assert cached == tmp_path / "torch" / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth"
    cached.parent.mkdir(parents=True)
    state = reference_state("mobilenet_v2")
    torch.save(state, cached)
    model = build("mobilenet_v2", weights=name)
    assert torch.equal(model.state_dict()["features.18.0.weight"], state["features.18.0.weight"])
    assert model.get_submodule("classifier.1").out_features == 5


def test_unknown_weights_names_list_the_builder_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ModelError, match="no weights 'IMAGENET9K'.*DEFAULT, IMAGENET1K_V1, IMAGENET1K_V2"):
        build("mobilenet_v2", weights="IMAGENET9K")
    with pytest.raises(ModelError, match="names ResNet18_Weights, but torchvision:mobilenet_v2 takes "
                                         "MobileNet_V2_Weights"):
        build("mobilenet_v2", weights="ResNet18_Weights.IMAGENET1K_V1")


# --------------------------------------------------------------------------- freezing


def test_freeze_backbone_leaves_only_the_head_trainable_and_to_the_optimizer():
    model = build("mobilenet_v2", freeze="backbone")
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        "classifier.1.weight", "classifier.1.bias"]
    opt = build_optimizer(TrainSpec(), model.parameters(), 0.1)
    assert [p.shape for p in opt.param_groups[0]["params"]] == [(5, 1280), (5,)]


def test_frozen_backbone_does_not_change_in_a_run_and_the_head_learns():
    data = InMemoryData.from_objects((torch.randn(48, *RGB), torch.arange(48) % 3))
    built = []

    def keep(spec, d):
        model = spec_model(spec, d)
        built.append((model, copy.deepcopy(model.state_dict())))
        return model

    cfg = RunConfig(data=data.spec(), model=ModelSpec(name="torchvision:resnet18", freeze="backbone"),
                    train=TrainSpec(batch_size=8, epochs=2, lr=0.05, threads=1, weight_decay=1e-3,
                                    checkpoint=False))
    end = train_run(cfg, lambda e: None, inputs=RunInputs(load_data=data.dataset, build_model=keep))
    assert end.status == "completed", end.error
    model, before = built[0]
    after = model.state_dict()
    frozen = [k for k in before if not k.startswith("fc.")]
    assert any("running_mean" in k for k in frozen)  # BatchNorm statistics are frozen too
    assert [k for k in frozen if not torch.equal(before[k], after[k])] == []
    assert not torch.equal(before["fc.weight"], after["fc.weight"])


def test_without_freeze_every_layer_trains():
    data = InMemoryData.from_objects((torch.randn(40, *RGB), torch.arange(40) % 2))  # 32 train: no batch of 1
    built = []

    def keep(spec, d):
        model = spec_model(spec, d)
        built.append((model, copy.deepcopy(model.state_dict())))
        return model

    cfg = RunConfig(data=data.spec(), model=ModelSpec(name="torchvision:resnet18"),
                    train=TrainSpec(batch_size=8, epochs=1, lr=0.05, threads=1, checkpoint=False))
    end = train_run(cfg, lambda e: None, inputs=RunInputs(load_data=data.dataset, build_model=keep))
    assert end.status == "completed", end.error
    model, before = built[0]
    assert not torch.equal(before["conv1.weight"], model.state_dict()["conv1.weight"])

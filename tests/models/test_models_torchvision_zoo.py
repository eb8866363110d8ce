"""The zoo's mobilenet_v2 and squeezenet are torchvision's models (batchlab.models.torchvision_zoo):
torchvision's keys, outputs equal to torchvision's at ImageNet size and, on small images, to
torchvision's with the documented strides; weights files and names, freeze, grey images, the
zoo's earliest layout, and the errors."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from batchlab.data.memory import InMemoryData
from batchlab.errors import ModelError
from batchlab.fingerprint import weights_file
from batchlab.models import build_model
from batchlab.models.torchvision_zoo import BUILDERS, HEAD
from batchlab.spec import ModelSpec, RunConfig, TrainSpec
from batchlab.train.inputs import RunInputs, spec_model
from batchlab.train.loop import train_run

# (zoo name, zoo width, torchvision builder kwargs): the default and a rounded width
CASES = [("mobilenet_v2", 1.0, {}), ("mobilenet_v2", 0.5, {"width_mult": 0.5}), ("squeezenet", 1.0, {})]


def build(zoo: str, shape=(3, 32, 32), classes: int = 10, **fields) -> nn.Module:
    torch.manual_seed(0)
    return build_model(ModelSpec(name=zoo, **fields), shape, classes)


def torchvision_model(zoo: str, kwargs: dict) -> nn.Module:
    torch.manual_seed(7)
    model = torchvision.models.get_model(BUILDERS[zoo], **kwargs).eval()
    for m in model.modules():  # random running statistics, so BatchNorm is not the identity
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model


def saved(tmp_path: Path, zoo: str, kwargs: dict | None = None) -> tuple[Path, nn.Module]:
    model = torchvision_model(zoo, kwargs or {})
    torch.save(model.state_dict(), tmp_path / f"{zoo}.pth")
    return tmp_path / f"{zoo}.pth", model


def zoo_with_weights(zoo: str, width: float, file: Path, size: int) -> nn.Module:
    """The zoo model with the file loaded, for 1,000 classes and the file's head copied in
    (batchlab keeps the head new; copying it makes whole outputs comparable)."""
    model = build_model(ModelSpec(name=zoo, width=width, weights=str(file)), (3, size, size), 1000)
    state = torch.load(file, weights_only=True)
    model.get_submodule(HEAD).load_state_dict({k.removeprefix(f"{HEAD}."): v for k, v in state.items()
                                               if k.startswith(f"{HEAD}.")})
    return model.eval()


def small_image_strides(zoo: str, model: nn.Module) -> nn.Module:
    """torchvision's model with the zoo's documented small-image strides and padding."""
    if zoo == "mobilenet_v2":
        model.features[0][0].stride = (1, 1)  # the stem
        model.features[2].conv[1][0].stride = (1, 1)  # the 24-channel stage's depthwise conv
    else:
        model.features[0].stride, model.features[0].padding = (1, 1), (1, 1)
        for i in (2, 5, 8):
            model.features[i] = nn.MaxPool2d(3, 2, padding=1)
    return model


def no_logit_relu(zoo: str, model: nn.Module) -> nn.Module:
    if zoo == "squeezenet":
        model.classifier[2] = nn.Identity()  # the zoo leaves out the ReLU on the logits (documented)
    return model


@pytest.mark.parametrize(("zoo", "width", "kwargs"), CASES)
def test_at_imagenet_size_the_zoo_model_is_torchvisions(tmp_path, zoo, width, kwargs):
    file, theirs = saved(tmp_path, zoo, kwargs)
    ours = zoo_with_weights(zoo, width, file, 224)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, v.shape) for k, v in theirs.state_dict().items()]
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        out = ours(x)
        assert torch.equal(out, no_logit_relu(zoo, theirs)(x))
    assert out.std() > 0


@pytest.mark.parametrize(("zoo", "width", "kwargs"), CASES)
def test_on_small_images_only_the_documented_strides_differ(tmp_path, zoo, width, kwargs):
    file, theirs = saved(tmp_path, zoo, kwargs)
    ours = zoo_with_weights(zoo, width, file, 32)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(ours(x), theirs(x))  # the strides do differ ...
        assert torch.equal(ours(x), no_logit_relu(zoo, small_image_strides(zoo, theirs))(x))  # ... only


@pytest.mark.parametrize(("zoo", "size", "side"), [
    ("mobilenet_v2", 127, 16), ("mobilenet_v2", 128, 4), ("mobilenet_v2", 224, 7),
    ("squeezenet", 127, 16), ("squeezenet", 128, 7), ("squeezenet", 224, 13),
])
def test_images_of_128_px_or_more_get_torchvisions_strides(zoo, size, side):
    model = build(zoo, (3, size, size)).eval()
    with torch.no_grad():
        assert model.features(torch.randn(1, 3, size, size)).shape[-2:] == (side, side)


def test_the_head_is_new_for_the_datas_classes(tmp_path):
    file, theirs = saved(tmp_path, "mobilenet_v2")
    own = build("mobilenet_v2", weights=str(file)).state_dict()
    state = theirs.state_dict()
    assert [k for k in state if not k.startswith(HEAD) and not torch.equal(own[k], state[k])] == []
    assert own[f"{HEAD}.weight"].shape == (10, 1280)  # the data's classes, not the file's 1,000
    assert torch.equal(own[f"{HEAD}.weight"], build("mobilenet_v2").state_dict()[f"{HEAD}.weight"])


def test_a_weights_name_loads_the_file_from_the_torch_hub_cache(tmp_path, monkeypatch):
    """The zoo model now takes torchvision's weights names, read from the hub cache."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    where = tmp_path / "torch" / "hub" / "checkpoints" / "squeezenet1_1-b8a52dc0.pth"
    with pytest.raises(ModelError) as err:
        build("squeezenet", weights="IMAGENET1K_V1")
    assert str(where) in str(err.value)
    assert "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth" in str(err.value)
    where.parent.mkdir(parents=True)
    _, theirs = saved(tmp_path, "squeezenet")
    torch.save(theirs.state_dict(), where)
    own = build("squeezenet", weights="IMAGENET1K_V1").state_dict()
    assert torch.equal(own["features.3.expand3x3.weight"], theirs.state_dict()["features.3.expand3x3.weight"])
    # the run's fingerprint hashes that file: replacing it retrains the runs that used it
    assert weights_file(ModelSpec(name="squeezenet", weights="IMAGENET1K_V1")) == where


def test_grey_images_without_weights_get_a_grey_stem_and_with_weights_are_repeated(tmp_path):
    assert build("squeezenet", (1, 28, 28)).features[0].in_channels == 1
    assert build("mobilenet_v2", (1, 28, 28)).features[0][0].in_channels == 1
    file, theirs = saved(tmp_path, "squeezenet")
    model = build("squeezenet", (1, 28, 28), weights=str(file)).eval()
    assert torch.equal(model.features[0].weight, theirs.features[0].weight)
    grey = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(grey), model(grey.repeat(1, 3, 1, 1)))
    with pytest.raises(ModelError, match="takes images of 3 channels but this data's images have 2"):
        build("squeezenet", (2, 32, 32), weights=str(file))


def test_a_file_of_another_width_lists_the_shapes(tmp_path):
    file, _ = saved(tmp_path, "mobilenet_v2", {"width_mult": 0.5})
    with pytest.raises(ModelError, match=r"features.0.0.weight \(16, 3, 3, 3\) vs \(32, 3, 3, 3\)"):
        build("mobilenet_v2", weights=str(file))


def test_other_zoo_models_still_refuse_weights():
    with pytest.raises(ModelError, match=r"nor a zoo model built by torchvision \(mobilenet_v2, squeezenet"):
        build("alexnet_small", weights="w.pth")


def test_freeze_trains_only_the_head_and_keeps_batchnorm_statistics(tmp_path):
    file, _ = saved(tmp_path, "mobilenet_v2")
    data = InMemoryData.from_objects((torch.randn(40, 3, 8, 8), torch.arange(40) % 2))
    built = []

    def keep(spec, d):
        model = spec_model(spec, d)
        built.append((model, copy.deepcopy(model.state_dict())))
        return model

    model_spec = ModelSpec(name="mobilenet_v2", weights=str(file), freeze="backbone")
    cfg = RunConfig(data=data.spec(), model=model_spec,
                    train=TrainSpec(batch_size=8, epochs=1, lr=0.05, threads=1, checkpoint=False))
    end = train_run(cfg, lambda e: None, inputs=RunInputs(load_data=data.dataset, build_model=keep))
    assert end.status == "completed", end.error
    model, before = built[0]
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [f"{HEAD}.weight", f"{HEAD}.bias"]
    after = model.state_dict()
    frozen = [k for k in before if not k.startswith(f"{HEAD}.")]
    assert any("running_mean" in k for k in frozen)
    assert [k for k in frozen if not torch.equal(before[k], after[k])] == []
    assert not torch.equal(before[f"{HEAD}.weight"], after[f"{HEAD}.weight"])


@pytest.mark.parametrize("zoo", ["mobilenet_v2", "squeezenet"])
def test_state_dicts_of_the_earlier_zoo_layout_still_load(zoo):
    """A checkpoint written before the zoo took torchvision's layout (a run interrupted before an
    upgrade) resumes: ``zoo_earlier_keys.json`` lists the earlier code's keys, in the same
    parameter order as now."""
    earlier = json.loads(Path(__file__).with_name("zoo_earlier_keys.json").read_text())[zoo]
    now = build(zoo).state_dict()
    assert len(earlier) == len(now) and earlier != list(now)
    values = [v + 1 for v in now.values()]  # anything but the fresh model's values
    model = build(zoo)
    model.load_state_dict(dict(zip(earlier, values, strict=True)))  # strict: every key found a home
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), values, strict=True))


def test_cli_a_missing_weights_file_is_a_clear_error(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('name = "t"\n[data]\nname = "digits"\n[model]\nname = "squeezenet"\n'
                    'weights = "IMAGENET1K_V1"\n[train]\nepochs = 1\n')
    res = subprocess.run([sys.executable, "-m", "batchlab", "sweep", str(spec), "--store",
                          str(tmp_path / "s.db")], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**os.environ, "TORCH_HOME": str(tmp_path / "torch")})
    out = res.stdout + res.stderr
    assert res.returncode == 2, out
    assert "squeezenet1_1-b8a52dc0.pth" in out and "Traceback" not in out


def test_alexnet_small_is_not_torchvisions_alexnet():
    """Said in docs/spec.md: alexnet_small takes no torchvision weights."""
    ours = build_model(ModelSpec(name="alexnet_small"), (3, 224, 224), 1000).state_dict()
    theirs = torchvision.models.alexnet().state_dict()
    assert [v.shape for v in ours.values()] != [v.shape for v in theirs.values()]

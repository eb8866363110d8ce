"""The zoo's torchvision twins without torchvision: torchvision-format weights files load into
``mobilenet_v2`` / ``squeezenet`` (model.weights), model.freeze works, the ImageNet layout from
128 px, and the errors. torchvision's keys and shapes come from ``torchvision_twins.json``
(checked against torchvision itself by test_models_twins_vision.py)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from batchlab.data.memory import InMemoryData
from batchlab.errors import ModelError
from batchlab.models import build_model
from batchlab.models.twins import TWINS
from batchlab.spec import ModelSpec, RunConfig, TrainSpec
from batchlab.train.inputs import RunInputs, spec_model
from batchlab.train.loop import train_run

RECORDED = json.loads(Path(__file__).with_name("torchvision_twins.json").read_text())
CASES = [(c["zoo"], c["width"]) for c in RECORDED]


def torchvision_state(zoo: str, width: float = 1.0, seed: int = 3) -> dict[str, torch.Tensor]:
    """A random state dict with exactly torchvision's keys and shapes (1,000-class head)."""
    case = next(c for c in RECORDED if c["zoo"] == zoo and c["width"] == width)
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in case["state"]:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.1
    return state


def saved(tmp_path: Path, zoo: str, width: float = 1.0) -> tuple[Path, dict[str, torch.Tensor]]:
    state = torchvision_state(zoo, width)
    torch.save(state, tmp_path / f"{zoo}-{width}.pth")
    return tmp_path / f"{zoo}-{width}.pth", state


def build(zoo: str, shape=(3, 32, 32), classes: int = 10, **fields) -> nn.Module:
    torch.manual_seed(0)
    return build_model(ModelSpec(name=zoo, **fields), shape, classes)


@pytest.mark.parametrize(("zoo", "width"), CASES)
def test_zoo_state_dict_has_torchvisions_keys_and_shapes(zoo, width):
    case = next(c for c in RECORDED if c["zoo"] == zoo and c["width"] == width)
    for size in (32, 224):
        state = build(zoo, (3, size, size), 1000, width=width).state_dict()
        assert [[k, list(v.shape)] for k, v in state.items()] == case["state"]


@pytest.mark.parametrize(("zoo", "width"), CASES)
def test_a_torchvision_weights_file_loads_and_the_head_stays_new(tmp_path, zoo, width):
    file, state = saved(tmp_path, zoo, width)
    model = build(zoo, width=width, weights=str(file))
    head = f"{TWINS[zoo].head}."
    own = model.state_dict()
    backbone = [k for k in state if not k.startswith(head)]
    assert len(backbone) == len(state) - 2
    assert [k for k in backbone if not torch.equal(own[k], state[k])] == []
    assert own[f"{head}weight"].shape[0] == 10  # built for the data's classes, not the file's 1,000
    fresh = build(zoo, width=width).state_dict()
    assert torch.equal(own[f"{head}weight"], fresh[f"{head}weight"])  # the same new head as without
    assert model.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_grey_images_are_repeated_to_the_rgb_weights(tmp_path):
    file, state = saved(tmp_path, "squeezenet")
    model = build("squeezenet", (1, 28, 28), weights=str(file)).eval()
    assert model.features[0].weight.shape == (64, 3, 3, 3)
    assert torch.equal(model.features[0].weight, state["features.0.weight"])
    grey = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(grey), model(grey.repeat(1, 3, 1, 1)))
    assert build("squeezenet", (1, 28, 28)).features[0].in_channels == 1  # without weights: as before


def test_other_channel_counts_with_weights_are_refused(tmp_path):
    file, _ = saved(tmp_path, "mobilenet_v2")
    with pytest.raises(ModelError, match="takes images of 3 channels but this data's images have 2"):
        build("mobilenet_v2", (2, 32, 32), weights=str(file))


def test_a_file_of_the_other_architecture_lists_the_differences(tmp_path):
    file, _ = saved(tmp_path, "squeezenet")
    with pytest.raises(ModelError) as err:
        build("mobilenet_v2", weights=str(file))
    text = str(err.value)
    assert "does not fit mobilenet_v2 (its classifier head 'classifier.1' aside)" in text
    assert "missing from the file (312): features.0.0.weight" in text
    assert "in the file but not in the model (50): features.0.weight" in text


def test_another_width_lists_the_shapes(tmp_path):
    file, _ = saved(tmp_path, "mobilenet_v2", 0.5)
    with pytest.raises(ModelError, match=r"shape in the file vs the model \(\d+\): features.0.0.weight "
                                         r"\(16, 3, 3, 3\) vs \(32, 3, 3, 3\)"):
        build("mobilenet_v2", weights=str(file))


def test_a_weights_name_says_where_the_file_is_and_how_to_use_the_name(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    where = tmp_path / "torch" / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth"
    with pytest.raises(ModelError) as err:
        build("mobilenet_v2", weights="IMAGENET1K_V1")
    text = str(err.value)
    assert "loads weights from a local file only" in text and f"at {where}" in text
    assert "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth" in text
    assert "model.name = 'torchvision:mobilenet_v2'" in text


def test_zoo_models_without_a_twin_still_refuse_weights():
    with pytest.raises(ModelError, match=r"nor a zoo model with torchvision's architecture "
                                         r"\(mobilenet_v2, squeezenet\)"):
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
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        "classifier.1.weight", "classifier.1.bias"]
    after = model.state_dict()
    frozen = [k for k in before if not k.startswith("classifier.1.")]
    assert any("running_mean" in k for k in frozen)
    assert [k for k in frozen if not torch.equal(before[k], after[k])] == []
    assert not torch.equal(before["classifier.1.weight"], after["classifier.1.weight"])


@pytest.mark.parametrize(("zoo", "size", "side"), [
    ("mobilenet_v2", 127, 16), ("mobilenet_v2", 128, 4), ("mobilenet_v2", 224, 7),
    ("squeezenet", 127, 16), ("squeezenet", 128, 7), ("squeezenet", 224, 13),
])
def test_images_of_128_px_or_more_get_torchvisions_strides(zoo, size, side):
    model = build(zoo, (3, size, size)).eval()
    with torch.no_grad():
        assert model.features(torch.randn(1, 3, size, size)).shape[-2:] == (side, side)


def test_cli_a_weights_name_on_a_zoo_model_is_a_clear_error(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('name = "t"\n[data]\nname = "digits"\n[model]\nname = "squeezenet"\n'
                    'weights = "IMAGENET1K_V1"\n[train]\nepochs = 1\n')
    res = subprocess.run([sys.executable, "-m", "batchlab", "sweep", str(spec), "--store",
                          str(tmp_path / "s.db")], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode == 2, out
    assert "zoo model 'squeezenet' loads weights from a local file only" in out
    assert "Traceback" not in out


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

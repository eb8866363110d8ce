"""Without torchvision/timm (the main suite): clear errors, and the weights loader on plain modules.

These run in every environment: a missing package is simulated (``sys.modules[name] = None``)
and a broken one by an import hook that fails as a mismatched torchvision does.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.abc import MetaPathFinder

import pytest
import torch
from torch import nn

from batchlab.errors import ModelError
from batchlab.models import build_model
from batchlab.models.weights import load_backbone, read_state_dict
from batchlab.spec import ModelSpec


class NotInstalled(MetaPathFinder):
    """Imports of ``packages`` fail as they do when the package is not installed."""

    def __init__(self, packages: tuple[str, ...]) -> None:
        self.packages = packages

    def find_spec(self, fullname, path=None, target=None):
        root = fullname.partition(".")[0]
        if root in self.packages:
            raise ModuleNotFoundError(f"No module named {root!r}", name=root)
        return None


class Mismatched(MetaPathFinder):
    """Importing torchvision fails the way a build for another torch does."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] == "torchvision":
            raise RuntimeError("operator torchvision::nms does not exist")
        return None


def hide(monkeypatch, *packages: str, finder: MetaPathFinder | None = None) -> None:
    """Make ``packages`` (and their submodules) fail to import: not installed, or ``finder``'s way."""
    for name in list(sys.modules):
        if name.partition(".")[0] in packages:
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [finder or NotInstalled(packages), *sys.meta_path])


@pytest.mark.parametrize(("name", "needle"), [
    ("torchvision:resnet18", "needs the torchvision package, which is not installed"),
    ("timm:resnet18", 'needs the timm package, which is not installed in this environment'),
])
def test_missing_library_says_to_install_torch_and_torchvision_together(monkeypatch, name, needle):
    hide(monkeypatch, "torchvision", "timm")
    with pytest.raises(ModelError) as err:
        build_model(ModelSpec(name=name), (3, 32, 32), 10)
    text = str(err.value)
    assert needle in text
    assert "install torch and torchvision together, in one command" in text
    assert "pip install torch==2.14.1 torchvision==0.29.1" in text


def test_broken_torchvision_names_both_versions_and_the_fix(monkeypatch):
    hide(monkeypatch, "torchvision", finder=Mismatched())
    with pytest.raises(ModelError) as err:
        build_model(ModelSpec(name="torchvision:resnet18"), (3, 32, 32), 10)
    text = str(err.value)
    assert "fails to import beside torch" in text and torch.__version__.split("+")[0] in text
    assert "RuntimeError: operator torchvision::nms does not exist" in text
    assert "Torchvision must match the installed torch: install torch and torchvision together" in text


def test_cli_exits_2_with_the_paragraph_and_no_traceback(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('[data]\nname = "synthetic"\nshape = [3, 8, 8]\nsize = 40\n'
                    '[model]\nname = "torchvision:resnet18"\n[train]\nepochs = 1\n')
    code = ("import sys; sys.modules['torchvision'] = None; from batchlab.cli import main; "
            f"sys.argv = ['batchlab', 'sweep', {str(spec)!r}, '--store', {str(tmp_path / 'b.db')!r}]; main()")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr
    out = res.stdout + res.stderr
    assert "needs the torchvision package" in out and "Traceback" not in out


def test_safetensors_missing_is_a_clear_error(monkeypatch, tmp_path):
    (tmp_path / "w.safetensors").write_bytes(b"{}")
    hide(monkeypatch, "safetensors")
    with pytest.raises(ModelError, match=r"needs the safetensors package.*pip install safetensors"):
        read_state_dict(tmp_path / "w.safetensors")


@pytest.mark.parametrize(("fields", "needle"), [
    ({"weights": "w.pth"}, "model.weights is set, but model 'lenet5' is not a torchvision: or timm: model"),
    ({"freeze": "backbone"}, "model.freeze = 'backbone' needs a torchvision: or timm: model"),
])
def test_zoo_models_refuse_weights_and_freeze(fields, needle):
    with pytest.raises(ModelError, match=needle):
        build_model(ModelSpec(name="lenet5", **fields), (1, 28, 28), 10)


def net(hidden: int = 4) -> nn.Module:
    return nn.Sequential(nn.Linear(3, hidden), nn.BatchNorm1d(hidden), nn.Linear(hidden, 10))


def test_load_backbone_skips_the_head_and_checks_every_other_key(tmp_path):
    source = net()
    torch.save({"model": source.state_dict()}, tmp_path / "ck.pt")
    target = net()
    load_backbone(target, tmp_path / "ck.pt", "2", "test-net")
    assert torch.equal(target[0].weight, source[0].weight)
    assert torch.equal(target[1].running_var, source[1].running_var)
    assert not torch.equal(target[2].weight, source[2].weight)  # the head is left to be replaced

    torch.save(net(hidden=5).state_dict(), tmp_path / "wide.pt")
    with pytest.raises(ModelError, match=r"shape in the file vs the model \(6\): 0.weight \(5, 3\) vs "
                                         r"\(4, 3\)"):
        load_backbone(net(), tmp_path / "wide.pt", "2", "test-net")
    torch.save({"extra.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match=r"missing from the file \(7\): 0.weight.*in the file but not in "
                                         r"the model \(1\): extra.weight"):
        load_backbone(net(), tmp_path / "other.pt", "2", "test-net")


def test_a_file_without_a_state_dict_is_refused(tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ModelError, match="does not hold a state dict"):
        read_state_dict(tmp_path / "list.pth")

"""User factories: 'package.module:factory' imports, receives its arguments, fails helpfully."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from batchlab.errors import ModelError
from batchlab.models import build_model
from batchlab.spec import ModelSpec

MNIST = (1, 28, 28)
_counter = itertools.count()

MODULE_HEADER = """
import math
from torch import nn

CALLS = []

class Net(nn.Module):
    def __init__(self, input_shape, num_classes, hidden=16):
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(input_shape), hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.body(x)
"""


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Write a uniquely named module (MODULE_HEADER + body) on sys.path; return its name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names: list[str] = []

    def write(body: str) -> str:
        name = f"batchlab_user_models_{next(_counter)}"
        source = MODULE_HEADER + textwrap.dedent(body)
        (tmp_path / f"{name}.py").write_text(source)
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)


def build(name: str, shape: tuple[int, ...] = MNIST, classes: int = 10, **spec: object):
    return build_model(ModelSpec(name=name, **spec), shape, classes)


def test_factory_receives_shape_classes_and_kwargs(user_module: Callable[[str], str]) -> None:
    mod = user_module(
        """
        def make(input_shape, num_classes, hidden=8):
            CALLS.append(dict(input_shape=input_shape, num_classes=num_classes, hidden=hidden))
            return Net(input_shape, num_classes, hidden)
        """
    )
    model = build(f"{mod}:make", classes=4, kwargs={"hidden": 32})
    assert model(torch.randn(2, *MNIST)).shape == (2, 4)
    calls = sys.modules[mod].CALLS
    assert calls == [{"input_shape": MNIST, "num_classes": 4, "hidden": 32}]


def test_nn_module_class_is_a_factory(user_module: Callable[[str], str]) -> None:
    mod = user_module("")
    model = build(f"{mod}:Net", shape=(64,), classes=3)
    assert isinstance(model, nn.Module)
    assert model(torch.randn(5, 64)).shape == (5, 3)


def test_only_declared_arguments_are_passed(user_module: Callable[[str], str]) -> None:
    mod = user_module(
        """
        def only_classes(num_classes):
            CALLS.append(num_classes)
            return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))

        def everything(**kwargs):
            CALLS.append(kwargs)
            return nn.Identity()

        def with_dropout(num_classes, dropout=0.0):
            CALLS.append(dropout)
            return nn.Identity()
        """
    )
    build(f"{mod}:only_classes", classes=6)
    build(f"{mod}:everything", classes=6, dropout=0.3, kwargs={"depth": 2})
    build(f"{mod}:with_dropout", dropout=0.3)
    build(f"{mod}:with_dropout", dropout=0.3, kwargs={"dropout": 0.1})
    assert sys.modules[mod].CALLS == [
        6,
        {"input_shape": MNIST, "num_classes": 6, "depth": 2},
        0.3,
        0.1,
    ]


def test_builtin_model_fields_reach_only_a_factory_that_names_them(user_module) -> None:
    mod = user_module(
        """
        def plain(input_shape, num_classes, width=8):
            return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes))

        def takes_hidden(num_classes, hidden=(4,), width=1.0):
            CALLS.append((hidden, width))
            return nn.Identity()

        def anything(**kwargs):
            return nn.Identity()
        """
    )
    # the defaults every stored config holds are never passed nor refused
    build(f"{mod}:plain")
    build(f"{mod}:takes_hidden", hidden=[256, 128])
    build(f"{mod}:takes_hidden", hidden=[64, 64], width=2.0)  # named: passed (whole width as int)
    build(f"{mod}:takes_hidden", width=0.5)
    assert sys.modules[mod].CALLS == [((4,), 1.0), ([64, 64], 2), ((4,), 0.5)]
    for factory, field in (("plain", "hidden"), ("anything", "hidden"), ("anything", "width")):
        value = [64, 64] if field == "hidden" else 2.0
        with pytest.raises(ModelError) as info:
            build(f"{mod}:{factory}", **{field: value})
        text = str(info.value)
        assert f"model.{field} = {value!r} is set, but model '{mod}:{factory}' is your factory" in text
        assert f"no '{field}' parameter" in text and f"Remove model.{field}" in text
        assert f"model.kwargs.{field}" in text and "\n" not in text
    with pytest.raises(ModelError, match="model.hidden = .* and model.kwargs.hidden = .* are both set"):
        build(f"{mod}:takes_hidden", hidden=[8], kwargs={"hidden": [16]})


def test_factory_construction_is_deterministic(user_module: Callable[[str], str]) -> None:
    mod = user_module("")
    torch.manual_seed(0)
    first = build(f"{mod}:Net").state_dict()
    torch.manual_seed(0)
    second = build(f"{mod}:Net").state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_missing_module() -> None:
    with pytest.raises(ModelError, match="cannot import module 'no_such_pkg.models'") as info:
        build("no_such_pkg.models:make")
    message = str(info.value)
    assert "No module named 'no_such_pkg'" in message
    assert "PYTHONPATH" in message


def test_module_with_broken_import(user_module: Callable[[str], str]) -> None:
    mod = user_module("import not_installed_dependency_xyz\n")
    with pytest.raises(ModelError, match="not_installed_dependency_xyz"):
        build(f"{mod}:Net")


def test_module_raising_at_import(user_module: Callable[[str], str]) -> None:
    mod = user_module("raise RuntimeError('bad config at import')\n")
    with pytest.raises(ModelError, match="RuntimeError: bad config at import"):
        build(f"{mod}:Net")


def test_missing_attribute_suggests_close_name(user_module: Callable[[str], str]) -> None:
    mod = user_module("def make_net(num_classes):\n    return Net((1,), num_classes)\n")
    with pytest.raises(ModelError, match="has no attribute 'make_nt'") as info:
        build(f"{mod}:make_nt")
    assert "Did you mean 'make_net'?" in str(info.value)


def test_not_callable(user_module: Callable[[str], str]) -> None:
    mod = user_module("SIZE = 3\n")
    with pytest.raises(ModelError, match="not a callable"):
        build(f"{mod}:SIZE")


def test_factory_raising_includes_its_message(user_module: Callable[[str], str]) -> None:
    mod = user_module("def make(num_classes):\n    raise ValueError('need RGB input')\n")
    with pytest.raises(ModelError, match="raised ValueError: need RGB input"):
        build(f"{mod}:make")


def test_factory_returning_non_module(user_module: Callable[[str], str]) -> None:
    mod = user_module("def make(num_classes):\n    return {'layers': num_classes}\n")
    with pytest.raises(ModelError, match="returned dict, not a torch.nn.Module"):
        build(f"{mod}:make")


def test_kwargs_the_factory_does_not_accept(user_module: Callable[[str], str]) -> None:
    mod = user_module("")
    with pytest.raises(ModelError, match="cannot be called with") as info:
        build(f"{mod}:Net", kwargs={"depth": 3})
    assert "depth" in str(info.value)


def test_missing_required_argument(user_module: Callable[[str], str]) -> None:
    mod = user_module("def make(num_classes, channels):\n    return nn.Identity()\n")
    with pytest.raises(ModelError, match="channels"):
        build(f"{mod}:make")
    assert isinstance(build(f"{mod}:make", kwargs={"channels": 3}), nn.Identity)


def test_kwargs_may_not_override_data_arguments(user_module: Callable[[str], str]) -> None:
    mod = user_module("")
    with pytest.raises(ModelError, match="remove num_classes from model.kwargs"):
        build(f"{mod}:Net", kwargs={"num_classes": 3})


@pytest.mark.parametrize("name", [":make", "pkg.mod:", ":"])
def test_malformed_factory_reference(name: str) -> None:
    with pytest.raises(ModelError, match="package.module:factory"):
        build(name)


def test_an_edited_module_is_reloaded_before_building(user_module: Callable[[str], str],
                                                      tmp_path: Path) -> None:
    # a notebook keeps the module it imported first; the sweep retrains on the edited source
    # (its fingerprint changed), so the build must use that source too
    name = user_module("def make(input_shape, num_classes):\n    return nn.ReLU()\n")
    assert isinstance(build(f"{name}:make"), nn.ReLU)
    path = tmp_path / f"{name}.py"
    path.write_text(path.read_text().replace("nn.ReLU()\n", "nn.Tanh()\n"))
    assert isinstance(build(f"{name}:make"), nn.Tanh)
    assert isinstance(build(f"{name}:make"), nn.Tanh)  # unchanged since: no reload needed
    path.write_text(path.read_text() + "\ndef broken(:\n")
    with pytest.raises(ModelError, match="SyntaxError"):
        build(f"{name}:make")

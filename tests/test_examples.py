"""The ready specs in examples/: each loads, is listed in docs/examples.md, and its name tells the
truth about what it trains."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from batchlab.plan import plan_runs
from batchlab.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_loads_and_its_comments_name_its_own_file(path):
    load_spec(path)
    named = set(re.findall(r"examples/([\w.-]+\.toml)", path.read_text()))
    assert named <= {path.name}


def test_the_docs_list_exactly_the_examples():
    table = re.findall(r"^\| `([\w-]+\.toml)` \|", (ROOT / "docs" / "examples.md").read_text(), re.M)
    assert sorted(table) == [p.name for p in EXAMPLES]


def test_transfer_examples_start_from_weights_and_scratch_ones_do_not():
    # the name tells the truth: "transfer" loads pretrained weights, "scratch" starts random
    transfer = [p for p in EXAMPLES if "transfer" in p.name]
    assert [p.name for p in transfer] == ["mobilenet_transfer_imagefolder.toml"]
    for path in EXAMPLES:
        weights = load_spec(path).model.weights
        assert (weights is not None) == ("transfer" in path.name), path.name
    spec = load_spec(transfer[0])
    assert spec.model.name == "torchvision:mobilenet_v2" and spec.data.image_size == 224
    assert spec.sweep.grid == {"train.batch_size": [16, 32, 64, 128], "model.freeze": ["backbone", "none"]}


# the runs each example's comments and docs/examples.md describe (there is no dry-run command:
# planning is how a user sees them before training)
PLANNED = {"alexnet_cifar10_lr_decay.toml": 3, "architectures_20_classes.toml": 12,
           "classic_batch_size.toml": 24, "lenet5_mnist_adam.toml": 3, "mnist1d_cnn.toml": 6,
           "mobilenet_scratch_imagefolder.toml": 4, "mobilenet_transfer_imagefolder.toml": 8}


def test_every_example_plans_the_runs_it_describes():
    assert {p.name: len(plan_runs(load_spec(p))) for p in EXAMPLES} == PLANNED

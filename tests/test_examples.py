"""The ready specs in examples/: each loads, is listed in docs/examples.md, and its name tells the
truth about what it trains."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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

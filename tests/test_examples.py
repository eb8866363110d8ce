"""The ready specs in examples/: each loads, is listed in the README, and its name tells the
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


def test_readme_lists_exactly_the_examples():
    table = re.findall(r"^\| `([\w-]+\.toml)` \|", (ROOT / "README.md").read_text(), re.M)
    assert sorted(table) == [p.name for p in EXAMPLES]


def test_no_example_claims_transfer_learning():
    # batchlab has no pretrained weights to start from: every example trains from scratch
    assert [p.name for p in EXAMPLES if "transfer" in p.name] == []

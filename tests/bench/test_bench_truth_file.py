"""bench/_bench_truth.py's cache file: series steps are packed on save and restored on load,
so the ground truth stays a small text file in git and reads back exactly as it was measured."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "bench")]

import _bench_truth as truthlib  # noqa: E402


@pytest.mark.parametrize("steps", [[0, 6, 12, 18, 323], [0, 32, 64, 96, 100], [5], [], [3, 4, 9, 10]])
def test_steps_pack_and_unpack_to_the_same_list(steps):
    packed = truthlib.pack_steps(steps)
    assert truthlib.unpack_steps(packed) == steps
    assert truthlib.unpack_steps(list(steps)) == steps  # a file written before packing


def test_the_cache_round_trips_and_stores_ranges(tmp_path, monkeypatch):
    monkeypatch.setattr(truthlib, "TRUTH", tmp_path / "truth.json")
    series = {"train_loss": {"step": list(range(0, 600, 6)) + [601], "value": [1.0] * 101}}
    truth = {"c": {"case": {}, "runs": [{"final": float("nan"), "series": series}], "summary": {}}}
    truthlib.save_truth(truth)
    raw = json.loads((tmp_path / "truth.json").read_text())
    assert raw["c"]["runs"][0]["series"]["train_loss"]["step"] == {"range": [0, 600, 6], "then": [601]}
    assert raw["c"]["runs"][0]["final"] is None
    loaded = truthlib.load_truth()
    assert loaded["c"]["runs"][0]["series"] == series
    assert truth["c"]["runs"][0]["series"]["train_loss"]["step"][-1] == 601  # the caller's is untouched


def test_cases_past_the_first_part_go_to_their_own_file_and_load_back(tmp_path, monkeypatch):
    monkeypatch.setattr(truthlib, "TRUTH", tmp_path / "truth.json")
    entry = {"case": {}, "runs": [], "summary": {"best": 0.5}}
    names = ["03-a", f"{truthlib.PART - 1}-b", f"{truthlib.PART}-c", f"{2 * truthlib.PART + 5}-d"]
    truthlib.save_truth({n: entry for n in names})
    first = json.loads((tmp_path / "truth.json").read_text())
    assert sorted(first) == names[:2]
    assert sorted(json.loads((tmp_path / "truth_1.json").read_text())) == [names[2]]
    assert sorted(json.loads((tmp_path / "truth_2.json").read_text())) == [names[3]]
    assert sorted(truthlib.load_truth()) == sorted(names)


def test_the_pruning_replay_reads_the_cache_as_loaded():
    """bench/prune.py --truth replays the hopeless rule on the loaded (unpacked) ground truth."""
    import prune

    truth = truthlib.load_truth()
    name = next(n for n in sorted(truth) if "diabetes" not in n and "sines" not in n)
    replay = prune.truth_replay({name: truth[name]})
    runs = truth[name]["runs"]
    assert replay.runs == len(runs)
    assert replay.steps == sum(r["series"]["val_acc"]["step"][-1] for r in runs)

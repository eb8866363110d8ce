"""recommend (pure parts): predicted time to target, the choice, warm-up, the sentences, the
stored dict and the figure. Nothing here trains."""

import json
import math

import pytest

from batchlab.probes.common import ProbeError
from batchlab.probes.recommend import (
    WARMUP_FRACTION,
    WARMUP_LR_RATIO,
    Prediction,
    Recommendation,
    choose,
    explain,
    predict_times,
    warmup_steps,
)

# A hand-made curve. time(B) ~ (B + B_noise) / T(B) with B_noise = 16:
#   B=8:  24/100 = 0.24     B=16: 32/180 = 0.1778     B=32: 48/300 = 0.16     B=64: 80/400 = 0.20
# so the least is at B=32; relative to it 1.5, 1.111, 1, 1.25.
SIZES = [8, 16, 32, 64]
RATES = [100.0, 180.0, 300.0, 400.0]
B_NOISE = 16.0
RAW = [24 / 100, 32 / 180, 48 / 300, 80 / 400]


def test_predict_times_matches_the_hand_worked_curve():
    preds = predict_times(SIZES, RATES, B_NOISE)
    assert [p.batch_size for p in preds] == SIZES
    assert [p.samples_per_s for p in preds] == RATES
    assert all(p.fits for p in preds)  # no memory limit given
    assert [p.steps_factor for p in preds] == pytest.approx([3.0, 2.0, 1.5, 1.25])
    assert [p.relative_time for p in preds] == pytest.approx([1.5, (32 / 180) / 0.16, 1.0, 1.25])
    assert all(p.seconds is None for p in preds)  # no S_min: relative only
    best = choose(preds)
    assert best.batch_size == 32 and best.relative_time == 1.0
    assert min(p.relative_time for p in preds) == 1.0


def test_a_faster_batch_that_does_not_fit_is_never_chosen():
    preds = predict_times(SIZES, RATES, B_NOISE, largest_fitting=16)
    assert [p.fits for p in preds] == [True, True, False, False]
    best = choose(preds)
    assert best.batch_size == 16 and best.relative_time == 1.0
    # relative to the best *fitting* batch: 32 is predicted faster but is not eligible
    by_b = {p.batch_size: p for p in preds}
    assert by_b[32].relative_time == pytest.approx(0.16 / (32 / 180)) and by_b[32].relative_time < 1
    assert by_b[8].relative_time == pytest.approx(0.24 / (32 / 180))
    # a limit between measured sizes: 32 fits, 64 does not
    assert choose(predict_times(SIZES, RATES, B_NOISE, largest_fitting=40)).batch_size == 32


def test_seconds_scale_with_s_min():
    one = predict_times(SIZES, RATES, B_NOISE, s_min=1000)
    two = predict_times(SIZES, RATES, B_NOISE, s_min=2000)
    assert [p.seconds for p in one] == pytest.approx([1000 * r for r in RAW])
    assert [p.seconds for p in two] == pytest.approx([2 * p.seconds for p in one])
    # S_min scales every time alike: the relative times and the choice do not move
    assert [p.relative_time for p in one] == [p.relative_time for p in two]
    assert choose(one).batch_size == choose(two).batch_size == 32
    assert choose(one).seconds == pytest.approx(160.0)


def test_the_noise_scale_moves_the_choice():
    # A tiny B_noise: steps barely fall with B, so the raw throughput decides less than the
    # batch itself: (B + 0.5) / T(B) = 0.085, 0.0917, 0.1083, 0.16125 -> batch 8 wins.
    assert choose(predict_times(SIZES, RATES, 0.5)).batch_size == 8
    # A huge B_noise: time ~ B_noise / T(B), the fastest throughput wins.
    assert choose(predict_times(SIZES, RATES, 1e6)).batch_size == 64


@pytest.mark.parametrize("b_noise", [0.0, -3.0, math.nan, math.inf])
def test_bad_noise_scale_is_a_probe_error(b_noise):
    with pytest.raises(ProbeError, match="noise scale"):
        predict_times(SIZES, RATES, b_noise)


def test_nothing_fits_is_a_probe_error():
    with pytest.raises(ProbeError, match="fits in memory"):
        predict_times(SIZES, RATES, B_NOISE, largest_fitting=4)
    with pytest.raises(ProbeError):  # measured, but no throughput at any fitting size
        predict_times([8, 16], [0.0, 0.0], B_NOISE)


def test_zero_throughput_is_infinitely_slow_but_does_not_break_the_others():
    preds = predict_times([8, 16], [0.0, 100.0], B_NOISE)
    assert math.isinf(preds[0].relative_time) and preds[1].relative_time == 1.0
    assert choose(preds).batch_size == 16


def test_choose_breaks_ties_towards_the_smaller_batch():
    # (16 + 16) / 32 == (32 + 16) / 48 == 1.0 exactly
    preds = predict_times([32, 16], [48.0, 32.0], 16.0)
    assert preds[0].relative_time == preds[1].relative_time == 1.0
    assert choose(preds).batch_size == 16
    assert choose(list(reversed(preds))).batch_size == 16


def test_choose_ignores_predictions_that_do_not_fit():
    preds = [Prediction(8, 10, 2, 2.0, None, True), Prediction(16, 10, 2, 0.5, None, False),
             Prediction(32, 10, 2, 1.0, None, True)]
    assert choose(preds).batch_size == 32


def test_warmup_steps_rule():
    assert WARMUP_LR_RATIO == 4.0 and WARMUP_FRACTION == 0.05
    assert warmup_steps(0.39, 0.1, 1000) == 0  # 3.9x: no warm-up
    assert warmup_steps(0.1, 0.1, 1000) == 0
    assert warmup_steps(0.01, 0.1, 1000) == 0  # a lower LR never needs one
    assert warmup_steps(4.0, 1.0, 1000) == 50  # exactly 4x: warm up
    assert warmup_steps(0.41, 0.1, 1000) == 50  # 5% of 1000
    assert warmup_steps(1.0, 0.1, 300) == 15
    assert warmup_steps(1.0, 0.1, 10) == 1  # 5% of 10 rounds to 0: at least one step
    assert warmup_steps(1.0, 0.1, 1) == 1
    assert warmup_steps(1.0, 0.0, 1000) == 0  # no usable reference LR: no advice
    assert warmup_steps(1.0, -1.0, 1000) == 0


def make_rec(preds=None, *, warmup=0, ci=(10.0, 25.0), largest=64, knee=32, batch=32,
             lr=0.05, b_noise=B_NOISE):
    preds = preds if preds is not None else predict_times(SIZES, RATES, b_noise, largest)
    best = next(p for p in preds if p.batch_size == batch)
    text = explain(best, preds, b_noise, ci, lr, f"LR range test at batch {batch}", warmup,
                   largest, knee, 16)
    return Recommendation(batch, lr, f"LR range test at batch {batch}", warmup, b_noise, ci,
                          largest, knee, list(preds), text, {"throughput": {"knee": knee}})


def test_explain_states_the_numbers():
    preds = predict_times(SIZES, RATES, B_NOISE, largest_fitting=64, s_min=1000)
    best = choose(preds)
    lines = explain(best, preds, B_NOISE, (10.0, 25.0), 0.05, "LR range test at batch 32", 12,
                    64, 32, 16)
    text = "\n".join(lines)
    assert "B_noise = 16 (95% CI 10-25)" in lines[0]
    assert "from 100 samples/s at batch 8 to 400 at best" in lines[1]
    assert "beyond batch 32 doubling gains < 10%" in lines[1]
    assert "largest batch that fits in memory (with the safety margin) is 64" in text
    assert "least at batch 32 (160.0 s) among the batch sizes that reach it within your epochs" in text
    # the others, fastest first, with their relative times
    assert "batch 16: x1.11, batch 64: x1.25, batch 8: x1.50" in text
    assert "Learning rate 0.05 (LR range test at batch 32)." in text
    assert "first 12 steps" in text and "your batch size 16" in text and "4x" in text


def test_a_batch_that_needs_more_epochs_than_the_user_s_is_named_not_chosen():
    # user batch 8, B_noise 16: batch B needs (B + 16) / 24 x the examples -> 1, 1.33, 2, 3.33
    preds = predict_times(SIZES, RATES, B_NOISE, user_batch=8)
    assert [p.examples_factor for p in preds] == pytest.approx([1, 32 / 24, 2, 80 / 24])
    best = choose(preds)
    assert best.batch_size == 8  # 32 is the fastest to target, but only with twice the epochs
    text = "\n".join(explain(best, preds, B_NOISE, (10.0, 25.0), 0.05, "src", 0, None, None, 8))
    assert "least at batch 8 among the batch sizes that reach it within your epochs" in text
    assert "no other measured batch size does" in text
    assert ("Batch 32 would reach it in x0.67 the time, but needs 2.0x the examples of batch 8: "
            "train it that many times the epochs") in text


def test_with_a_large_noise_scale_a_larger_batch_keeps_the_user_s_epochs():
    # B_noise 400 >> B: examples barely grow with B (0.98, 1, 1.04, 1.12 x batch 16's), so
    # batch 32 is chosen; 64 would need 12 % more examples, past EXAMPLES_SLACK
    preds = predict_times(SIZES, RATES, 400.0, user_batch=16)
    assert [p.examples_factor for p in preds] == pytest.approx([408 / 416, 1, 432 / 416, 464 / 416])
    assert choose(preds).batch_size == 32
    assert choose(predict_times(SIZES, RATES, 400.0)).batch_size == 64  # no user batch: no limit


def test_when_every_measured_batch_needs_more_epochs_the_fewest_wins_and_it_says_so():
    preds = predict_times(SIZES, RATES, B_NOISE, user_batch=4)  # 4 was not measured
    best = choose(preds)
    assert best.batch_size == 8 and best.examples_factor == pytest.approx(24 / 20)
    text = "\n".join(explain(best, preds, B_NOISE, (10.0, 25.0), 0.05, "src", 0, None, None, 4))
    assert "No measured batch size is predicted to reach the target within your epochs" in text
    assert "1.2x yours" in text


def test_explain_leaves_out_what_it_does_not_know():
    preds = predict_times(SIZES, RATES, B_NOISE)
    lines = explain(choose(preds), preds, B_NOISE, (10.0, 25.0), 0.05, "src", 0, None, None, 16)
    text = "\n".join(lines)
    assert "fits in memory" not in text  # no memory limit measured
    assert "doubling gains" not in text and lines[1].endswith("at best.")  # no knee
    assert "Warm up" not in text  # no warm-up
    assert "least at batch 32 among" in text  # no S_min: no seconds


def test_to_dict_is_json_safe():
    rec = make_rec(warmup=3)
    d = json.loads(json.dumps(rec.to_dict(), allow_nan=False))
    assert d["batch_size"] == 32 and d["lr"] == 0.05 and d["warmup_steps"] == 3
    assert d["batch_sizes"] == SIZES
    assert d["relative_time"] == pytest.approx([p.relative_time for p in rec.predictions])
    assert d["b_noise_ci"] == [10.0, 25.0]
    assert [p["batch_size"] for p in d["predictions"]] == SIZES
    assert d["explanation"] == rec.explanation and d["probes"] == {"throughput": {"knee": 32}}


def test_to_dict_is_json_safe_with_non_finite_numbers():
    # a batch size with no measured throughput (infinite time) and an undetermined CI
    preds = predict_times([8, 16, 32], [0.0, 180.0, 300.0], B_NOISE, s_min=10)
    rec = make_rec(preds, ci=(math.nan, math.inf), largest=None, knee=None)
    d = json.loads(json.dumps(rec.to_dict(), allow_nan=False))
    assert d["relative_time"][0] is None and d["predictions"][0]["seconds"] is None
    assert d["relative_time"][2] == 1.0 and d["predictions"][2]["seconds"] == pytest.approx(1.6)
    assert d["b_noise_ci"] == [None, None]


def test_explain_with_a_single_fitting_batch_size():
    preds = predict_times([8, 16], [100.0, 180.0], B_NOISE, largest_fitting=8)
    lines = explain(choose(preds), preds, B_NOISE, (10.0, 25.0), 0.05, "src", 0, 8, None, 8)
    line = next(x for x in lines if x.startswith("Predicted time"))
    assert line == ("Predicted time to target is least at batch 8 among the batch sizes that reach it "
                    "within your epochs; no other measured batch size does.")


def test_explain_with_a_single_measured_batch_size_has_no_curve():
    preds = predict_times([16], [945.0], B_NOISE, largest_fitting=16)
    lines = explain(choose(preds), preds, B_NOISE, (10.0, 25.0), 0.05, "src", 0, 16, None, 16)
    assert "Throughput: 945 samples/s at batch 16, the only batch size measured." in lines
    assert not any(x.startswith("Throughput rises") for x in lines)


def test_an_unreliable_throughput_curve_is_said_in_the_recommendation(monkeypatch):
    import dataclasses

    from batchlab.probes import throughput
    from batchlab.probes.recommend import recommend
    from batchlab.spec import RunConfig, spec_from_dict

    real = throughput.throughput_curve

    def noisy(*args, **kwargs):
        return dataclasses.replace(real(*args, **kwargs), reliable=False)

    monkeypatch.setattr(throughput, "throughput_curve", noisy)
    s = spec_from_dict({"data": {"name": "synthetic", "shape": [10], "classes": 3, "size": 300},
                        "model": {"name": "mlp", "hidden": [16]},
                        "train": {"epochs": 1, "lr": 0.1, "batch_size": 16, "threads": 1}})
    rec = recommend(RunConfig(data=s.data, model=s.model, train=s.train), batch_sizes=[8, 16, 32],
                    noise_steps=20)
    assert rec.explanation[-1].startswith("Caution: the throughput curve was unreliable")


def test_a_candidate_the_user_named_but_that_was_not_measured_is_said():
    """--batch-sizes 8,16,500 on 240 training examples: 500 cannot be measured, and the
    explanation says so instead of dropping it unsaid."""
    from batchlab.probes.recommend import recommend
    from batchlab.spec import RunConfig, spec_from_dict

    s = spec_from_dict({"data": {"name": "synthetic", "shape": [10], "classes": 3, "size": 300},
                        "model": {"name": "mlp", "hidden": [16]},
                        "train": {"epochs": 1, "lr": 0.1, "batch_size": 16, "threads": 1}})
    rec = recommend(RunConfig(data=s.data, model=s.model, train=s.train), batch_sizes=[8, 16, 500],
                    noise_steps=20)
    assert rec.probes["throughput"]["batch_sizes"] == [8, 16]
    assert ("Not measured, so not a candidate: batch 500 (larger than the 240 training examples)."
            in rec.explanation)


@pytest.mark.parametrize("limited_by, words", [
    ("memory", "The largest batch that fits in memory (with the safety margin) is 64."),
    ("max_batch", "Every batch size up to the largest candidate batch size (64) fits in memory"),
    ("dataset size", "Every batch size up to the training set's size (64 examples) fits in memory"),
    ("cpu cap", "Every batch size up to the CPU search's cap (64) fits in memory"),
])
def test_explain_names_the_limit_that_stopped_the_memory_search(limited_by, words):
    """64 is the largest batch that fits only when memory stopped the search (issue 21, part
    2, item 12)."""
    preds = predict_times(SIZES, RATES, B_NOISE, largest_fitting=64)
    text = "\n".join(explain(choose(preds), preds, B_NOISE, (10.0, 25.0), 0.05, "src", 0, 64, None,
                             16, limited_by))
    assert words in text
    assert ("largest batch that fits in memory" in text) == (limited_by == "memory")


def test_bl_recommend_says_the_largest_candidate_is_not_a_memory_limit():
    import numpy as np
    from torch import nn

    import batchlab as bl

    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 6)).astype(np.float32)
    rec = bl.recommend(model=nn.Linear(6, 2), train=(x, (x[:, 0] > 0).astype(np.int64)),
                       batch_sizes=[16, 32], noise_steps=20, lr_repeats=1, epochs=1, lr=0.05,
                       threads=1)
    assert rec.probes["max_batch"]["limited_by"] == "max_batch"
    assert ("Every batch size up to the largest candidate batch size (32) fits in memory"
            in "\n".join(rec.explanation))
    fig = rec.plot()  # the recommendation's figure, as the report draws it
    assert fig.get_suptitle() == "Recommendation" and fig.axes


@pytest.mark.parametrize("strategy, words", [
    ("horizon", "miniatures of your run at batch 64, compared by successive halving"),
    ("trial", "constant-LR trials at batch 64, below the LR range test's minimum"),
    ("valley", "LR range test at batch 64, 'valley' rule"),
])
def test_lr_source_names_what_produced_the_lr(strategy, words):
    from batchlab.probes.recommend import lr_source

    assert lr_source(strategy, 64) == words


def test_bl_recommend_on_a_batchnorm_model_with_the_default_lr_strategy():
    """A BatchNorm1d model cannot train on one example: the memory search starts at batch 2
    (it used to fail at batch 1), and the LR, from the default horizon strategy, is said to
    come from miniatures of the run, not from a range test (none ran)."""
    import torch
    from torch import nn

    import batchlab as bl

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(200, 8, generator=g), torch.randint(0, 3, (200,), generator=g)
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    rec = bl.recommend(model=model, train=(x, y), batch_sizes=[16, 32], noise_steps=10, epochs=1,
                       lr=0.05, threads=1)
    trials = [t["batch_size"] for t in rec.probes["max_batch"]["trials"]]
    assert trials[0] == 2 and rec.probes["max_batch"]["largest"] == 32
    assert rec.probes["lr_range"]["strategy"] == "horizon"
    assert rec.lr_source == (f"miniatures of your run at batch {rec.batch_size}, compared by "
                             "successive halving")
    assert f"({rec.lr_source})." in "\n".join(rec.explanation)
    assert "range test" not in "\n".join(rec.explanation)

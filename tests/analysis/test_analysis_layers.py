"""The per-layer rules (batchlab.analysis.layers) and capacity (batchlab.analysis.capacity) on
hand-made series with known answers."""

import numpy as np
from analysis_curves import healthy_metrics, per_epoch, record, series

from batchlab.analysis.capacity import add_capacity
from batchlab.analysis.diagnose import diagnose_run
from batchlab.analysis.experiment import analyze_runs
from batchlab.analysis.findings import Finding
from batchlab.analysis.layers import layer_findings, layer_order

STEPS = [1, 11, 21, 31, 41]


def layer(name, signal, values, steps=STEPS):
    return {f"layer/{name}/{signal}": series(values, steps[: len(values)])}


def kinds(found):
    return [f.kind for f in found]


def test_no_gradient_names_the_layer_and_skips_layers_the_spec_froze():
    m = {**layer("features.0", "grad_norm", [0.0] * 5), **layer("fc", "grad_norm", [0.5, 0.4, 0.3, 0.3, 0.2])}
    found = layer_findings(m, "completed", {})
    assert kinds(found) == ["no_gradient"]
    assert found[0].message.startswith("no gradient reaches `features.0` (it is detached or frozen)")
    assert "`fc`'s reaches 0.5" in found[0].message
    assert layer_findings(m, "completed", {"frozen_layers": ["features.0"]}) == []
    # a layer that got a gradient once is not cut off; nothing learns at all: not this rule
    assert layer_findings({**m, **layer("features.0", "grad_norm", [0.1, 0, 0, 0, 0])}, "completed", {}) == []
    assert layer_findings(layer("a", "grad_norm", [0.0] * 5), "completed", {}) == []


def test_no_gradient_says_when_every_unit_is_dead():
    m = {**layer("a", "grad_norm", [0.0] * 3), **layer("a", "dead_frac", [1.0] * 3),
         **layer("b", "grad_norm", [0.3] * 3)}
    message = layer_findings(m, "completed", {})[0].message
    assert "every unit of it is dead, or it is detached or frozen" in message


def test_vanishing_compares_first_and_last_layers_in_model_order():
    ratios = {"l0": 1e-6, "l1": 1e-5, "l2": 1e-4, "l3": 1e-3, "l4": 1e-2, "l5": 1e-2}
    m = {}
    for name, r in ratios.items():
        m.update(layer(name, "update_ratio", [r] * 4))
        m.update(layer(name, "grad_norm", [0.1] * 4))
    found = layer_findings(m, "completed", {"layers": list(ratios)})
    assert kinds(found) == ["vanishing_gradients"]
    assert abs(found[0].numbers["first_update_ratio"] / np.sqrt(1e-11) - 1) < 1e-9  # geometric mean
    assert "the first layers' update ratio is 3e-06, the last layers' 0.01" in found[0].message
    # reversed model order: the first layers learn fastest, nothing vanishes
    assert layer_findings(m, "completed", {"layers": list(ratios)[::-1]}) == []
    # a healthy spread (one order of magnitude) is silent
    healthy = {}
    for i, name in enumerate(ratios):
        healthy.update(layer(name, "update_ratio", [1e-3 * (1 + i)] * 4))
    assert layer_findings(healthy, "completed", {"layers": list(ratios)}) == []


def test_layer_order_falls_back_to_numbers_in_names():
    assert layer_order(["f.10", "f.9", "f.1"], {}) == ["f.1", "f.9", "f.10"]
    assert layer_order(["b", "a"], {"layers": ["b", "a"]}) == ["b", "a"]


def test_exploding_gradients_only_around_a_divergence():
    m = {**layer("fc1", "grad_norm", [0.5, 0.6, 0.7, 0.8]),
         **layer("fc2", "grad_norm", [0.2, 0.5, 30.0, 400.0])}
    found = layer_findings(m, "diverged", {"diverged_at_step": 340})
    assert kinds(found) == ["exploding_gradients"]
    assert found[0].message.startswith("exploding gradients in `fc2` before the divergence at step 340: "
                                       "its gradient norm rose 0.2 -> 400 (2e+03x)")
    assert found[0].step == 31
    assert layer_findings(m, "completed", {}) == []
    assert "as the loss explodes" in layer_findings(m, "completed", {}, exploded=True)[0].message
    inf = layer("fc2", "grad_norm", [0.2, 0.5, np.inf])
    assert "became inf" in layer_findings(inf, "diverged", {"diverged_at_step": 30})[0].message


def test_dead_units_above_half():
    m = {**layer("conv3", "dead_frac", [0.1, 0.5, 0.78], [0, 10, 20]),
         **layer("conv1", "dead_frac", [0.0, 0.1, 0.2], [0, 10, 20])}
    found = layer_findings(m, "completed", {})
    assert kinds(found) == ["dead_units"]
    assert found[0].message.startswith("78% of `conv3`'s units are dead")
    assert found[0].numbers["dead_fraction"] == 0.78
    assert layer_findings(layer("conv1", "dead_frac", [0.0, 0.49]), "completed", {}) == []


def test_diagnose_run_puts_layer_findings_in_severity_order_instead_of_a_standing():
    m = {**healthy_metrics(), **layer("a", "grad_norm", [0.0] * 5), **layer("b", "grad_norm", [0.5] * 5)}
    assert kinds(diagnose_run(healthy_metrics(), "completed", {})) == ["healthy"]
    assert kinds(diagnose_run(m, "completed", {})) == ["no_gradient"]


def plateau_metrics(level, acc, epochs=20):
    """Training loss falls from 2.3 to ``level`` in 5 epochs, then stays; train acc ``acc``."""
    loss = per_epoch(lambda e: level + (2.3 - level) * np.exp(-e), epochs)
    return {"train_eval_loss": loss, "train_acc": per_epoch(lambda e: np.minimum(acc, 0.1 + e), epochs),
            "val_loss": per_epoch(lambda e: level + 0.05 + (2.3 - level) * np.exp(-e), epochs),
            "val_acc": per_epoch(lambda e: np.minimum(acc - 0.02, 0.1 + e), epochs)}


def test_capacity_needs_the_best_lr_of_a_sweep_to_plateau_high():
    small = [(record("a", {"lr": 0.1}), plateau_metrics(1.2, 0.6)),
             (record("b", {"lr": 0.01}), plateau_metrics(1.6, 0.45))]
    out = add_capacity(small, [[], []])
    assert kinds(out[0]) == ["model_too_small"] and out[1] == []
    msg = out[0][0].message
    assert "training loss plateaus high at 1.2 (train acc 60%) at an LR that trains (lr 0.1" in msg
    assert "no LR in the sweep does better (2 LRs): the model is too small for this data" in msg
    # alone (one LR), or fitting the training set: silent
    assert add_capacity(small[:1], [[]]) == [[]]
    fits = [(record("a", {"lr": 0.1}), plateau_metrics(0.05, 0.99)), small[1]]
    assert add_capacity(fits, [[], []]) == [[], []]


def test_capacity_replaces_the_standing_in_an_experiment_analysis():
    runs = [(record("a", {"lr": 0.1}), plateau_metrics(1.2, 0.6)),
            (record("b", {"lr": 0.01}), plateau_metrics(1.6, 0.45))]
    analysis = analyze_runs(runs, "small")
    best = next(r for r in analysis.runs if r.run_id == "a")
    assert "model_too_small" in kinds(best.findings)
    assert not {"healthy", "below_best", "undertrained"} & set(kinds(best.findings))


def test_capacity_skips_runs_whose_config_records_no_lr():
    """A tracked run may record no LR: it is neither said to train at 'lr None' nor counted
    as a second LR of its configuration."""
    no_lr = record("a", {})
    del no_lr.config["train"]["lr"]
    runs = [(no_lr, plateau_metrics(1.2, 0.6)), (record("b", {"lr": 0.01}), plateau_metrics(1.6, 0.45))]
    assert add_capacity(runs, [[], []]) == [[], []]


def test_capacity_does_not_call_a_collapsed_run_too_small_a_model():
    """A run that learned (2.3 -> 1.5) and fell back to ln C read "model too small: training loss
    plateaus high at 2.3 (train acc 14%) at an LR that trains (lr 0.1: 2.3 -> 2.3)" beside its
    collapse: its high loss is the collapse's, not the model's."""
    back = plateau_metrics(1.5, 0.5)
    back["train_eval_loss"] = per_epoch(lambda e: np.where((e >= 1) & (e < 12), 1.5, 2.3))
    back["train_acc"] = per_epoch(lambda e: np.where((e >= 1) & (e < 12), 0.5, 0.14))
    collapsed = Finding("collapsed", "collapsed at step 120 (epoch 12): ...", 120, 12.0,
                        {"final_val_acc": 0.1, "best_val_acc": 0.5, "collapse_step": 120.0})
    runs = [(record("a", {"lr": 0.1}), back), (record("b", {"lr": 1.0}), back)]
    assert "model_too_small" in kinds(add_capacity(runs, [[], []])[0])  # the rule alone fires
    out = add_capacity(runs, [[collapsed], [collapsed]])
    assert [kinds(x) for x in out] == [["collapsed"], ["collapsed"]]

"""lr_too_small vs lr_too_large: a flat run is judged by its sweep's smaller LRs."""

from batchlab.analysis.direction import reconsider_lr_too_small
from batchlab.analysis.findings import Finding

FLAT = Finding("lr_too_small", "LR too small: ...", None, None,
               {"initial_loss": 2.31, "lowest_loss": 2.3, "relative_fall": 0.004})


def run(lr, acc, batch=64, status="completed"):
    return ({"data": {"name": "synthetic"}, "train": {"lr": lr, "batch_size": batch, "seed": 0}},
            {"best_val_acc": acc}, status)


def test_a_flat_run_above_a_smaller_lr_that_trained_is_lr_too_large():
    runs = [run(0.2, 0.55), run(2.0, 0.25)]
    out = reconsider_lr_too_small(runs, [[], [FLAT]])
    assert out[0] == []
    (f,) = out[1]
    assert f.kind == "lr_too_large" and f.numbers["peer_lr"] == 0.2
    assert "LR too large" in f.message and "the smaller lr 0.2 in this sweep reached val acc 55%" in f.message
    assert "2.31 -> lowest 2.3" in f.message  # the run's own numbers are kept


def test_a_flat_run_with_no_better_smaller_lr_stays_lr_too_small():
    # only larger LRs trained better: raising the LR is the right advice
    runs = [run(0.001, 0.2), run(0.1, 0.9)]
    assert reconsider_lr_too_small(runs, [[FLAT], []])[0] == [FLAT]
    # a smaller LR that is flat too, diverged, or at another batch size proves nothing
    runs = [run(0.01, 0.1), run(0.02, 0.9, status="diverged"), run(0.05, 0.9, batch=16), run(1.0, 0.2)]
    out = reconsider_lr_too_small(runs, [[FLAT], [], [], [FLAT]])
    assert out[3] == [FLAT]


def test_regression_runs_compare_by_validation_loss():
    runs = [({"train": {"lr": 0.01}}, {"final_val_loss": 0.3}, "completed"),
            ({"train": {"lr": 1.0}}, {"final_val_loss": 2.0}, "completed")]
    assert reconsider_lr_too_small(runs, [[], [FLAT]])[1][0].kind == "lr_too_large"


def test_a_run_without_a_recorded_lr_keeps_its_finding_and_is_nobodys_peer():
    """A tracked run's config holds only what its user gave: no LR is no KeyError, and no
    smaller-LR comparison in either direction."""
    no_lr = ({"train": {"batch_size": 64}}, {"best_val_acc": 0.9}, "completed")
    flat_no_lr = ({"train": {}}, {"best_val_acc": 0.1}, "completed")
    # its own flat run: nothing to compare its (unknown) LR with, so it stays too small
    assert reconsider_lr_too_small([flat_no_lr, run(0.01, 0.9)], [[FLAT], []])[0] == [FLAT]
    # beside a flat run with an LR, it proves nothing about that LR either
    out = reconsider_lr_too_small([no_lr, run(2.0, 0.25)], [[], [FLAT]])
    assert out == [[], [FLAT]]

"""The trainer's side of sweep.prune: hopeless runs stop as pruned, halving pauses at a rung."""

import math

from test_loop_faults import collect

from batchlab.events import RunEnded
from batchlab.spec import RunConfig, spec_from_dict
from batchlab.train.checkpoint import load_checkpoint
from batchlab.train.prune import PruneOrder

N_TRAIN = 400  # data.limit: training examples after the validation split


def config(**train) -> RunConfig:
    s = spec_from_dict({
        "data": {"name": "digits", "limit": 400},
        "model": {"name": "mlp", "hidden": [32]},
        "train": {"batch_size": 16, "epochs": 8, "lr": 0.05, "threads": 1, **train},
    })
    return RunConfig(data=s.data, model=s.model, train=s.train)


def test_a_run_at_a_huge_lr_is_pruned_early_with_its_reason_and_rows():
    end, rows = collect(config(lr=1.0), prune=PruneOrder())
    assert end.status == "pruned"
    assert end.error.startswith("collapsed to chance: val acc")
    assert "for 3 evaluations" in end.error
    spe = math.ceil(N_TRAIN / 16)
    assert end.steps < 8 * spe and end.steps % spe == 0  # stopped at an evaluation, early
    assert end.summary["pruned_at_step"] == end.steps
    val = [(r[1], r[2]) for r in rows if r[0] == "val_acc"]
    assert val[-1][0] == end.steps and len(val) >= 4  # the curve up to the stop is kept
    assert max(r[1] for r in rows if r[0] == "train_loss") == end.steps
    # the same run without pruning trains to the end
    off, _ = collect(config(lr=1.0))
    assert off.status == "completed" and off.steps == 8 * spe


def test_a_normal_run_is_not_pruned():
    end, _ = collect(config(), prune=PruneOrder())
    assert end.status == "completed" and end.error is None


def test_halving_pauses_at_the_first_epoch_end_past_the_budget_and_resumes(tmp_path):
    ckpt = tmp_path / "run.pt"
    cfg = config(batch_size=32, epochs=4)
    spe = math.ceil(N_TRAIN / 32)
    order = PruneOrder(pause_at_examples=N_TRAIN + 1, rung="rung 1 of 1")
    end, rows = collect(cfg, checkpoint_path=ckpt, prune=order)
    assert end.status == "interrupted" and end.steps == 2 * spe  # 2 epochs = 800 >= 401
    assert end.error.startswith("paused by successive halving at 800 examples seen (rung 1 of 1)")
    assert [r[4] for r in rows if r[0] == "val_loss"][-1] == 2 * N_TRAIN
    assert load_checkpoint(ckpt, cfg.run_id())["step"] == 2 * spe
    resumed, more = collect(cfg, checkpoint_path=ckpt, max_resume_step=2 * spe, prune=PruneOrder())
    assert resumed.status == "completed" and resumed.steps == 4 * spe
    assert min(r[1] for r in more if r[0] == "train_loss") == 2 * spe + 1  # continued, not redone
    straight, _ = collect(cfg)
    assert math.isclose(resumed.summary["final_val_loss"], straight.summary["final_val_loss"],
                        rel_tol=1e-6)
    assert isinstance(resumed, RunEnded)


def test_a_run_that_never_learns_at_lr_3_is_pruned_at_an_early_evaluation():
    # SGD + momentum 0.9 at LR 3.0 on the digits MLP: loss above ln 10 from the first epoch
    s = spec_from_dict({"data": {"name": "digits"}, "model": {"name": "mlp"},
                        "train": {"batch_size": 32, "epochs": 12, "lr": 3.0, "threads": 1}})
    end, rows = collect(RunConfig(data=s.data, model=s.model, train=s.train), prune=PruneOrder())
    assert end.status == "pruned" and end.error.startswith("never learned: training loss above")
    spe = end.summary["steps_per_epoch"]
    assert end.steps == 4 * spe  # at the 4th evaluation after the start, not after 12 epochs
    losses = [r[2] for r in rows if r[0] == "train_eval_loss"]
    assert len(losses) == 5 and min(losses[1:]) > 1.05 * max(math.log(10), losses[0])

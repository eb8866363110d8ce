"""The noise-scale probe and the training loop's noise-scale option (the estimator itself is
tested against a closed form in tests/train/test_noise.py)."""

import json
import math

import pytest
import torch
from torch import nn

from batchlab.events import MetricRows
from batchlab.probes.noise_scale import measure_noise_scale
from batchlab.spec import RunConfig, spec_from_dict
from batchlab.train.loop import train_run


def config(**train) -> RunConfig:
    s = spec_from_dict({"data": {"name": "synthetic", "shape": [12], "classes": 3, "size": 300},
                        "model": {"name": "mlp", "hidden": [16], "dropout": 0.2},
                        "train": {"batch_size": 32, "epochs": 3, "lr": 0.05, "threads": 1, **train}})
    return RunConfig(data=s.data, model=s.model, train=s.train)


def test_probe_trains_a_copy_and_reports_an_interval():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    r = measure_noise_scale(config(), steps=30, model=model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng)
    assert r.steps == list(range(1, 31)) and len(r.trace_b_simple) == len(r.trace_loss) == 30
    assert r.ci_low <= r.b_simple <= r.ci_high and r.b_simple > 0
    assert r.batch_size == 32 and r.micro_batches == 4
    json.dumps(r.to_dict(), allow_nan=False)
    assert measure_noise_scale(config(), steps=30, model=model).b_simple == r.b_simple  # seeded


def test_probe_refuses_auto_lr_and_too_small_batches():
    from batchlab.errors import BatchlabError

    with pytest.raises(BatchlabError, match="resolved by the LR range test"):
        measure_noise_scale(config(lr="auto"), steps=5)
    # the fields to change, by the names a spec or --set uses
    with pytest.raises(BatchlabError) as err:
        measure_noise_scale(config(batch_size=3), steps=5)
    assert ("splits each batch into 4 micro-batches (train.noise_scale_micro_batches), but "
            "train.batch_size = 3 holds fewer examples; raise train.batch_size to at least 4 or "
            "lower train.noise_scale_micro_batches to 3") in str(err.value)
    with pytest.raises(BatchlabError, match="needs at least 2 steps to measure over; got 1"):
        measure_noise_scale(config(), steps=1)


def rows_of(cfg, **kw):
    events = []
    end = train_run(cfg, events.append, **kw)
    return end, [r for e in events if isinstance(e, MetricRows) for r in e.rows]


def test_loop_option_records_noise_scale_and_leaves_training_bit_identical():
    plain_end, plain = rows_of(config())
    end, rows = rows_of(config(measure_noise_scale=True, noise_scale_every=2))
    loss = [(r[1], r[2]) for r in rows if r[0] == "train_loss"]
    assert loss == [(r[1], r[2]) for r in plain if r[0] == "train_loss"]  # exactly equal
    assert end.summary["final_val_loss"] == plain_end.summary["final_val_loss"]
    spe = end.summary["steps_per_epoch"]
    noise = [(r[1], r[2]) for r in rows if r[0] == "noise_scale"]
    assert [s for s, _ in noise] == [spe, 2 * spe, 3 * spe]
    assert end.summary["noise_scale"] == noise[-1][1]
    assert end.summary["noise_scale_measurements"] == math.ceil(3 * spe / 2)
    lo, hi = end.summary["noise_scale_ci"]
    assert lo <= end.summary["noise_scale_mean"] <= hi
    assert "noise_scale" not in plain_end.summary


def test_loop_option_survives_a_resume(tmp_path):
    cfg = config(epochs=4, measure_noise_scale=True, noise_scale_every=3)
    full_end, _ = rows_of(cfg)
    ckpt = tmp_path / "run.pt"

    def interrupt(e):
        if isinstance(e, MetricRows) and e.step > 25:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, interrupt, checkpoint_path=ckpt)
    end, _ = rows_of(cfg, checkpoint_path=ckpt)
    assert end.summary["noise_scale"] == full_end.summary["noise_scale"]
    assert end.summary["noise_scale_measurements"] == full_end.summary["noise_scale_measurements"]


def test_run_ids_change_only_when_the_option_is_on():
    assert config(noise_scale_every=7).run_id() == config().run_id()
    assert config(measure_noise_scale=True).run_id() != config().run_id()
    with pytest.raises(Exception, match="noise_scale_micro_batches"):
        config(measure_noise_scale=True, batch_size=2)

"""A retried run resumes from the checkpoint the store covers: the shared bookkeeping
(StoredSteps) and the Ray task body, which asks the driver at its start."""

import pytest

from batchlab.events import MetricRows, RunStarted
from batchlab.execute.base import RunTask, StoredSteps, allow_resume
from batchlab.execute.ray import _ray_train
from batchlab.spec import RunConfig, spec_from_dict
from batchlab.train.checkpoint_timing import CheckpointTimer
from batchlab.train.loop import train_run


def task(max_resume_step=0, path=None, config=None):
    return RunTask("r1", config, path, max_resume_step)


def test_stored_steps_follow_the_events_the_store_gets():
    stored = StoredSteps()
    assert stored.retry(task(0)).max_resume_step == 0  # nothing known: unchanged
    stored.track(RunStarted("r1", 100, 0, {}))
    stored.track(MetricRows("r1", [], 40))
    stored.track(MetricRows("r1", [], 80))
    stored.track(MetricRows("r2", [], 10))
    assert stored.steps == {"r1": 80, "r2": 10}
    assert stored.retry(task(0)).max_resume_step == 80
    assert stored.retry(task(90)).max_resume_step == 90  # never lowered
    assert stored.retry(task(None)).max_resume_step is None  # any checkpoint already allowed
    stored.track(RunStarted("r1", 100, 45, {}))  # a new attempt resumed from 45
    assert stored.steps["r1"] == 45


def test_allow_resume_is_pure():
    t = task(0)
    assert allow_resume(t, None) is t and allow_resume(t, 0) is t
    assert allow_resume(t, 12).max_resume_step == 12 and t.max_resume_step == 0


def test_a_ray_task_resumes_from_the_checkpoint_the_store_covers(tmp_path):
    s = spec_from_dict({"data": {"name": "synthetic", "shape": [8], "classes": 3, "size": 400},
                        "model": {"name": "mlp", "hidden": [8]},
                        "train": {"epochs": 4, "batch_size": 32, "threads": 1}})
    config = RunConfig(data=s.data, model=s.model, train=s.train)
    ckpt = tmp_path / "r.pt"
    spe = 10  # 320 training examples / 32

    def dies_in_epoch_three(event):
        if isinstance(event, MetricRows) and event.step > 2 * spe:
            raise KeyboardInterrupt  # as a killed worker: the epoch checkpoints stay on disk

    with pytest.raises(KeyboardInterrupt):
        # a timer without a size key writes at the first epoch end even after the run above
        # measured this model's write cost
        train_run(config, dies_in_epoch_three, checkpoint_path=ckpt, checkpoint_timer=CheckpointTimer())
    assert ckpt.is_file()

    class Events(list):
        put = list.append

    original = RunTask(config.run_id(), config, ckpt, 0)  # as first claimed: resume from 0 only
    events = Events()
    assert _ray_train(original, events, 1, lambda run_id: None) == "completed"
    assert events[0].resumed_from == 0  # nothing known: the checkpoint is (rightly) ignored

    with pytest.raises(KeyboardInterrupt):
        # a timer without a size key writes at the first epoch end even after the run above
        # measured this model's write cost
        train_run(config, dies_in_epoch_three, checkpoint_path=ckpt, checkpoint_timer=CheckpointTimer())
    events = Events()
    assert _ray_train(original, events, 1, lambda run_id: 2 * spe) == "completed"
    started = events[0]
    assert isinstance(started, RunStarted) and 0 < started.resumed_from <= 2 * spe

"""One DDP run over two Ray Train workers (``--executor ray``, ``train.devices = 2``) on the
session's local Ray instance (2 CPUs: one per worker).

Each Ray Train run starts a controller and two worker processes (20-80 s on a loaded 2-core
machine), so the runs here are few: one paused at its first epoch end and resumed from its
travelling checkpoint, and one that fails. The sweep through the store, across two nodes, is
in test_ray_nodes.py.
"""

import pytest

from batchlab.events import MetricRows, RunEnded, RunStarted
from batchlab.execute.base import RunTask
from batchlab.execute.function import train_task
from batchlab.execute.ray import RayExecutor
from batchlab.spec import RunConfig, spec_from_dict
from batchlab.train.prune import PruneOrder

pytest.importorskip("ray.train.torch", reason="Ray Train is not installed (pip install batchlab[ray])")

STEPS = 200


def spec(devices: int, steps: int = STEPS):
    return spec_from_dict({
        "name": "rt",
        "data": {"name": "digits"},
        "model": {"name": "mlp", "hidden": [32]},
        "train": {"batch_size": 64, "steps": steps, "lr": 0.05, "device": "cpu", "threads": 1,
                  "devices": devices, "strategy": "ddp" if devices > 1 else "single"},
    })


def config(devices: int) -> RunConfig:
    s = spec(devices)
    return RunConfig(data=s.data, model=s.model, train=s.train)


def losses(rows) -> dict[int, float]:
    return {r[1]: r[2] for r in rows if r[0] == "train_loss"}


@pytest.fixture(scope="module")
def one_process():
    """The 1 x 64 run, in this process: its train_loss per step."""
    events = []
    end = train_task(config(1), events.append)
    assert end.status == "completed"
    return losses(r for e in events if isinstance(e, MetricRows) for r in e.rows)


def execute(executor: RayExecutor, task: RunTask) -> list:
    """Run one task on ``executor``; every event it delivered."""
    tasks, events = [task], []
    executor.execute(lambda: tasks.pop() if tasks else None, events.append)
    return events


def test_a_paused_ddp_run_on_ray_train_resumes_from_its_checkpoint(tmp_path, ray_local,
                                                                  one_process):
    """2 workers x 32 = 1 process x 64 (the same loss every step, up to float rounding), each
    step reported once (rank 0 alone), on both sides of a pause: paused at its first epoch
    end (rank 0 sends the checkpoint through Ray to the driver's folder; the other rank,
    waiting in the next step's all-reduce, ends too), then resumed from it by a new group of
    workers. (The store's side, a sweep writing each row once, is in test_ray_nodes.py.)"""
    ckpt = tmp_path / "run.pt"
    cfg = config(2)
    run_id = cfg.run_id()
    executor = RayExecutor(cpus_per_run=2)
    paused = RunTask(run_id, cfg, ckpt, None, PruneOrder(hopeless=False, pause_at_examples=1))
    first = execute(executor, paused)
    (end,) = [e for e in first if isinstance(e, RunEnded)]
    assert end.status == "interrupted" and "paused" in end.error and ckpt.is_file()
    assert end.summary["devices"] == 2 and end.summary["nodes"] == 1  # both on this node
    before = [r for e in first if isinstance(e, MetricRows) for r in e.rows if r[0] == "train_loss"]
    assert [r[1] for r in before] == list(range(1, end.steps + 1))
    assert max(abs(r[2] - one_process[r[1]]) for r in before) < 1e-4
    resumed = execute(executor, RunTask(run_id, cfg, ckpt, None))
    started = next(e for e in resumed if isinstance(e, RunStarted))
    assert started.resumed_from == end.steps > 0
    (end,) = [e for e in resumed if isinstance(e, RunEnded)]
    assert end.status == "completed" and not ckpt.exists()
    sent = [r for e in resumed if isinstance(e, MetricRows) for r in e.rows if r[0] == "train_loss"]
    rows = losses(sent)
    assert len(sent) == len(rows)  # each step once: rank 0 alone reports
    assert sorted(rows) == list(range(started.resumed_from + 1, STEPS + 1))
    assert max(abs(rows[k] - one_process[k]) for k in rows) < 1e-4


def test_a_failing_ddp_run_on_ray_train_ends_failed_once_with_rank_0s_cause(ray_local):
    """Rank 0's failure goes to Ray Train (which would start the group again: none here,
    retries=0), and after the last attempt the run ends failed, once, with rank 0's cause."""
    s = spec_from_dict({"data": {"name": "digits"}, "model": {"name": "no_such_module_here:make"},
                        "train": {"batch_size": 64, "steps": 5, "device": "cpu", "threads": 1,
                                  "devices": 2, "strategy": "ddp"}})
    cfg = RunConfig(data=s.data, model=s.model, train=s.train)
    events = execute(RayExecutor(cpus_per_run=2, retries=0), RunTask(cfg.run_id(), cfg, None, None))
    (end,) = [e for e in events if isinstance(e, RunEnded)]
    alone = train_task(RunConfig(data=s.data, model=s.model, train=s.train.model_copy(
        update={"devices": 1, "strategy": "single"})), lambda e: None)  # the cause, in one process
    assert end.status == "failed" and "no_such_module_here" in alone.error
    assert end.error == f"Ray Train, attempt 1 of 1: {alone.error}"


def test_a_ddp_run_asking_for_a_gpu_share_per_process_is_refused_by_name():
    """Two ranks on one GPU (NCCL refuses it): the run ends failed before anything starts."""
    from batchlab.execute.raytrain import resources_error

    assert "--gpus-per-run 2 (or more)" in resources_error(config(2), 1)
    assert resources_error(config(2), 0) is None and resources_error(config(2), 2) is None


def test_the_backend_is_nccl_only_for_workers_with_gpus_that_the_run_uses():
    from batchlab.execute.raytrain import backend

    gpu = config(2).model_copy(update={"train": config(2).train.model_copy(update={"device": "auto"})})
    assert backend(gpu, 2) == "nccl"
    assert backend(gpu, 0) == backend(config(2), 2) == "gloo"  # config(2) trains on "cpu"


def test_only_builtin_runs_over_processes_go_to_ray_train():
    from batchlab.execute.raytrain import over_workers

    assert over_workers(config(2)) and not over_workers(config(1))

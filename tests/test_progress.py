"""The sweep's progress bars: what they count and what they say before training starts."""

from __future__ import annotations

import io

from rich.console import Console

from batchlab.events import RunEnded, RunStarted
from batchlab.plan import plan_runs
from batchlab.progress import SweepProgress
from batchlab.spec import spec_from_dict


def runs():
    return plan_runs(spec_from_dict({"sweep": {"grid": {"train.batch_size": [16, 32, 64]}}}))


def overall(progress: SweepProgress):
    return progress.progress.tasks[0]


def test_interrupted_runs_do_not_count_as_done():
    planned = runs()
    with SweepProgress(Console(file=io.StringIO()), "") as progress:
        progress.on_plan(planned, {r.run_id for r in planned[1:]})  # the first is already stored
        assert overall(progress).completed == 1
        for run, status in zip(planned[1:], ("completed", "interrupted"), strict=True):
            progress.on_event(RunStarted(run.run_id, 10, 0))
            progress.on_event(RunEnded(run.run_id, status, 10 if status == "completed" else 3, 1.0))
        assert overall(progress).completed == 2  # Ctrl-C: 2 of 3 done, not 3 of 3


def test_the_overall_bar_says_workers_are_starting_until_a_run_starts():
    planned = runs()
    out = io.StringIO()
    with SweepProgress(Console(file=out), "starting 2 worker processes") as progress:
        progress.on_plan(planned, {r.run_id for r in planned})
        assert overall(progress).fields["info"] == "starting 2 worker processes"
        progress.notice("retraining 1 run (abc): the data changed since it was trained")
        progress.on_event(RunStarted(planned[0].run_id, 10, 0))
        assert overall(progress).fields["info"] == ""
    assert "retraining 1 run (abc)" in out.getvalue()


def test_a_notice_is_plain_text_not_markup():
    # "'data[v2].npz': ..." lost its "[v2]" (rich read it as a style); "a[/]" raised MarkupError
    out = io.StringIO()
    with SweepProgress(Console(file=out, width=200), "") as progress:
        progress.notice("'data[v2].npz': the labels are not 0..K-1; a[/]")
    assert "'data[v2].npz': the labels are not 0..K-1; a[/]" in out.getvalue()

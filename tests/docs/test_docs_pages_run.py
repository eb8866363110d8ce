"""Every page's code runs as written: for each page of README.md and docs/ that has a block to
run (see docblocks.py), its files are written, its python blocks run as one script and its
``batchlab`` commands after it, in an empty folder; then what they stored and printed is
checked. A page with blocks to run and no check here fails, so a new example cannot go
unrun or unchecked."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from docblocks import ROOT, PageRun, blocks, pages, run_page

from batchlab.store import Store


@dataclass(frozen=True)
class PageCheck:
    check: Callable[[PageRun], None]
    requires: tuple[str, ...] = ()               # optional extras the page's code imports
    setup: Callable[[Path], None] | None = None  # what the page assumes the reader has


def runs_of(db: Path, experiment: str) -> list:
    with Store(db) as st:
        return st.runs(experiment)


def check_readme(r: PageRun) -> None:
    study = runs_of(r.work / "study.db", "my-model")
    assert len(study) == 4 and {x.status for x in study} == {"completed"}
    (loop,) = runs_of(r.work / "study.db", "my-loop")
    assert loop.status == "completed" and loop.steps == 3 * math.ceil(600 / 32)
    assert "4 0 4" in r.script.stdout                       # the function sweep's plan
    assert len(runs_of(r.work / "study.db", "my-function")) == 4
    cli = runs_of(r.work / "batchlab.db", "my-study")
    assert sorted((x.config["train"]["batch_size"], x.config["train"]["lr"]) for x in cli) == [
        (16, 0.01), (16, 0.1), (64, 0.01), (64, 0.1)]
    assert all(x.config["model"]["name"] == "mymodels:make_net" for x in cli)
    with Store(r.work / "batchlab.db") as st:
        assert [p.kind for p in st.probes("my-study")] == ["lr_range"]
    for name in ("my-model.html", "my-study-report.html"):
        assert (r.work / name).is_file(), name


def check_python_api(r: PageRun) -> None:
    out = r.script.stdout
    assert "4 0 4" in out                                  # planned, skipped, trained
    assert "compared by validation loss; best config" in out
    assert "['my-study', 'my-regression']" in out
    for name in ("study.db", "my-study.html", "my-regression.html", "my-study-again.html",
                 "batchlab.db"):
        assert (r.work / name).is_file(), name
    assert [x.status for x in runs_of(r.work / "batchlab.db", "nb")] == ["completed"] * 2


def check_tracking(r: PageRun) -> None:
    with Store(r.work / "batchlab.db") as st:
        (rec,) = st.runs("my-loop")
        assert rec.status == "completed" and rec.steps == 16
        assert st.metrics(rec.id)["val_acc"].epoch.tolist() == [1.0, 2.0]


def check_function_sweeps(r: PageRun) -> None:
    assert "8 0 8" in r.script.stdout
    assert "best config: batch" in r.script.stdout
    assert "['completed', 'completed']" in r.script.stdout
    assert (r.work / "my-function.html").is_file()


def check_integrations(r: PageRun) -> None:
    with Store(r.work / "batchlab.db") as st:
        (lit,) = st.runs("lit-study")
        assert lit.status == "completed" and lit.steps == 5 * math.ceil(400 / 32)
        assert st.metrics(lit.id)["val_acc"].epoch.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
        (keras_run,) = st.runs("keras-digits")
        assert keras_run.status == "completed" and keras_run.steps == 3 * math.ceil(1400 / 16)
        assert len(st.metrics(keras_run.id)["val_acc"].value) == 3


def write_logs(work: Path) -> None:
    """A TensorBoard run folder and two Keras CSVLogger files, as a reader's would be."""
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(work / "runs" / "bs=16_lr=0.1")) as w:
        for step in range(1, 31):
            w.add_scalar("Loss/train", 2.3 / step, step)
            if step % 10 == 0:
                w.add_scalar("Accuracy/val", 0.3 * step / 10, step)
    for batch in (16, 64):
        lines = ["epoch,loss,accuracy,val_loss,val_accuracy,learning_rate"]
        lines += [f"{e},{1.5 / (e + 1)},{0.5 + 0.1 * e},{1.6 / (e + 1)},{0.45 + 0.1 * e},0.01"
                  for e in range(3)]
        (work / f"bs={batch}.csv").write_text("\n".join(lines) + "\n")


def check_importing(r: PageRun) -> None:
    (tb,) = runs_of(r.work / "batchlab.db", "blog")
    assert tb.config["train"]["batch_size"] == 16 and tb.config["train"]["lr"] == 0.1
    csvs = runs_of(r.work / "batchlab.db", "blog-csv")
    assert sorted(x.config["train"]["batch_size"] for x in csvs) == [16, 64]
    assert {x.config["data"]["n_train"] for x in csvs} == {60000}
    (py,) = runs_of(r.work / "python.db", "from-python")  # the Python block's import
    assert py.config["train"]["batch_size"] == 16 and py.config["data"]["n_train"] == 60000


CHECKS = {
    "README.md": PageCheck(check_readme),
    "docs/python-api.md": PageCheck(check_python_api),
    "docs/tracking.md": PageCheck(check_tracking),
    "docs/function-sweeps.md": PageCheck(check_function_sweeps, requires=("lightning",)),
    "docs/integrations.md": PageCheck(check_integrations, requires=("lightning", "keras")),
    "docs/importing.md": PageCheck(check_importing, requires=("tensorboard",),
                                   setup=write_logs),
}


def pages_that_run(root: Path | None = None) -> list[str]:
    """The pages with a block to run (of this checkout, or of a copy at ``root``)."""
    root = root or ROOT
    return [p for p in pages(root) if any(b.runs for b in blocks(p, root))]


def test_every_page_with_code_to_run_is_run_and_checked():
    assert sorted(pages_that_run()) == sorted(CHECKS)


@pytest.mark.parametrize("page", sorted(CHECKS))
def test_the_page_runs_as_written(page, tmp_path):
    check = CHECKS[page]
    for module in check.requires:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{page} needs the optional {module!r}")
    check.check(run_page(page, tmp_path, check.setup))


def test_the_python_pages_show_every_entry_point():
    """What the Python API and function-sweep pages promise to show is in their code."""
    def code(page: str) -> str:
        return "\n".join(b.code for b in blocks(page) if b.lang == "python")

    for call in ("bl.sweep(", "bl.lr_find(", "bl.max_batch(", "bl.throughput(", "bl.noise_scale(",
                 "bl.recommend(", "bl.open(", ".report(", ".next(", "loss=", "optimizer="):
        assert call in code("docs/python-api.md"), call
    for call in ("bl.sweep(", "run.config", "run.lr", "run.scheduler(", "run.log(", "run.save(",
                 "run.restore()", "run.should_stop()", "DataLoader(", "torch.autocast(",
                 "clip_grad_norm_(", "BatchlabLogger(run=run)", "BatchlabPruning(run)"):
        assert call in code("docs/function-sweeps.md"), call
    for call in ("bl.sweep(", "bl.lr_find(", "bl.track(", "run.log("):
        assert call in code("README.md"), call

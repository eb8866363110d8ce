"""A regression through the command line: an .npz of float targets swept, probed, recommended
(with --validate) and reported, as a user runs it. Compared by validation loss throughout.

The commands run once in a module fixture (sweep first, then the probes two at a time, then
the report); each test checks one command's result."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import batchlab_cli
from sklearn.datasets import make_regression

from batchlab.store import Store

NAME = "cli-regression"


def spec_text(path: Path) -> str:
    return f"""
name = "{NAME}"
[data]
name = "npz"
path = "{path}"
[model]
name = "mlp"
hidden = [16]
[train]
epochs = 5
lr = 0.02
batch_size = 16
threads = 1
checkpoint = false
[sweep.grid]
"train.lr" = [0.02, 0.05]
"""


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    folder = tmp_path_factory.mktemp("regression")
    x, y = make_regression(n_samples=300, n_features=8, noise=5.0, random_state=0)
    np.savez(folder / "reg.npz", x=x, y=(y - y.mean()) / y.std())  # float64, not whole numbers
    spec = folder / "reg.toml"
    spec.write_text(spec_text(folder / "reg.npz"))
    db = folder / "s.db"
    out = {"sweep": batchlab_cli("sweep", spec, "--store", db, "--workers", "1")}
    jobs = {"lr-find": ("lr-find", spec, "--store", db),
            "recommend": ("recommend", spec, "--store", db, "--validate"),
            "noise-scale": ("noise-scale", spec, "--store", db),
            "report": ("report", NAME, "--store", db)}
    with ThreadPoolExecutor(2) as pool:  # a 2-core box; most of each command is start-up
        futures = {k: pool.submit(batchlab_cli, *args, cwd=folder) for k, args in jobs.items()}
        out.update({k: f.result() for k, f in futures.items()})
    return folder, db, out


def ok(res) -> str:
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    return res.stdout


def test_sweep_trains_with_mse_and_records_no_accuracy(done) -> None:
    _, db, out = done
    ok(out["sweep"])
    with Store(db) as st:
        runs = st.runs(NAME)
        assert len(runs) == 2 and {r.status for r in runs} == {"completed"}
        for r in runs:
            assert "val_acc" not in st.metric_names(r.id) and "best_val_acc" not in r.summary
            val = st.metrics(r.id, ["val_loss"])["val_loss"].value
            # standardised targets: the untrained MSE is about 1; a fitted linear map is far below
            assert len(val) == 6 and val[-1] < 0.5 * val[0], val
            assert r.summary["num_classes"] is None


def test_lr_find_prints_a_suggestion(done) -> None:
    _, db, out = done
    text = ok(out["lr-find"])
    row = next(line for line in text.splitlines() if re.match(r"^\W*16\W", line))
    suggested = float(re.split(r"\s*│\s*", row.strip("│ "))[1])
    with Store(db) as st:
        (probe,) = st.probes(NAME, "lr_range")
    assert probe.result["per_batch"][0]["suggested_lr"] == pytest.approx(suggested, rel=0.01)


def test_noise_scale_measures_the_mse_gradients(done) -> None:
    text = ok(done[2]["noise-scale"])
    b = float(re.search(r"B_simple = ([\d.]+)", text).group(1))
    assert b > 0


def test_recommend_validate_compares_by_validation_loss(done) -> None:
    text = ok(done[2]["recommend"]).replace("\n", " ")
    assert re.search(r"recommended: batch \d+, lr [\d.e-]+", text)
    # before: "No comparison with your base configuration: a run has no validation accuracy."
    assert "No comparison" not in text
    assert re.search(r"(beats|BETTER than|within 5% of).*lowest validation loss [\d.e-]+ vs", text)
    with Store(done[1]) as st:
        runs = st.runs(f"{NAME}-validate")
    assert runs and {r.status for r in runs} == {"completed"}


def test_report_builds_and_ranks_by_validation_loss(done) -> None:
    folder, _, out = done
    ok(out["report"])
    html = (folder / f"{NAME}-report.html").read_text()
    assert "configurations are compared by validation loss; best config: batch 16, lr" in html

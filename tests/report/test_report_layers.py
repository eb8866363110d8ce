"""The per-layer panel in the report and the dashboard, from a tracked run with a frozen layer."""

import pytest
import torch
from torch import nn

import batchlab as bl
from batchlab.report.report import write_report
from batchlab.store import Store
from batchlab.web import payload
from batchlab.web.server import ASSETS


@pytest.fixture()
def cut_store(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    model[0].requires_grad_(False)  # frozen by hand: no gradient reaches it
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "s.db"
    with bl.track("cut", {"batch_size": 16, "n_train": 64}, store=path) as run:
        run.watch(model)
        n = 0
        for _ in range(4):
            for i in range(0, 64, 16):
                opt.zero_grad()
                loss = nn.functional.cross_entropy(model(x[i:i + 16]), y[i:i + 16])
                loss.backward()
                opt.step()
                n += 1
                run.log(n, train_loss=loss)
            run.log(n, val_loss=float(loss), val_acc=0.5)
    return path


def test_report_shows_the_layer_panel_with_its_sentence(cut_store, tmp_path):
    with Store(cut_store) as st:
        write_report(st, "cut", tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert 'id="layers"' in html and "Per-layer signals of run" in html
    assert "no gradient reaches `0` (it is detached or frozen)" in html
    assert len(list((tmp_path / "r_files").glob("layers-1.png"))) == 1


def test_dashboard_summary_names_the_layer_kinds_and_serves_the_panel(cut_store):
    with Store(cut_store) as st:
        s = payload.summary(st, "cut")
        curves = payload.curves(st, st.runs("cut"))
    assert "no_gradient" in s["layer_kinds"]
    (rid, found), = s["findings"].items()
    assert [f["kind"] for f in found if f["kind"] in s["layer_kinds"]] == ["no_gradient"]
    assert curves[rid]["layer/0/grad_norm"]["value"] == [0.0, 0.0, 0.0]
    assert ASSETS["/static/layers.js"][0] == "web/layers.js"

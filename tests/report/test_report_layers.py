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
    return track_cut(tmp_path / "s.db")


def track_cut(path, experiment="cut"):
    """A tracked run of 16 steps of a 2-layer MLP whose first layer is frozen, in ``path``."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    model[0].requires_grad_(False)  # frozen by hand: no gradient reaches it
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with bl.track(experiment, {"batch_size": 16, "n_train": 64}, store=path) as run:
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
            run.log(n, val_loss=loss.item(), val_acc=0.5)
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



def test_compare_shows_both_experiments_layer_panels(tmp_path):
    """Before, `batchlab compare` left the per-layer section out (docs: the same sections as
    the report)."""
    from batchlab.report.report import write_comparison

    path = track_cut(tmp_path / "s.db", "cut")
    track_cut(path, "cut2")
    with Store(path) as st:
        result = write_comparison(st, "cut", "cut2", tmp_path / "c.html")
    html = (tmp_path / "c.html").read_text()
    part = html[html.index('<section id="layers">'):]
    part = part[:part.index("</section>")]
    assert part.count('<div class="layer-panel">') == 2
    assert part.count("no gradient reaches `0` (it is detached or frozen)") == 2
    assert sorted(p.name for p in (tmp_path / "c_files").glob("*layers-*.png")) == [
        "a-layers-1.png", "b-layers-1.png"]
    assert {p.name for p in result.figures} >= {"a-layers-1.png", "b-layers-1.png"}

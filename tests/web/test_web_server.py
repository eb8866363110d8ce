"""The dashboard's JSON endpoints (no browser), its read-only guarantee and its command line."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from shell_signals import sigint_as_in_a_terminal
from web_helpers import get, serving
from web_stores import EVIL, EVIL_ERROR, make_store, rows

from batchlab.analysis import analyze_experiment
from batchlab.events import MetricRows
from batchlab.jsonsafe import json_safe
from batchlab.report.style import StyleMap
from batchlab.store import Store
from batchlab.web.server import DEFAULT_HOST, DashboardError, make_server


def test_experiments_and_runs(dashboard, grid_db):
    status, body = get(dashboard + "api/experiments")
    assert status == 200
    assert [e["name"] for e in body["experiments"]] == ["grid"]
    assert body["experiments"][0]["counts"] == {"completed": 4}
    status, body = get(dashboard + "api/runs?experiment=grid")
    assert status == 200
    runs = body["runs"]
    with Store(grid_db, create=False) as st:
        assert [r["run_id"] for r in runs] == [r.id for r in st.runs("grid")]
    assert {(r["batch_size"], r["lr"]) for r in runs} == {(16, 0.1), (16, 0.01), (64, 0.1), (64, 0.01)}
    assert all(r["status"] == "completed" and r["final_val_acc"] == 0.9 for r in runs)
    assert runs[0]["label"].startswith("lr ") and runs[0]["total_steps"] == runs[0]["progress_step"]


def test_style_is_the_reports_mapping(dashboard):
    """Colour = the LR applied, dash = batch size, exactly as report/style.py maps them."""
    from matplotlib.colors import to_hex

    _, body = get(dashboard + "api/runs?experiment=grid")
    smap = StyleMap.build([0.1, 0.01], [16, 64])
    for r in body["runs"]:
        st = body["style"]["runs"][r["run_id"]]
        assert st["color"] == to_hex(smap.color(r["lr"]))
        assert (st["dash"] == []) == (r["batch_size"] == 16)  # the smallest batch is solid
    assert [e["label"] for e in body["style"]["lrs"]] == ["lr 0.01", "lr 0.1"]
    assert [e["label"] for e in body["style"]["batches"]] == ["batch 16", "batch 64"]


def test_curves_send_only_the_rows_from_the_last_step_seen(dashboard, grid_db):
    _, body = get(dashboard + "api/curves?experiment=grid")
    curves = body["curves"]
    rid = next(iter(curves))
    loss = curves[rid]["train_loss"]
    assert loss["step"] == list(range(1, len(loss["step"]) + 1))
    assert set(loss) == {"value", "epoch", "step", "examples", "wall_time"}
    last = loss["step"][-1]
    with Store(grid_db, create=False) as st:
        batch = st.run(rid).config["train"]["batch_size"]
    with Store(grid_db) as st:  # a sweep writing on
        st.record(MetricRows(rid, rows(batch, 0.1, last + 1, last + 3), last + 3))
    since = quote(json.dumps({r: max(c["train_loss"]["step"]) for r, c in curves.items()}))
    _, body = get(dashboard + f"api/curves?experiment=grid&since={since}")
    new = body["curves"]
    assert new[rid]["train_loss"]["step"] == [last, last + 1, last + 2, last + 3]
    for r, c in new.items():  # the others: only their last step again (every metric logged there)
        if r != rid:
            assert {name: cols["step"] for name, cols in c.items()} == \
                {name: [curves[r]["train_loss"]["step"][-1]] for name in c}


def test_summary_has_the_reports_parts(dashboard, grid_db):
    _, body = get(dashboard + "api/summary?experiment=grid")
    best = [h for h in body["heatmaps"] if h["metric"] == "best_val_acc"]
    assert len(best) == 1 and best[0]["batch_sizes"] == [16, 64] and best[0]["lrs"] == [0.1, 0.01]
    assert all(v is not None for row in best[0]["mean"] for v in row)
    assert body["target"]["target"] is not None and body["target"]["rows"]
    assert len(body["findings"]) == 4 and all(body["findings"].values())
    assert body["answer"]["headline"].startswith("Pick ") and body["probes"] == []
    with Store(grid_db, create=False) as st:  # one source: the report's answer, word for word
        analysis = analyze_experiment(st, "grid")
    assert body["answer"] == json.loads(json.dumps(json_safe(analysis.answer)))
    assert {k: v["sentence"] for k, v in body["verdicts"].items()} == {
        r.run_id: r.verdict.sentence for r in analysis.runs}
    assert len(body["verdicts"]) == 4 and all(v["label"] and v["sentence"] for v in body["verdicts"].values())


def test_bad_requests_get_json_errors(dashboard):
    status, body = get(dashboard + "api/runs?experiment=nope")
    assert status == 404 and "no experiment named 'nope'" in body["error"]
    assert get(dashboard + "api/runs")[0] == 404  # no experiment named
    assert get(dashboard + "api/nothing?experiment=grid")[0] == 404
    for path in ("static/../server.py", "static/%2e%2e/server.py", "etc/passwd", "static/payload.py"):
        assert get(dashboard + path)[0] == 404
    status, body = get(dashboard + "api/curves?experiment=grid&since=not-json")
    assert status == 200 and body["curves"]  # a bad 'since' means: everything


def test_assets_are_served_from_the_package(dashboard):
    from batchlab.web.server import ASSETS

    for route in ASSETS:  # every file the page names is packaged
        assert get(dashboard + route.lstrip("/"))[0] == 200
    status, page = get(dashboard)
    assert status == 200 and b"/static/uPlot.iife.min.js" in page and b"http" not in page
    status, js = get(dashboard + "static/uPlot.iife.min.js")
    assert status == 200 and js.startswith(b"/*! https://github.com/leeoniya/uPlot")
    assert b".innerHTML" not in get(dashboard + "static/charts.js")[1]
    assert b".innerHTML" not in get(dashboard + "static/dashboard.js")[1]


def digest(path: Path) -> tuple[str, list[str]]:
    with sqlite3.connect(path) as conn:
        dump = list(conn.iterdump())
    return hashlib.sha256(path.read_bytes()).hexdigest(), dump


def test_no_endpoint_writes(dashboard, grid_db):
    before = digest(grid_db)
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, body = get(dashboard + "api/runs?experiment=grid", method=method)
        assert status == 405 and "read-only" in body["error"]
    for path in ("api/experiments", "api/runs?experiment=grid", "api/curves?experiment=grid",
                 "api/summary?experiment=grid", ""):
        assert get(dashboard + path)[0] == 200
    assert digest(grid_db) == before


def test_the_store_is_opened_read_only(grid_db):
    with Store(grid_db, create=False, read_only=True) as st:
        assert st.readonly
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            st.conn.execute("DELETE FROM runs")
    with pytest.raises(ValueError):
        Store(grid_db, read_only=True)  # create=True with read_only is a contradiction
    with Store(grid_db, create=False) as st:
        assert len(st.runs()) == 4


def test_another_host_header_is_refused(dashboard):
    status, body = get(dashboard + "api/experiments", headers={"Host": "attacker.example:80"})
    assert status == 403
    assert get(dashboard + "api/experiments", headers={"Host": "localhost"})[0] == 200


def test_binds_loopback_by_default(grid_db):
    assert DEFAULT_HOST == "127.0.0.1"
    server = make_server(grid_db, port=0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()


def test_a_port_in_use_is_an_error(grid_db):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(DashboardError, match=f"port {port} on 127.0.0.1 is already in use"):
            make_server(grid_db, "127.0.0.1", port)
        res = subprocess.run([sys.executable, "-m", "batchlab", "dashboard", "--store", str(grid_db),
                              "--port", str(port)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "already in use" in res.stderr and "--port" in res.stderr and "Traceback" not in res.stderr


def test_a_missing_store_is_an_error(tmp_path):
    res = subprocess.run([sys.executable, "-m", "batchlab", "dashboard", "--store",
                          str(tmp_path / "none.db"), "--port", "0"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2 and "does not exist" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "none.db").exists()


def test_cli_prints_the_url_serves_and_stops_on_ctrl_c(grid_db):
    proc = subprocess.Popen([sys.executable, "-m", "batchlab", "dashboard", "--store", str(grid_db),
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_as_in_a_terminal)
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, line + proc.stderr.read()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        assert get(url + "api/experiments")[0] == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 0, err
    assert "dashboard stopped" in out and "Traceback" not in err


def test_hostile_names_come_back_as_plain_data(tmp_path):
    """JSON carries the text as it is; escaping is the page's job (textContent)."""
    path = tmp_path / "evil.db"
    make_store(path, EVIL, evil_run=True)
    with serving(path) as url:
        _, body = get(url + "api/experiments")
        assert body["experiments"][0]["name"] == EVIL
        _, body = get(url + f"api/runs?experiment={quote(EVIL)}")
    assert body["runs"][-1]["status"] == "pruned" and body["runs"][-1]["reason"] == EVIL_ERROR


def test_importing_the_server_loads_nothing_heavy():
    code = ("import sys, batchlab.web.server, batchlab.cli.dashboard; "
            "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ})
    assert res.stdout.strip() == "[]", res.stderr


def test_an_evaluation_stored_after_its_steps_training_row_is_not_missed(dashboard, grid_db):
    with Store(grid_db, create=False) as st:
        rid = st.runs("grid")[0].id
        last = int(st.metrics(rid, ["train_loss"])["train_loss"].step[-1])
    with Store(grid_db) as st:
        st.record(MetricRows(rid, [("train_loss", last + 1, 0.5, 9.0, 0, 1.0)], last + 1))
    since = quote(json.dumps({rid: last + 1}))  # the page has seen step last + 1 ...
    with Store(grid_db) as st:  # ... and then that step's evaluation lands
        st.record(MetricRows(rid, [("val_acc", last + 1, 0.95, 9.0, 0, 1.0)], last + 1))
    _, body = get(dashboard + f"api/curves?experiment=grid&since={since}")
    assert body["curves"][rid]["val_acc"]["step"] == [last + 1]
    assert body["curves"][rid]["val_acc"]["value"] == [0.95]


def test_a_long_history_is_thinned_but_new_rows_come_as_they_are(dashboard, grid_db):
    from batchlab.report.series import MAX_POINTS

    with Store(grid_db, create=False) as st:
        rid = st.runs("grid")[0].id
    n = 3 * MAX_POINTS
    with Store(grid_db) as st:
        st.record(MetricRows(rid, [("train_loss", s, 1.0 + (s == 4321) * 9, s / 8, s * 16, s * 0.01)
                                   for s in range(25, n + 1)], n))
    _, body = get(dashboard + "api/curves?experiment=grid")
    steps = body["curves"][rid]["train_loss"]["step"]
    assert len(steps) <= MAX_POINTS and steps[0] == 1 and steps[-1] == n
    assert 10.0 in body["curves"][rid]["train_loss"]["value"]  # the spike is kept
    with Store(grid_db) as st:
        st.record(MetricRows(rid, [("train_loss", s, 0.5, s / 8, s * 16, s * 0.01)
                                   for s in range(n + 1, n + 11)], n + 10))
    _, body = get(dashboard + "api/curves?experiment=grid&since=" + quote(json.dumps({rid: n})))
    assert body["curves"][rid]["train_loss"]["step"] == list(range(n, n + 11))

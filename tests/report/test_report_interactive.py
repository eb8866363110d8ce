"""The report's interactive charts: their data embedded as escaped JSON, thinned, with the
report's style; the scripts inlined (the browser side is tested in tests/web)."""

from __future__ import annotations

import json
import re

import numpy as np

from batchlab.report.interactive import MAX_POINTS, script_json
from batchlab.store import Series
from batchlab.web.payload import thinned_curves


def embedded(html: str) -> dict:
    blocks = re.findall(r'<script type="application/json" class="bl-data">(.*?)</script>', html, re.S)
    assert len(blocks) == 1
    return json.loads(blocks[0])


def test_the_report_embeds_every_runs_curves(made, store):
    data = embedded(made.html)
    runs = store.runs("tiny")
    assert [r["run_id"] for r in data["runs"]] == [r.id for r in runs]
    for r in runs:
        stored = store.metrics(r.id)
        assert set(data["curves"][r.id]) == set(stored)
        assert data["curves"][r.id]["train_loss"]["step"] == stored["train_loss"].step.tolist()
        assert data["style"]["runs"][r.id]["color"].startswith("#")
    assert set(data["summary"]["findings"]) == {r.id for r in runs}
    assert 'id="interactive"' in made.html and made.html.count("BatchlabCharts") >= 2


def test_script_json_cannot_end_its_element():
    hostile = {"name": "</script><script>alert(1)</script><!-- & -->"}
    text = script_json(hostile)
    assert not set("<>&") & set(text)
    assert json.loads(text) == hostile


def test_long_runs_are_thinned_keeping_their_ends_and_spikes():
    n = 20_000
    value = np.linspace(2.0, 0.1, n)
    value[12_345] = 50.0  # a spike that striding would miss
    s = Series(np.arange(1, n + 1), value, np.arange(1, n + 1) / 100, np.arange(1, n + 1) * 32,
               np.arange(1, n + 1) * 0.01)
    cols = thinned_curves([("r", {"train_loss": s})], MAX_POINTS)["r"]["train_loss"]
    assert len(cols["step"]) <= MAX_POINTS
    assert cols["step"][0] == 1 and cols["step"][-1] == n
    assert 50.0 in cols["value"] and 12_346 in cols["step"]

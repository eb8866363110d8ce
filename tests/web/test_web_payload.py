"""The dashboard's payload helpers: the report's dashes in pixels, a run's label and reason,
and the ``since`` parameter read defensively."""

from __future__ import annotations

from dataclasses import replace

from web_stores import EVIL_ERROR, make_store

from batchlab.report.style import LINESTYLES
from batchlab.store import Store
from batchlab.web.payload import LINE_PX, _dash, reason, run_label, runs
from batchlab.web.server import _since


def test_dashes_are_the_reports_scaled_to_pixels():
    assert _dash(LINESTYLES[0]) == []
    assert _dash(LINESTYLES[1]) == [round(6 * LINE_PX, 2), round(2.5 * LINE_PX, 2)]
    assert all(len(_dash(s)) % 2 == 0 for s in LINESTYLES)


def test_label_reason_and_attempts(tmp_path):
    make_store(tmp_path / "s.db", evil_run=True)
    with Store(tmp_path / "s.db", create=False) as st:
        records = st.runs("grid")
    first, last = records[0], records[-1]
    assert run_label(first) == f"lr {first.config['train']['lr']:g} · batch " \
        f"{first.config['train']['batch_size']} · seed {first.config['train']['seed']}"
    assert reason(first) is None and reason(last) == EVIL_ERROR
    why = "collapsed to chance: val acc 0.1 at or below 0.15 for 3 evaluations"
    assert reason(replace(first, status="pruned", error=why)) == why  # a pruned run's reason
    rows = runs(records)
    assert [r["attempts"] for r in rows] == [1, 1, 1, 1]
    assert rows[-1]["status"] == "pruned"  # any status string is passed through


def test_since_is_read_defensively():
    assert _since('{"a": 3, "b": 4.0}') == {"a": 3, "b": 4}
    assert _since("[1, 2]") == {} and _since("{") == {} and _since('{"a": "x"}') == {}

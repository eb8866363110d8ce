"""Runs added outside a plan (bl.track, imports): placed after the experiment's runs, the
experiment's spec kept, and the same id added again reset rather than doubled."""

from batchlab.events import MetricRows
from batchlab.store import Store
from batchlab.store.tracked import add_tracked_run


def test_tracked_runs_append_keep_the_spec_and_reset_on_readd(tmp_path):
    with Store(tmp_path / "s.db") as st:
        add_tracked_run(st, "exp", "ta", {"train": {"batch_size": 8}}, {"train.batch_size": 8})
        st.conn.execute("UPDATE experiments SET spec_json='{\"name\": \"exp\", \"mine\": 1}'")
        add_tracked_run(st, "exp", "tb", {"train": {"batch_size": 16}}, {})
        st.record(MetricRows("ta", [("train_loss", 1, 0.5, 0.1, 8, 0.0)], 1))
        add_tracked_run(st, "exp", "ta", {"train": {"batch_size": 32}}, {"train.batch_size": 32})
        runs = st.runs("exp")
        assert [r.id for r in runs] == ["ta", "tb"]  # re-added: keeps its place
        assert runs[0].config == {"train": {"batch_size": 32}} and runs[0].point == {"train.batch_size": 32}
        assert runs[0].status == "pending" and st.count_metric_rows("ta") == 0
        assert st.experiments()[0].spec == {"name": "exp", "mine": 1}

"""What ``bl.sweep`` returns (``batchlab.apiresult.SweepResult``) once its store has moved."""

import numpy as np
import pytest
from torch import nn

import batchlab as bl
from batchlab.errors import StoreError


def test_a_result_whose_store_moved_says_so_in_the_apis_words(tmp_path):
    # rows, analysis, plot and next said "run a sweep first or pass --store PATH": a CLI flag,
    # of a sweep that did run
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    result = bl.sweep("t", model=nn.Linear(3, 2), train=(x, (x[:, 0] > 0).astype(np.int64)),
                      batch_size=8, epochs=1, lr=0.1, store=tmp_path / "s.db", verbose=False)
    (tmp_path / "s.db").rename(tmp_path / "moved.db")
    for read in (lambda: result.rows, lambda: result.analysis, lambda: result.plot(),
                 lambda: result.next(), lambda: result.report(tmp_path / "r.html")):
        with pytest.raises(StoreError) as err:
            read()
        assert str(err.value) == (f"the store of sweep 't', '{tmp_path / 's.db'}', is gone (moved or "
                                  "deleted since the sweep); bl.open(its new path) reads the "
                                  "experiment there.")
    with bl.open(tmp_path / "moved.db") as db:
        assert len(db.runs("t")) == 1


def test_a_report_or_next_spec_under_the_home_folder_may_be_written_with_a_tilde(tmp_path, monkeypatch):
    # "~/r.html" made a folder named "~" in the current folder and wrote the report there
    home, here = tmp_path / "home", tmp_path / "here"
    home.mkdir()
    here.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(here)
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    result = bl.sweep("t", model=nn.Linear(3, 2), train=(x, (x[:, 0] > 0).astype(np.int64)),
                      grid={"lr": [1e-4, 1e-3]}, batch_size=8, epochs=1, lr=0.1,
                      store=tmp_path / "s.db", verbose=False)
    assert result.report("~/r.html").html == home / "r.html" and (home / "r.html").is_file()
    follow = result.next("~/n.toml")
    assert follow.path == home / "n.toml" and follow.path.is_file()  # an LR grid to refine
    assert not (here / "~").exists()

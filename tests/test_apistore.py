"""The Python API's ``store=``: its type, the early check, and the store's errors in the API's
words (``store=``), while the CLI keeps its ``--store``."""

import numpy as np
import pytest
from torch import nn

import batchlab as bl
from batchlab.apistore import api_store_errors, api_wording, check_store, store_path
from batchlab.errors import SpecError, StoreError
from batchlab.store import Store


@pytest.mark.parametrize("cli, api", [
    ("--store '/d' is a folder; give a file name inside it, e.g. --store /d/batchlab.db.",
     "store='/d' is a folder; give a file name inside it, e.g. store='/d/batchlab.db'."),
    ("Pass --store with a path in an existing folder.",
     "Pass store= with a path in an existing folder."),
    ("and pass --store recovered.db, or pass --store with a new file name.",
     "and pass store='recovered.db', or pass store= with a new file name."),
    ("Retry when it is done, or pass another --store.",
     "Retry when it is done, or pass another store= path."),
    ("run a sweep first or pass --store PATH.", "run a sweep first or pass store='PATH'."),
])
def test_the_cli_flag_is_said_as_the_api_argument(cli, api):
    assert api_wording(cli) == api


def test_store_errors_raised_inside_keep_their_type_and_cause(tmp_path):
    with pytest.raises(StoreError) as err, api_store_errors():
        Store(tmp_path)
    assert str(err.value).startswith(f"store='{tmp_path}' is a folder")
    with pytest.raises(StoreError) as cli:  # the CLI's wording is unchanged
        Store(tmp_path)
    assert str(cli.value).startswith(f"--store '{tmp_path}' is a folder")


@pytest.mark.parametrize("store", [None, 5, "", ["a.db"]])
def test_a_store_that_is_not_a_path_is_a_spec_error(store):
    with pytest.raises(SpecError) as err:
        store_path(store, "batchlab.sweep('t')")
    assert str(err.value).startswith(f"batchlab.sweep('t'): store={store!r} must be the path")


def test_check_store_refuses_what_the_store_would_and_creates_nothing(tmp_path):
    foreign = tmp_path / "notes.txt"
    foreign.write_text("not a store")
    with pytest.raises(StoreError, match="is not a batchlab store .* Pass store= with a new"):
        check_store(foreign)
    with pytest.raises(StoreError, match="notes.txt' is a file, not a folder. Pass store="):
        check_store(foreign / "s.db")
    check_store(tmp_path / "new.db")  # a new store in an existing folder passes, made later
    assert not (tmp_path / "new.db").exists()
    with Store(tmp_path / "s.db"):
        pass
    check_store(tmp_path / "s.db")  # an existing store passes


def test_a_store_in_a_missing_folder_is_refused_not_made(tmp_path):
    """As the CLI's --store: a mistyped folder would start a fresh store and train everything
    again; refused before anything trains, in the API's words, and nothing is made."""
    missing = tmp_path / "no-such-dir" / "s.db"
    x = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    y = np.arange(40) % 2
    with pytest.raises(StoreError) as err:
        bl.sweep("m", model=nn.Linear(4, 2), train=(x, y), epochs=1, store=missing, verbose=False)
    text = str(err.value)
    assert f"store='{missing}': its folder '{missing.parent}' does not exist" in text
    assert "--store" not in text and "mkdir -p" in text
    with pytest.raises(StoreError, match="does not exist, and batchlab does not make it"):
        with bl.track("t", store=missing):
            pass
    assert not missing.parent.exists()


def test_a_store_under_the_home_folder_may_be_written_with_a_tilde(tmp_path, monkeypatch):
    # "~/s.db" was refused for its missing folder '~', with the advice to make it (mkdir -p '~')
    monkeypatch.setenv("HOME", str(tmp_path))
    x = np.zeros((40, 3), np.float32)
    result = bl.sweep("t", model=nn.Linear(3, 2), train=(x, np.arange(40) % 2), batch_size=8,
                      epochs=1, store="~/s.db", verbose=False)
    assert result.store == tmp_path / "s.db" and (tmp_path / "s.db").is_file()
    with bl.open("~/s.db") as db:
        assert db.experiments() == ["t"]
    with bl.track("mine", store="~/s.db") as run:
        run.log(1, train_loss=1.0)
    with bl.open(tmp_path / "s.db") as db:
        assert db.experiments() == ["t", "mine"]

"""bl.sweep(workers=N) from a script's unguarded top level is refused at once; it used to hang,
each spawned worker running the script's sweep again and waiting on the parent's claims."""

import subprocess
import sys
import textwrap

from batchlab.store import Store

OBJECTS = '''
from torch import nn


def make():
    return nn.Linear(4, 2)


def train(run):
    run.log(1, train_loss=0.5)
    run.log(1, val_loss=0.4, val_acc=0.6)
'''

SCRIPT = '''
import numpy as np

import batchlab as bl
import guarded_objects as objs

x = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
data = (x, (x[:, 0] > 0).astype(np.int64))
for call in (lambda: bl.sweep("model", model=objs.make, train=data, epochs=1, workers=2,
                              grid={"batch_size": [8, 16]}, store="s.db", verbose=False),
             lambda: bl.sweep("function", objs.train, workers=2, grid={"batch_size": [8, 16]},
                              store="s.db", verbose=False)):
    try:
        call()
    except bl.BatchlabError as err:
        print("REFUSED", err)

if __name__ == "__main__":
    print("TRAINED", bl.sweep("guarded", objs.train, workers=2, grid={"batch_size": [8, 16]},
                              store="s.db", verbose=False).trained)
'''


def test_an_unguarded_sweep_with_workers_is_refused_and_a_guarded_one_trains(tmp_path):
    (tmp_path / "guarded_objects.py").write_text(OBJECTS)
    (tmp_path / "study.py").write_text(textwrap.dedent(SCRIPT))
    res = subprocess.run([sys.executable, "study.py"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = " ".join(res.stdout.split())
    refused = ("REFUSED workers=2: batchlab.sweep runs at the top level of the script "
               f"{tmp_path / 'study.py'} (line 9)")  # the top-level statement: the for loop
    # the model sweep and the function sweep, refused in the script (and again in each worker
    # as it imports the script, where the guarded sweep does not run again)
    assert out.count(refused) >= 2, out
    assert 'under `if __name__ == "__main__":`, or use workers=1' in out
    assert "TRAINED 2" in out
    with Store(tmp_path / "s.db") as st:  # the refused sweeps stored nothing
        assert [e.name for e in st.experiments()] == ["guarded"]

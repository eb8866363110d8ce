"""Sweeps whose every run fails, or whose checkpoint folder cannot be written: a non-zero exit
with the common cause and its fix, never a silent exit 0."""

import os
import subprocess
import sys

from batchlab.store import Store

SPEC = """
name = "bad"
[data]
name = "synthetic"
shape = [6]
classes = 3
size = 80
[model]
name = "trainfails:net"
[train]
steps = 3
threads = 1
[sweep.grid]
"train.batch_size" = [8, 16]
"""

MODULE = """
from torch import nn

class Net(nn.Module):
    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.fc = nn.Linear(6, num_classes)
    def forward(self, x):
        if self.training:  # fine in the preflight (eval mode), fails in every run
            raise RuntimeError("boom [in training]")
        return self.fc(x)

def net(input_shape, num_classes):
    return Net(input_shape, num_classes)
"""


# fails only on a training batch of 16 examples: batch 8 completes, batch 16 fails
SOMETIMES = MODULE.replace("if self.training:", "if self.training and x.shape[0] == 16:")


def sweep(folder, spec_text, db="s.db", *args, command="sweep", module=MODULE):
    (folder / "spec.toml").write_text(spec_text)
    (folder / "trainfails.py").write_text(module)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), *sys.path])}
    return subprocess.run([sys.executable, "-m", "batchlab", command, "spec.toml", "--store", db,
                           *args], capture_output=True, text=True, cwd=folder, env=env, timeout=300)


def test_every_run_failing_exits_nonzero_with_the_common_cause(tmp_path):
    res = sweep(tmp_path, SPEC)
    assert res.returncode == 1, res.stderr
    assert "all 2 runs of 'bad' failed with the same error: RuntimeError: boom [in training]" in res.stderr
    assert "Fix that cause and run the same command again" in res.stderr
    assert "Traceback" not in res.stderr
    with Store(tmp_path / "s.db") as st:
        assert [r.status for r in st.runs("bad")] == ["failed", "failed"]


def test_read_only_checkpoint_folder_is_a_preflight_error(tmp_path, small_fs):
    small_fs(64, at=tmp_path / "s.db.ckpt", readonly=True)
    res = sweep(tmp_path, SPEC.replace("trainfails:net", "mlp"))
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    assert "cannot write 's.db.ckpt' while writing the runs' checkpoints" in res.stderr
    assert "read-only" in res.stderr
    assert "train.checkpoint = false" in res.stderr
    with Store(tmp_path / "s.db") as st:  # no run was attempted
        assert st.experiments() == []


def test_run_exits_nonzero_when_its_run_failed_beside_good_runs(tmp_path):
    """The experiment's earlier good run must not hide that the run just trained failed."""
    good = sweep(tmp_path, SPEC, "s.db", "--set", "train.batch_size=8", command="run",
                 module=SOMETIMES)
    assert good.returncode == 0, good.stderr
    bad = sweep(tmp_path, SPEC, "s.db", "--set", "train.batch_size=16", command="run",
                module=SOMETIMES)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    with Store(tmp_path / "s.db") as st:
        status = {r.config["train"]["batch_size"]: (r.id, r.status) for r in st.runs("bad")}
    assert status[8][1] == "completed" and status[16][1] == "failed"
    err = " ".join(bad.stderr.split())
    assert f"the run this command trained ({status[16][0]}) failed: RuntimeError: boom [in training]" in err
    assert "Fix that cause and run the same command again" in err and "Traceback" not in err
    # run again with the run fixed: it is trained again, and the exit is 0
    fixed = sweep(tmp_path, SPEC, "s.db", "--set", "train.batch_size=16", command="run",
                  module=MODULE.replace("if self.training:", "if False:"))
    assert fixed.returncode == 0, fixed.stderr


def test_sweep_exits_nonzero_with_the_count_when_some_of_its_runs_failed(tmp_path):
    spec = SPEC.replace("[8, 16]", "[4, 8, 16]")
    res = sweep(tmp_path, spec, module=SOMETIMES)
    assert res.returncode == 1, res.stdout + res.stderr
    err = " ".join(res.stderr.split())
    assert "1 of the 3 runs this command trained failed: RuntimeError: boom [in training]" in err
    assert "The other runs are stored" in err and "Traceback" not in err
    with Store(tmp_path / "s.db") as st:
        assert sorted(r.status for r in st.runs("bad")) == ["completed", "completed", "failed"]
    # the same command again trains only the failed run, which fails again: exit 1 again
    again = sweep(tmp_path, spec, module=SOMETIMES)
    assert again.returncode == 1
    assert "the run this command trained" in " ".join(again.stderr.split())

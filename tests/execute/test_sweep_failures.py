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


def sweep(folder, spec_text, db="s.db"):
    (folder / "spec.toml").write_text(spec_text)
    (folder / "trainfails.py").write_text(MODULE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), *sys.path])}
    return subprocess.run([sys.executable, "-m", "batchlab", "sweep", "spec.toml", "--store", db],
                          capture_output=True, text=True, cwd=folder, env=env, timeout=300)


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

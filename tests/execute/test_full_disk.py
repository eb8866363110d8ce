"""A disk that fills up mid-sweep: exit 2 with one paragraph (what, where, how much space),
every finished run kept, no temporary file left, and the same command resumes once there is room."""

import subprocess
import sys

import pytest
from test_faults import wait_for

from batchlab.store import Store

SPEC = """
name = "full"
[data]
name = "synthetic"
shape = [64]
classes = 4
size = 3000
[model]
name = "mlp"
hidden = [128]
[train]
epochs = 12
threads = 1
[sweep.grid]
"train.batch_size" = [16, 24, 32]
"""


def completed(db):
    try:
        with Store(db, create=False) as st:
            return [r.id for r in st.runs("full") if r.status == "completed"]
    except Exception:  # not created yet
        return []


@pytest.mark.parametrize("workers", [1, 2])
def test_disk_full_mid_sweep(tmp_path, small_fs, workers):
    disk = small_fs(3072)
    spec = tmp_path / "full.toml"
    spec.write_text(SPEC)
    db = disk / "s.db"
    cmd = [sys.executable, "-m", "batchlab", "sweep", str(spec), "--store", str(db),
           "--workers", str(workers)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: len(completed(db)) >= 1, 240)
        done_before = completed(db)
        filler = disk / "filler"
        with open(filler, "wb", buffering=0) as f:  # fill the disk up, whatever is on it
            try:
                while True:
                    f.write(b"x" * 4096)
            except OSError:
                pass
        _, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    assert "is full" in err and "free" in err and str(disk) in err
    assert not [p for p in disk.rglob("*") if ".tmp" in p.name or p.name.endswith(".new")]
    filler.unlink()
    assert set(done_before) <= set(completed(db))  # every finished run kept
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    with Store(db, create=False) as st:
        runs = st.runs("full")
        assert [r.status for r in runs] == ["completed"] * 3
        assert all(r.attempts == 1 for r in runs if r.id in done_before)  # not trained again

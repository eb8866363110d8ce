"""Fixtures shared by every test folder."""

import subprocess

import pytest
import torch

from batchlab.train import checkpoint_timing


@pytest.fixture(autouse=True)
def fresh_checkpoint_costs(monkeypatch):
    """Each test starts as a fresh process would: no checkpoint write cost measured yet, so a
    run's first epoch end writes one (a later run of the same model in one process starts
    from the measured cost instead, see ``train/checkpoint_timing.py``; tests must not depend
    on which tests ran before them)."""
    monkeypatch.setattr(checkpoint_timing, "_MEASURED", {})


@pytest.fixture
def second_auto_lr_cut(monkeypatch):
    """``lr = "auto"``'s probe as the sweep calls it, each call's batch size recorded in the
    returned list, with a Ctrl-C while the second is measured (the first call at a sweep's
    second batch size)."""
    import batchlab.probes.auto_lr as auto_lr

    real, calls = auto_lr.lr_find, []

    def measured(config, **kwargs):
        calls.append(config.train.batch_size)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(config, **kwargs)

    monkeypatch.setattr(auto_lr, "lr_find", measured)
    return calls


@pytest.fixture
def small_fs(tmp_path):
    """Mount a tiny tmpfs: ``small_fs(kb)`` returns its folder (``at``: mount on that path,
    made if missing; ``readonly``: mount it read-only); ``remount_ro(folder)`` makes a mounted
    one read-only later. Skips the test where mounting is refused (not root, no CAP_SYS_ADMIN)."""
    mounted = []

    def mount(kb: int, at=None, readonly: bool = False):
        d = at or tmp_path / f"fs{len(mounted)}"
        d.mkdir(parents=True, exist_ok=True)
        options = f"size={kb}k" + (",ro" if readonly else "")
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(d)],
                             capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
        mounted.append(d)
        return d

    yield mount
    for d in reversed(mounted):
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def remount_ro(folder):
    res = subprocess.run(["mount", "-o", "remount,ro", str(folder)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot remount read-only: {res.stderr.strip()}")


@pytest.fixture
def read_only():
    """``read_only(folder)`` remounts a ``small_fs`` folder read-only."""
    return remount_ro


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` skip without a CUDA GPU; ``python bench/gpu_check.py`` runs them
    (``pytest -m cuda``) on a GPU machine."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run python bench/gpu_check.py on a GPU machine)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)

"""Fingerprints of a run's data and model code (issue 9 item 2): content, not names."""

from __future__ import annotations

import os

import numpy as np

from batchlab.fingerprint import Fingerprint, HashCache, changes, code_fingerprint, data_fingerprint
from batchlab.spec import DataSpec, ModelSpec, RunConfig, TrainSpec


def npz(path, seed=0):
    np.savez(path, x=np.random.default_rng(seed).normal(size=(20, 3)), y=np.arange(20) % 2)


def test_data_fingerprint_follows_content_not_mtime(tmp_path):
    f = tmp_path / "d.npz"
    npz(f)
    spec = DataSpec(name="npz", path=str(f))
    cache = HashCache(tmp_path / "cache" / "h.json")
    first = data_fingerprint(spec, cache)
    os.utime(f, ns=(1, 1))  # touched, same bytes: same fingerprint, no retraining
    assert data_fingerprint(spec, cache) == first
    npz(f, seed=1)  # overwritten with other data
    assert data_fingerprint(spec, cache) != first


def test_unchanged_files_are_not_read_again(tmp_path):
    folder = tmp_path / "imgs"
    for cls in ("a", "b"):
        (folder / cls).mkdir(parents=True)
        for i in range(3):
            (folder / cls / f"{i}.png").write_bytes(bytes([i]) * 100)
    spec = DataSpec(name="image_folder", path=str(folder))
    cache_file = tmp_path / "h.json"
    cache = HashCache(cache_file)
    value = data_fingerprint(spec, cache)
    cache.save()
    assert cache.hashed == 6
    again = HashCache(cache_file)  # the next sweep, a new process: only stat calls
    assert data_fingerprint(spec, again) == value and again.hashed == 0
    (folder / "b" / "2.png").write_bytes(b"other")
    third = HashCache(cache_file)
    assert data_fingerprint(spec, third) != value and third.hashed == 1
    (folder / "b" / "2.png").rename(folder / "a" / "9.png")  # moved to another class
    assert data_fingerprint(spec, HashCache(cache_file)) not in (value, None)


def test_corrupt_or_unwritable_cache_is_harmless(tmp_path):
    f = tmp_path / "d.npz"
    npz(f)
    bad = tmp_path / "h.json"
    bad.write_text("{not json")
    spec = DataSpec(name="npz", path=str(f))
    expected = data_fingerprint(spec, HashCache(tmp_path / "fresh.json"))
    assert data_fingerprint(spec, HashCache(bad)) == expected
    blocked = HashCache(tmp_path / "file" / "h.json")
    (tmp_path / "file").write_text("a file where the cache folder should be")
    data_fingerprint(spec, blocked)
    blocked.save()  # no exception: the cache is an optimisation only


def test_builtin_data_and_zoo_models_have_no_fingerprint(tmp_path):
    cache = HashCache(tmp_path / "h.json")
    assert data_fingerprint(DataSpec(name="digits"), cache) is None
    assert code_fingerprint(ModelSpec(name="mlp")) is None


def test_code_fingerprint_is_the_module_source(tmp_path, monkeypatch):
    (tmp_path / "fpmodels_a.py").write_text("import torch\ndef make():\n    return torch.nn.ReLU()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = ModelSpec(name="fpmodels_a:make")
    before = code_fingerprint(spec)
    assert before is not None
    (tmp_path / "fpmodels_a.py").write_text("import torch\ndef make():\n    return torch.nn.Tanh()\n")
    after = code_fingerprint(spec)
    assert after not in (before, None)
    config = RunConfig(data=DataSpec(), model=spec, train=TrainSpec())
    why = changes(config, Fingerprint(code=before), Fingerprint(code=after))
    assert len(why) == 1 and "fpmodels_a:make" in why[0] and "fpmodels_a.py" in why[0]
    assert changes(config, Fingerprint(code=after), Fingerprint(code=after)) == []
    # recorded by an older batchlab (nothing stored): not a reason to retrain
    assert changes(config, Fingerprint(), Fingerprint(code=after)) == []


def test_weights_file_is_fingerprinted(tmp_path):
    import torch

    from batchlab.fingerprint import factory_source_file, fingerprint

    torch.save({"w": torch.zeros(2)}, tmp_path / "w.pth")
    config = RunConfig(data=DataSpec(), train=TrainSpec(),
                       model=ModelSpec(name="torchvision:resnet18", weights=str(tmp_path / "w.pth")))
    cache = HashCache(tmp_path / "h.json")
    before = fingerprint(config, cache)
    assert before.weights is not None and before.code is None  # "torchvision" is no factory module
    assert factory_source_file("torchvision:resnet18") is None
    assert Fingerprint.from_dict(before.to_dict()) == before
    torch.save({"w": torch.ones(2)}, tmp_path / "w.pth")  # the same file name, other weights
    after = fingerprint(config, cache)
    assert after.weights not in (before.weights, None)
    why = changes(config, before, after)
    assert why == [f"the weights file of model.weights = '{tmp_path / 'w.pth'}' changed"]
    assert "weights" not in fingerprint(RunConfig(data=DataSpec(), model=ModelSpec(), train=TrainSpec()),
                                        cache).to_dict()  # stored as before for runs without weights


def test_a_sweep_reads_its_hash_cache_file_once_not_once_per_run(tmp_path, monkeypatch):
    import batchlab.fingerprint as fp
    from batchlab.spec import spec_from_dict

    opened = []

    class Counting(fp.HashCache):
        def __init__(self, path):
            opened.append(path)
            super().__init__(path)

    monkeypatch.setattr(fp, "HashCache", Counting)
    spec = spec_from_dict({"data": {"name": "digits", "cache_dir": str(tmp_path)}})
    config = RunConfig(data=spec.data, model=spec.model, train=spec.train)
    caches = fp.HashCaches()
    for _ in range(5):
        caches.run(config)
        caches.data(config.data)
    assert opened == [tmp_path / fp.HASH_CACHE_NAME]


def test_the_cache_file_is_read_only_when_a_file_is_hashed(tmp_path, monkeypatch):
    from pathlib import Path

    cache_file = tmp_path / "h.json"
    cache_file.write_text('{"/elsewhere/a.npz": [1, 2, "abc"]}')
    reads = []
    real = Path.read_text

    def counting(self, *args, **kwargs):
        reads.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting)
    cache = HashCache(cache_file)
    assert data_fingerprint(DataSpec(name="digits"), cache) is None
    cache.save()
    assert reads == []  # built-in data: nothing to hash, the cache is never parsed
    f = tmp_path / "d.npz"
    npz(f)
    data_fingerprint(DataSpec(name="npz", path=str(f)), cache)
    data_fingerprint(DataSpec(name="npz", path=str(f)), cache)
    assert reads == [cache_file]


def test_saving_drops_entries_of_files_that_are_gone(tmp_path):
    import json

    kept, gone = tmp_path / "kept.npz", tmp_path / "gone.npz"
    npz(kept)
    npz(gone, seed=1)
    cache_file = tmp_path / "h.json"
    cache = HashCache(cache_file)
    for f in (kept, gone):
        data_fingerprint(DataSpec(name="npz", path=str(f)), cache)
    cache.save()
    assert set(json.loads(cache_file.read_text())) == {str(kept.resolve()), str(gone.resolve())}
    gone.unlink()  # a temporary folder removed, a data set moved
    npz(kept, seed=2)
    cache = HashCache(cache_file)
    data_fingerprint(DataSpec(name="npz", path=str(kept)), cache)
    cache.save()
    assert set(json.loads(cache_file.read_text())) == {str(kept.resolve())}
    again = HashCache(cache_file)
    data_fingerprint(DataSpec(name="npz", path=str(kept)), again)
    assert again.hashed == 0  # the entry in use survived the pruning

"""What a run's results depend on beyond its config: the data's bytes and the user's model code.

A run id hashes the resolved config only, so editing a model factory (ReLU -> Tanh) or
overwriting the data file would keep the id and silently reuse stale results. A
``Fingerprint`` closes that gap: the content hash of the data file(s) under ``data.path``, of
the source file of the module a user factory (``model.name = "pkg.mod:make"``) or training
function (``train.function``) lives in, and
of the pretrained weights file ``model.weights`` loads.
It is stored beside the run and compared before a finished run is skipped; a difference
retrains the run and says why (``batchlab.execute.freshness``).

Hashing a big data set on every sweep would be slow, so each file's SHA-256 is cached on disk
keyed by its absolute path, size and mtime: an untouched file costs one ``stat``, and a file
that was touched but not changed hashes to the same fingerprint (no needless retraining).

Not covered (stated in docs/runs.md): other modules the factory's module imports, and
built-in data sets (digits, mnist1d, synthetic), which are fixed by the config itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchlab.paths import written_whole
from batchlab.spec import DataSpec, ModelSpec, RunConfig

HASH_CACHE_NAME = "file-hashes.json"
LIBRARY_PREFIXES = ("torchvision", "timm")  # model.name "torchvision:x" is not a factory module
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Fingerprint:
    """Content hashes a run's results depend on; None where the config alone fixes them."""

    data: str | None = None  # SHA-256 over the files under data.path
    code: str | None = None  # SHA-256 of the user factory's module source
    weights: str | None = None  # SHA-256 of the model.weights file (local or hub cache)

    def to_dict(self) -> dict[str, str | None]:
        out = {"data": self.data, "code": self.code}
        if self.weights is not None:  # stored only when there are weights, as before otherwise
            out["weights"] = self.weights
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Fingerprint:
        return cls(data=raw.get("data"), code=raw.get("code"), weights=raw.get("weights"))


def default_cache_file(spec: DataSpec) -> Path:
    """Where file hashes are cached: beside the other cached data (data.cache_dir's rule)."""
    chosen = spec.cache_dir or os.environ.get("BATCHLAB_CACHE") or "~/.cache/batchlab"
    return Path(chosen).expanduser() / HASH_CACHE_NAME


class HashCache:
    """SHA-256 of files, remembered on disk by (path, size, mtime) so each file is read once.

    An unreadable or corrupt cache file is treated as empty; a cache that cannot be written is
    simply not saved (hashes are then recomputed next time, never wrong).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.hashed = 0  # files actually read by this object (the tests count them)
        self._loaded: dict[str, list[Any]] | None = None
        self._dirty = False

    @property
    def _entries(self) -> dict[str, list[Any]]:
        # read on first use: a sweep of built-in data and zoo models hashes nothing, so it
        # never pays for parsing a cache that holds every data file this machine has seen
        if self._loaded is None:
            self._loaded = {}
            try:
                loaded = json.loads(self.path.read_text())
                if isinstance(loaded, dict):
                    self._loaded = loaded
            except (OSError, ValueError):
                pass
        return self._loaded

    def digest(self, file: Path) -> str:
        """The SHA-256 hex digest of ``file``'s bytes, from the cache when size and mtime match."""
        key = str(file.resolve())
        st = file.stat()
        stamp = [st.st_size, st.st_mtime_ns]
        cached = self._entries.get(key)
        if isinstance(cached, list) and len(cached) == 3 and cached[:2] == stamp:
            return str(cached[2])
        with open(file, "rb") as fh:
            value = hashlib.file_digest(fh, "sha256").hexdigest()
        self.hashed += 1
        self._entries[key] = [*stamp, value]
        self._dirty = True
        return value

    def save(self) -> None:
        if not self._dirty:
            return
        # entries of files that are gone (a temporary folder, a moved data set) are dropped,
        # so the cache stays the size of the data in use, not of every file ever hashed
        kept = {key: value for key, value in self._entries.items() if os.path.exists(key)}
        with contextlib.suppress(OSError):  # a cache that cannot be saved is hashed again
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with written_whole(self.path) as tmp:  # readers see the old or the new file
                tmp.write_text(json.dumps(kept))
            self._dirty = False


def data_fingerprint(spec: DataSpec, cache: HashCache) -> str | None:
    """Hash of every file under ``data.path`` (names relative to it, and contents); None when
    the data set has no path (built-in) or the path does not exist (the loader reports that)."""
    if not spec.path:
        return None
    root = Path(spec.path).expanduser()
    if root.is_file():
        return cache.digest(root)
    if not root.is_dir():
        return None
    total = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        total.update(f"{file.relative_to(root).as_posix()}\0{cache.digest(file)}\n".encode())
    return total.hexdigest()


def factory_source_file(name: str) -> Path | None:
    """The source file of the module a user factory ``"pkg.mod:make"`` lives in, or None
    (a zoo model, a module without a source file, or one that cannot be found)."""
    module_name = name.partition(":")[0].strip()
    if ":" not in name or not module_name or module_name in LIBRARY_PREFIXES:
        return None
    module = sys.modules.get(module_name)
    origin = getattr(module, "__file__", None) if module is not None else None
    if origin is None and module_name != "__main__":
        try:
            found = importlib.util.find_spec(module_name)
        except (ImportError, ValueError):
            return None  # preflight reports the import failure with its own message
        origin = found.origin if found is not None else None
    if not origin or not Path(origin).is_file():
        return None
    return Path(origin)


def code_fingerprint(spec: ModelSpec | str) -> str | None:
    """SHA-256 of the module source of a user factory (its ModelSpec) or of a training
    function (``train.function``, "module:function"); None for zoo models."""
    source = factory_source_file(spec if isinstance(spec, str) else spec.name)
    if source is None:
        return None
    return hashlib.sha256(source.read_bytes()).hexdigest()


def weights_file(spec: ModelSpec) -> Path | None:
    """The file ``model.weights`` loads (a local file, or a torchvision weights name's file in
    the torch hub cache), or None when there is none or it cannot be resolved (building the
    model then reports why)."""
    if spec.weights is None:
        return None
    from batchlab.errors import BatchlabError
    from batchlab.models.weights import resolve_file  # imports torch: only when weights are set

    try:
        return resolve_file(spec)
    except BatchlabError:
        return None


def fingerprint(config: RunConfig, cache: HashCache) -> Fingerprint:
    """The fingerprint of one run's inputs."""
    weights = weights_file(config.model)
    code = code_fingerprint(config.train.function or config.model)  # the function builds its model
    return Fingerprint(data=data_fingerprint(config.data, cache), code=code,
                       weights=cache.digest(weights) if weights is not None else None)


def changed_parts(old: Fingerprint, new: Fingerprint) -> list[str]:
    """Which recorded parts of ``old`` differ in ``new``: "data", "code", "weights" (a part
    not recorded before, None, counts as unchanged)."""
    return [part for part in ("data", "code", "weights")
            if getattr(old, part) is not None and getattr(old, part) != getattr(new, part)]


def changes(config: RunConfig, old: Fingerprint, new: Fingerprint) -> list[str]:
    """Why a run trained with ``old`` inputs is stale under ``new`` ones, in words (empty when
    it is not), one per ``changed_parts``. A part not recorded before (None) counts as
    unchanged: runs stored by an older batchlab are not all retrained on upgrade."""
    why = []
    parts = changed_parts(old, new)
    if "data" in parts:
        why.append(f"the data at '{config.data.path}' changed")
    if "code" in parts:
        name = config.train.function or config.model.name
        source = factory_source_file(name)
        where = f" ({source})" if source else ""
        what = "training function" if config.train.function else "model factory"
        why.append(f"the source of {what} '{name}'{where} changed")
    if "weights" in parts:
        why.append(f"the weights file of model.weights = '{config.model.weights}' changed")
    return why


class HashCaches:
    """One on-disk file-hash cache per cache folder (``data.cache_dir`` may differ per run)."""

    def __init__(self) -> None:
        self._caches: dict[Path, HashCache] = {}

    def _cache(self, spec: DataSpec) -> HashCache:
        where = default_cache_file(spec)
        if where not in self._caches:  # read each cache file once, not once per run
            self._caches[where] = HashCache(where)
        return self._caches[where]

    def data(self, spec: DataSpec) -> str | None:
        return data_fingerprint(spec, self._cache(spec))

    def run(self, config: RunConfig) -> Fingerprint:
        return fingerprint(config, self._cache(config.data))

    def save(self) -> None:
        for cache in self._caches.values():
            cache.save()

"""What importers share: a run's config from its name, ``--set`` and hparams; tag -> metric
names (``--map``); and writing one run's scalar series into the store through ``bl.track``.

A run's config comes from three places, later ones winning: ``key=value`` parts of its folder
or file name (``LeNet-MNIST-2-BatchSize=16`` gives batch_size 16), the hyper-parameters the log
holds, and ``--set``. Keys are normalised (``BatchSize``, ``batch-size``, ``bs`` ->
``batch_size``; ``LearningRate``, ``learning_rate`` -> ``lr``), so they fill batchlab's config.
A run with no LR from any of them whose log holds an LR series takes its first value
(``lr_from_log``). The config is checked in the import's words (``check_config``) before
anything is stored: an import reads and checks every run (``PlannedRun``) before it opens the
store (``store_runs``), so a refused import leaves no store file behind.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchlab.errors import SpecError
from batchlab.integrations.names import batchlab_name, batchlab_names, own_name
from batchlab.overrides import parse_value
from batchlab.store import Store
from batchlab.track import _POSITIVE_INT, TrackedRun

ALIASES = {"batchsize": "batch_size", "bs": "batch_size", "batch": "batch_size", "lr": "lr",
           "learningrate": "lr", "ntrain": "n_train", "numclasses": "num_classes",
           "stepsperepoch": "steps_per_epoch", "epochs": "epochs", "seed": "seed",
           "optimizer": "optimizer", "opt": "optimizer", "model": "model", "data": "data"}
# key=value inside a name, between any separators: the value is a number (1e-3 included) or a
# word of letters and digits (so 'opt=adam_lr=0.1' is two pairs)
_NAME_PAIR = re.compile(r"([A-Za-z][A-Za-z_]*)=([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|[A-Za-z][A-Za-z0-9]*)")
# what an imported run's metrics are called in batchlab (any other name is kept as it is);
# samples_per_s too: the report draws it, and batchlab's own export writes it
KNOWN_METRICS = {"train_loss", "val_loss", "train_acc", "val_acc", "lr", "train_eval_loss",
                 "samples_per_s"}


def config_key(key: str) -> str:
    """A hyper-parameter name in batchlab's spelling (unknown names keep theirs); a spec path
    such as ``train.batch_size`` gives its last part."""
    key = key.rsplit(".", 1)[-1] if key.split(".", 1)[0] in ("train", "data", "model") else key
    return ALIASES.get(re.sub(r"[^a-z0-9]", "", key.lower()), key)


def _name_key(key: str) -> str:
    """``config_key`` of a key read from a name; a key glued to a word before it by '_'
    ('lenet_bs' in 'lenet_bs=16') is its known last part."""
    parts = key.split("_")
    for i in range(len(parts)):
        known = config_key("_".join(parts[i:]))
        if known in ALIASES.values():
            return known
    return config_key(key)


def config_from_name(name: str) -> dict[str, Any]:
    """``key=value`` parts of a folder or file name, whatever separates them: 'LeNet-BatchSize=16',
    'bs=16_lr=0.1', 'run,lr=1e-3,opt=adam' -> batch_size 16, lr 0.1, ..."""
    return {_name_key(k): parse_value(v) for k, v in _NAME_PAIR.findall(name)}


def import_notes(name: str, tags: dict[str, str | None], config: dict[str, Any]) -> list[str]:
    """What to tell about one imported run: the tags or columns it dropped (``--map TAG=``),
    those kept under their own name (nothing maps them to batchlab's ``train_loss``,
    ``val_acc``, ...: the report does not draw them), and a batch size or LR it lacks."""
    notes = []
    dropped = sorted(t for t, m in tags.items() if m is None and t.lower() not in ("epoch", "step"))
    unmapped = sorted(t for t, m in tags.items() if m is not None and not m.startswith("@")
                      and m not in KNOWN_METRICS and own_name(m) != m)  # layer/... is read
    if dropped:
        notes.append(f"{name}: dropped {', '.join(dropped)}.")
    if unmapped:
        notes.append(f"{name}: kept under their own names, which the report and the diagnosis do "
                     f"not read: {', '.join(unmapped)}; map one with --map TAG=val_acc (or "
                     "train_loss, val_loss, train_acc, lr), or drop it with --map TAG=.")
    missing = [k for k in ("batch_size", "lr") if config.get(k) is None]
    if missing:
        example = " ".join(f"--set {k}={'32' if k == 'batch_size' else '0.1'}" for k in missing)
        notes.append(f"{name}: no {' or '.join(missing)} in its name (key=value parts such as "
                     f"'bs=32_lr=0.1') or its log; pass them with {example}, or the report cannot "
                     "place the run by batch size and LR.")
    return notes


def lr_from_log(config: dict[str, Any], series: dict[str, list[Point]], name: str,
                notes: list[str] | None) -> dict[str, Any]:
    """``config``, with ``lr`` the first finite value of the log's ``lr`` series when no name,
    hparams or ``--set`` gave one (the LR the run started from, which the report places it
    by), and a note saying so; unchanged otherwise."""
    if config.get("lr") is not None:
        return config
    # 7 significant digits: TensorBoard keeps float32, whose 0.05 reads 0.05000000074505806
    values = [float(f"{p.value:.7g}") for p in sorted(series.get("lr", []), key=lambda p: p.step)
              if math.isfinite(p.value) and p.value >= 0]
    if not values:
        return config
    last = f"; it ends at {values[-1]:g}" if values[-1] != values[0] else ""
    if notes is not None:
        notes.append(f"{name}: lr {values[0]:g}, the first value of its logged lr{last} (pass "
                     "--set lr=... to place the run by another).")
    return {**config, "lr": values[0]}


def check_config(config: dict[str, Any], name: str, overrides: dict[str, Any]) -> None:
    """SpecError, in the words of ``batchlab import``, for a value ``bl.track`` would refuse:
    counts (batch_size, n_train, ...) must be positive integers and lr a finite number >= 0
    (an infinite one would place the run nowhere on the report's LR axis). Says whether
    ``--set`` gave it or the run's name or log did."""
    for key in (*_POSITIVE_INT, "lr"):
        value = config.get(key)
        if value is None or isinstance(value, bool):
            ok = value is None
        elif key == "lr":
            ok = isinstance(value, int | float) and math.isfinite(value) and value >= 0
        else:
            ok = isinstance(value, int) and value >= 1
        if ok:
            continue
        want = "a finite number >= 0" if key == "lr" else "a whole number >= 1"
        source = (f"--set {key}={value}" if key in overrides
                  else f"{key} = {value!r}, read from its name or log,")
        raise SpecError(f"{name}: {source} must be {want}; pass --set {key}=VALUE with {want} "
                        "(or leave it out). Nothing was imported.")


def parse_pairs(items: Iterable[str], option: str) -> dict[str, str]:
    """``KEY=VALUE`` command-line items as a dict; SpecError naming ``option`` otherwise."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"{option} '{item}' must look like KEY=VALUE "
                            f"(for example {option} batch_size=16).")
        out[key.strip()] = value.strip()
    return out


def settings(items: Iterable[str]) -> dict[str, Any]:
    """``--set`` items as config values (numbers parsed, keys normalised)."""
    return {config_key(k): parse_value(v) for k, v in parse_pairs(items, "--set").items()}


EPOCH, EXAMPLES = "@epoch", "@examples"  # counters, not metrics: they place the values
_COUNTERS = {EPOCH: {"epoch", "epochs"}, EXAMPLES: {"examples", "seen", "samples"}}


def metric_for(tag: str, mapping: dict[str, str]) -> str | None:
    """batchlab's name for a log's tag: ``--map TAG=NAME`` first (empty NAME drops the tag).

    Counter tags (``epoch``, ``progress/epoch``, ``progress/examples_seen``, as batchlab's
    TensorBoard export writes them) give EPOCH or EXAMPLES: the epoch and examples seen of the
    values at their step, rather than metrics of their own. The export's other tags
    (``train/eval_loss``, ``layer/<layer>/grad_norm``, ...) give the names they were written
    from (``own_name``), so an export imports back losslessly."""
    if tag in mapping:
        return mapping[tag] or None
    if (own := own_name(tag)) is not None:
        return own
    tokens = set(re.split(r"[/_\-\s.]+", tag.lower())) - {"progress", ""}
    for counter, words in _COUNTERS.items():
        if tokens and tokens <= words:
            return counter
    return batchlab_name(tag)


def metrics_for(tags: Iterable[str], mapping: dict[str, str]) -> dict[str, str | None]:
    """``metric_for`` of each of a run's tags, except that where several tags would take one of
    batchlab's names by their words (a Keras log's ``val_accuracy`` and
    ``val_sparse_top_k_categorical_accuracy``) the plainest takes it and the others keep their
    own names (``batchlab_names``; a second ``lr`` tag is dropped, with the import's note):
    both were stored as one series, the top-k accuracy's values replacing the val acc's.
    ``--map`` and the export's own tags are as given."""
    out = {tag: metric_for(tag, mapping) for tag in tags}
    by_words = [t for t, m in out.items() if m is not None and not m.startswith("@")
                and t not in mapping and own_name(t) is None]
    names = batchlab_names(by_words)
    out.update({tag: names.get(tag) for tag in by_words})
    return out


@dataclass(frozen=True)
class Point:
    """One logged value: at the log's own step (or epoch index) and wall-clock time."""

    step: int
    value: float
    wall_time: float | None = None


def _start_time(times: dict[int, float], unit: str) -> float | None:
    """When the run began, estimated from ``times`` (step or epoch index -> the latest wall
    time logged there); None with fewer than two points in time (no pace to go by).

    A log's first value comes after the work before it: Keras writes epoch 1's values when
    epoch 1 has ended, a step-k value follows k updates. So the start is the first time minus
    that much work at the log's typical pace: the median seconds per step (per epoch) between
    consecutive points, which one slow evaluation or a pause does not move."""
    at = sorted(times)
    if len(at) < 2:
        return None
    # done by the first point: `step` updates, or index + 1 epochs
    done = [i + 1 if unit == "epoch" else i for i in at]
    pace = statistics.median((times[b] - times[a]) / (j - i)
                             for a, b, i, j in zip(at, at[1:], done, done[1:], strict=False))
    return times[at[0]] - max(pace, 0.0) * done[0]


def unknown_clocks(config: dict[str, Any], series: dict[str, list[Point]], unit: str) -> set[str]:
    """The clocks (``UNKNOWN_CLOCKS``) a run imported from ``series`` gets no real value of:
    the wall time when its log holds fewer than two times; for a per-epoch log the steps
    without the steps per epoch (or n_train and batch size) and the examples without n_train
    (or both); for a per-step log the epochs without the ``epoch`` counter or the steps per
    epoch, and the examples without the ``examples`` counter or the batch size."""
    n_train, batch = config.get("n_train"), config.get("batch_size")
    spe = config.get("steps_per_epoch") or (n_train and batch)
    unknown = set()
    if len({p.step for m, pts in series.items() if m not in (EPOCH, EXAMPLES) for p in pts
            if p.wall_time is not None}) < 2:
        unknown.add("wall_time")
    if unit == "epoch":
        unknown |= {"steps"} if not spe else set()
        unknown |= {"examples"} if not n_train and not (spe and batch) else set()
    else:
        unknown |= {"epochs"} if not spe and EPOCH not in series else set()
        unknown |= {"examples"} if not batch and EXAMPLES not in series else set()
    return unknown


def write_run(store: Store, experiment: str, name: str, config: dict[str, Any],
              series: dict[str, list[Point]], *, unit: str = "step",
              start: float | None = None) -> TrackedRun:
    """Store one imported run (replacing an earlier import of the same ``name``).

    ``unit='step'``: a point's step is the updates done. ``unit='epoch'``: it is a 0-based
    epoch index (Keras logs per epoch), stored at the end of that epoch: step = (index + 1) x
    steps per epoch when the config gives them (else index + 1), epoch = index + 1.
    A row's wall time is seconds since ``start`` (when the log records when the run began, as
    batchlab's own export does), else since its estimated start (``_start_time``); the clocks
    the log cannot give (``unknown_clocks``) are stored as such, so nothing is concluded from
    their stand-in values (0 s, 0 examples, the epoch index as the step).
    """
    unknown = unknown_clocks(config, series, unit)
    series = dict(series)  # the counters are taken out of a copy
    counters = {c: {p.step: p.value for p in series.pop(c, [])} for c in (EPOCH, EXAMPLES)}
    run = TrackedRun(experiment, config, store, name=name, unknown=unknown)
    n_train, batch = config.get("n_train"), config.get("batch_size")
    spe = config.get("steps_per_epoch") or (math.ceil(n_train / batch) if n_train and batch else None)
    by_step: dict[int, dict[str, Any]] = {}
    for metric, points in series.items():
        for p in points:
            at = by_step.setdefault(p.step, {"values": {}, "wall": None})
            at["values"][metric] = p.value
            if p.wall_time is not None:
                at["wall"] = max(at["wall"] if at["wall"] is not None else -math.inf, p.wall_time)
    times = {i: at["wall"] for i, at in by_step.items() if at["wall"] is not None}
    start = _start_time(times, unit) if start is None or not times else start
    with run:
        for index in sorted(by_step):
            values, when = by_step[index]["values"], by_step[index]["wall"]
            wall = None if start is None or when is None else max(when - start, 0.0)
            if unit == "epoch":
                step = (index + 1) * spe if spe else index + 1
                # examples seen are unknown (0) unless the config says how many an epoch has
                examples = (index + 1) * n_train if n_train else step * batch if spe and batch else 0
                run.log(step, epoch=float(index + 1), examples=examples, wall_time=wall, **values)
            else:
                examples = counters[EXAMPLES].get(index)
                run.log(index, epoch=counters[EPOCH].get(index), wall_time=wall,
                        examples=None if examples is None else int(examples), **values)
    return run


@dataclass(frozen=True)
class PlannedRun:
    """One run an import has read and checked, not stored yet (``store_runs`` stores it)."""

    name: str
    config: dict[str, Any]
    series: dict[str, list[Point]]
    unit: str = "step"
    start: float | None = None
    notes: tuple[str, ...] = ()  # what the import dropped, left unmapped or lacks


def store_runs(store: Store | str | Path, experiment: str, planned: list[PlannedRun],
               notes: list[str] | None = None) -> list[TrackedRun]:
    """Store ``planned`` runs into ``experiment`` (``write_run``) and add their notes to ``notes``.

    ``store``: an open Store, or the path of one, opened (and created when missing) only here,
    after every run was read and checked: an import refused while reading creates no file.
    """
    if not isinstance(store, Store):
        with Store(store) as opened:
            return store_runs(opened, experiment, planned, notes)
    out = []
    for run in planned:
        out.append(write_run(store, experiment, run.name, run.config, run.series, unit=run.unit,
                             start=run.start))
        if notes is not None:
            notes += run.notes
    return out

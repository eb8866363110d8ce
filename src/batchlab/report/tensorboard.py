"""Export an experiment as TensorBoard event files, written by hand (tensorboard not needed).

Layout: ``out_dir/<run>/events.out.tfevents.<time>.batchlab`` per run, nothing else. ``<run>``
names every swept field with numbers padded so that TensorBoard's text order is numeric order
(``b0016_lr0.010_momentum0.9_s0`` before ``b0256_...``; see ``run_dir_names``). Each file holds
every stored metric as a scalar (``train/loss``, ``train/lr``, ``val/loss``, ``val/acc``, ...),
the progress scalars ``progress/epoch`` and ``progress/examples_seen`` (``progress``),
the run's config as a text summary and its hyperparameters as an HParams session (start +
end). The HParams experiment (which hyperparameters and metrics the dashboard shows) is written
into the first run's file: a file of its own in ``out_dir`` would show as an empty run named
".". The LR is a hyperparameter there, never a metric (its per-step scalar is ``train/lr``).

Messages encoded here (field numbers from tensorflow/core/util/event.proto, summary.proto,
tensor.proto and tensorboard/plugins/hparams/{api,plugin_data}.proto)::

    Event      wall_time=1 (double), step=2 (int64), file_version=3 (string), summary=5
    Summary    value=1 (repeated Value)
    Value      tag=1, simple_value=2 (float), tensor=8, metadata=9
    Metadata   plugin_data=1 {plugin_name=1, content=2}
    Tensor     dtype=1, tensor_shape=2 {dim=2 {size=1}}, string_val=8
    HParamsPluginData  version=1, experiment=2, session_start_info=3, session_end_info=4
"""

from __future__ import annotations

import json
import math
import struct
import time
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from batchlab.report.errors import ReportError
from batchlab.report.plotdata import EVAL_METRICS, slug
from batchlab.report.series import stride_index
from batchlab.report.tfrecord import (
    BYTES,
    FIXED32,
    field_bytes,
    field_double,
    field_varint,
    frame_records,
    key,
    parse,
    read_records,
    varint,
)
from batchlab.results import schedule_label
from batchlab.store import RunRecord, Series, Store

TAGS = {"train_loss": "train/loss", "lr": "train/lr", "val_loss": "val/loss", "val_acc": "val/acc",
        "train_eval_loss": "train/eval_loss", "train_acc": "train/acc",
        "samples_per_s": "perf/samples_per_s"}
# Scalars that are not results: never listed as HParams metrics.
NOT_METRICS = ("train/lr", "progress/epoch", "progress/examples_seen")
FILE_SUFFIX = ".batchlab"
# DT_FLOAT tensor of shape (0,): the value hparams summaries carry (their data is in metadata).
NULL_TENSOR = field_varint(1, 1) + field_bytes(2, field_bytes(2, b""))
DT_STRING = 7
# SessionEndInfo.Status by run status; anything else is STATUS_UNKNOWN (0).
SESSION_STATUS = {"completed": 1, "pruned": 1, "diverged": 2, "failed": 2, "running": 3,
                  "pending": 3}  # pruned: ended as its sweep asked (the reason is in the run's text)
# HParamInfo.type: DATA_TYPE_STRING = 1, DATA_TYPE_BOOL = 2, DATA_TYPE_FLOAT64 = 3
_TYPE_CODES = {str: 1, bool: 2, float: 3}


def scalar_tag(metric: str) -> str:
    """TensorBoard tag of a stored metric name ('train_loss' -> 'train/loss')."""
    return TAGS.get(metric, metric)


NAME_FIELDS = (("train.batch_size", "b"), ("train.lr", "lr"))  # always named, in this order
MAX_DECIMALS = 12


def _padded(values: Sequence[Any]) -> dict[Any, str]:
    """Each value as text that sorts like the number: integers zero-padded to one width,
    other numbers in fixed point with one count of decimals (0.001 -> '0.001', 0.1 -> '0.100');
    anything else slugged. No values (a field no run has, e.g. a tracked run's seed): {}."""
    if not values:
        return {}
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) != len(values) or any(v < 0 or not math.isfinite(v) for v in numbers):
        return {v: slug(str(v)) for v in values}
    decimals = max((min(MAX_DECIMALS, max(0, -Decimal(repr(float(v))).normalize().as_tuple().exponent))
                    for v in numbers if not float(v).is_integer()), default=0)
    width = max(len(str(int(v))) for v in numbers) + (decimals + 1 if decimals else 0)
    return {v: f"{v:0{width}.{decimals}f}" for v in values}


def _fields(record: RunRecord) -> dict[str, Any]:
    """Named fields of a run: batch size and LR, every other swept field (the schedule by its
    label), then the seed."""
    train = record.config.get("train", {})
    out: dict[str, Any] = {short: train.get(field.split(".", 1)[1]) for field, short in NAME_FIELDS}
    for field, value in record.point.items():
        if field.startswith("train.schedule"):
            out["schedule"] = schedule_label(train)
        elif field not in ("train.batch_size", "train.lr", "train.seed"):
            plain = isinstance(value, int | float | str)
            out[field.rsplit(".", 1)[-1]] = value if plain else json.dumps(value)
    out["s"] = train.get("seed")
    return out


def run_dir_names(records: Sequence[RunRecord]) -> dict[str, str]:
    """Run id -> folder name for every run of an experiment, naming every swept field (and
    batch size, LR and seed), numbers padded so that the names sort numerically; the run id's
    first 8 characters are added only to names that would otherwise be the same."""
    fields = [_fields(r) for r in records]
    keys = list(dict.fromkeys(k for f in fields for k in f))
    text = {k: _padded(list(dict.fromkeys(f[k] for f in fields if f.get(k) is not None))) for k in keys}
    names = {r.id: "_".join(f"{k if k != 'schedule' else ''}{text[k][f[k]]}" for k in keys
                             if f.get(k) is not None)
             for r, f in zip(records, fields, strict=True)}
    counts = Counter(names.values())
    return {rid: n if counts[n] == 1 else f"{n}_{rid[:8]}" for rid, n in names.items()}


# ---------------------------------------------------------------------- messages
def event(wall_time: float, step: int, summary: bytes | None = None, file_version: str = "") -> bytes:
    msg = field_double(1, wall_time) + field_varint(2, step)
    if file_version:
        msg += field_bytes(3, file_version.encode())
    if summary is not None:
        msg += field_bytes(5, summary)
    return msg


def _value(tag: str, plugin: str, content: bytes, tensor: bytes) -> bytes:
    """A Summary holding one plugin value: tag, tensor and plugin metadata."""
    plugin_data = field_bytes(1, plugin.encode()) + (field_bytes(2, content) if content else b"")
    metadata = field_bytes(1, plugin_data)
    value = field_bytes(1, tag.encode()) + field_bytes(8, tensor) + field_bytes(9, metadata)
    return field_bytes(1, value)


def _text_tensor(text: str) -> bytes:
    return field_varint(1, DT_STRING) + field_bytes(2, b"") + field_bytes(8, text.encode())


def _proto_value(v: Any) -> bytes:
    """google.protobuf.Value: number_value=2, string_value=3, bool_value=4."""
    if isinstance(v, bool):
        return field_varint(4, int(v))
    if isinstance(v, int | float):
        return field_double(2, float(v))
    return field_bytes(3, str(v).encode())


def _hparams(tag: str, data_field: int, data: bytes) -> bytes:
    """An HParamsPluginData (version 0) summary under one of the hparams plugin's tags."""
    return _value(tag, "hparams", field_varint(1, 0) + field_bytes(data_field, data), NULL_TENSOR)


def session_start(hparams: dict[str, Any], group: str, start: float) -> bytes:
    entries = b"".join(field_bytes(1, field_bytes(1, k.encode()) + field_bytes(2, _proto_value(v)))
                       for k, v in hparams.items())
    info = entries + field_bytes(4, group.encode()) + field_double(5, start)
    return _hparams("_hparams_/session_start_info", 3, info)


def session_end(status: str, end: float) -> bytes:
    return _hparams("_hparams_/session_end_info", 4,
                    field_varint(1, SESSION_STATUS.get(status, 0)) + field_double(2, end))


def experiment_summary(hparam_types: dict[str, type], metric_tags: Sequence[str], created: float) -> bytes:
    infos = b"".join(field_bytes(4, field_bytes(1, name.encode()) + field_varint(4, _TYPE_CODES[t]))
                     for name, t in hparam_types.items())
    metrics = b"".join(field_bytes(5, field_bytes(1, field_bytes(2, tag.encode()))) for tag in metric_tags)
    return _hparams("_hparams_/experiment", 2, field_double(3, created) + infos + metrics)


def scalar_events(tag: str, steps: np.ndarray, values: np.ndarray, walls: np.ndarray) -> list[bytes]:
    """Events of one scalar series; everything but wall time, step and value is a constant
    prefix, so each event is a join of a few byte strings."""
    vpre = field_bytes(1, tag.encode()) + key(2, FIXED32)
    spre = key(1, BYTES) + varint(len(vpre) + 4) + vpre  # Summary.value; the float follows
    epre = key(5, BYTES) + varint(len(spre) + 4) + spre
    with np.errstate(over="ignore"):  # a diverged 1e300 loss becomes inf, as in TensorFlow
        floats = np.asarray(values, dtype=np.float32).tobytes()
    return [b"\x09" + struct.pack("<d", w) + b"\x10" + varint(s) + epre + floats[4 * i:4 * i + 4]
            for i, (s, w) in enumerate(zip(steps.tolist(), walls.tolist(), strict=True))]


# ----------------------------------------------------------------------- export
def hparams_of(record: RunRecord) -> dict[str, Any]:
    """The knobs people compare, plus every swept field, as flat name -> scalar."""
    cfg = record.config
    train = cfg.get("train", {})
    out: dict[str, Any] = {
        "batch_size": train.get("batch_size"), "lr": train.get("lr"),
        "effective_lr": record.summary.get("effective_lr", train.get("lr")),
        "schedule": schedule_label(train), "optimizer": train.get("optimizer"),
        "seed": train.get("seed"), "scale_lr": train.get("scale_lr"),
        "model": cfg.get("model", {}).get("name"), "data": cfg.get("data", {}).get("name"),
        "status": record.status,
    }
    for k, v in record.point.items():  # swept fields the short names above do not cover
        if k.rsplit(".", 1)[-1] not in out and not k.startswith("train.schedule"):
            out[k] = v if isinstance(v, bool | int | float | str) else json.dumps(v)
    return {k: v for k, v in out.items() if v is not None}


def _write(path: Path, records: Sequence[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob(f"events.out.tfevents.*{FILE_SUFFIX}"):
        old.unlink()  # a re-export replaces ours; TensorBoard would merge both files otherwise
    path.write_bytes(frame_records(records))
    return path


PROGRESS_POINTS = 1000  # epoch and examples seen are straight lines between these steps


def progress(series: dict[str, Series]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps, epochs, examples seen, wall times) at every evaluation and at up to
    PROGRESS_POINTS evenly spaced recorded steps (first and last included): both grow linearly
    between, and one event per training step would double the size of the export."""
    present = [s for s in series.values() if s.step.size]
    if not present:
        empty = np.array([])
        return empty.astype(np.int64), empty, empty, empty
    step = np.concatenate([s.step for s in present])
    steps, first = np.unique(step, return_index=True)
    evals = np.concatenate([s.step for name, s in series.items() if name in EVAL_METRICS and s.step.size]
                           or [np.array([], dtype=steps.dtype)])
    keep = np.union1d(stride_index(steps.size, PROGRESS_POINTS), np.searchsorted(steps, evals))
    pick = [np.concatenate([getattr(s, a) for s in present])[first][keep]
            for a in ("epoch", "examples", "wall_time")]
    return steps[keep], pick[0], pick[1], pick[2]


def _run_events(store: Store, record: RunRecord, hp: dict[str, Any], tags: set[str]) -> list[bytes]:
    """Every event of one run's file, scalars in one step-ordered stream (TensorBoard drops
    earlier events when a step goes backwards); adds the metric tags it writes to ``tags``."""
    base = record.started or record.created
    series = store.metrics(record.id)
    config = "```json\n" + json.dumps(record.config, indent=2, sort_keys=True, default=str) + "\n```"
    records = [event(base, 0, file_version="brain.Event:2"),
               event(base, 0, session_start(hp, record.id, base)),
               event(base, 0, _value("config/text_summary", "text", b"", _text_tensor(config)))]
    steps, rows = [], []
    for name, s in series.items():
        tag = scalar_tag(name)
        tags.add(tag)
        rows += scalar_events(tag, s.step, s.value, base + s.wall_time)
        steps.append(s.step)
    at, epoch, examples, wall = progress(series)
    for tag, values in (("progress/epoch", epoch), ("progress/examples_seen", examples)):
        rows += scalar_events(tag, at, values, base + wall)
        steps.append(at)
    order = np.argsort(np.concatenate(steps), kind="stable") if steps else []
    records += [rows[i] for i in order]
    last = max((float(s.wall_time[-1]) for s in series.values() if s.step.size), default=0.0)
    records.append(event(base + last, int(record.steps or record.progress_step or 0),
                         session_end(record.status, base + last)))
    return records


def _remove_stale(out_dir: Path, keep: set[str], run_ids: Sequence[str]) -> None:
    """Delete event files of an earlier export that this one replaces: a root-level file (an
    empty run '.' in TensorBoard) and run folders of these runs under names no longer used
    (found by the run id their HParams session carries; another experiment's folders stay).
    Only files of ours (``FILE_SUFFIX``) are touched; a folder is removed only once empty."""
    for old in out_dir.glob(f"events.out.tfevents.*{FILE_SUFFIX}"):
        old.unlink()
    ids = [rid.encode() for rid in run_ids]
    for folder in out_dir.iterdir() if out_dir.is_dir() else []:
        if not folder.is_dir() or folder.name in keep:
            continue
        for old in folder.glob(f"events.out.tfevents.*{FILE_SUFFIX}"):
            if any(rid in old.read_bytes() for rid in ids):
                old.unlink()
        if not any(folder.iterdir()):
            folder.rmdir()


def export_tensorboard(store: Store, experiment: str, out_dir: str | Path) -> list[Path]:
    """Write ``experiment`` as TensorBoard event files under ``out_dir``: one folder per run
    (``run_dir_names``), nothing else; returns the files in run order. Unknown experiment:
    StoreError; an experiment without runs: ReportError. Open with
    ``tensorboard --logdir out_dir``."""
    out_dir = Path(out_dir)
    runs = store.runs(experiment)
    if not runs:
        raise ReportError(f"experiment '{experiment}' has no runs to export; run its sweep first.")
    stamp = f"events.out.tfevents.{int(time.time())}{FILE_SUFFIX}"
    names = run_dir_names(runs)
    _remove_stale(out_dir, set(names.values()), [r.id for r in runs])
    types: dict[str, type] = {}
    tags: set[str] = set()
    files: list[Path] = []
    first: list[bytes] = []
    for record in runs:
        hp = hparams_of(record)
        types.update({k: float if isinstance(v, int | float) and not isinstance(v, bool) else type(v)
                      for k, v in hp.items()})
        records = _run_events(store, record, hp, tags)
        if not first:  # written last: it also carries the experiment, known once all are read
            first = records
            files.append(out_dir / names[record.id] / stamp)
            continue
        files.append(_write(out_dir / names[record.id] / stamp, records))
    created = min(r.created for r in runs)
    metrics = sorted(t for t in tags if t not in NOT_METRICS)
    first.insert(1, event(created, 0, experiment_summary(types, metrics, created)))
    _write(files[0], first)
    return files


# ------------------------------------------------------------------------ reading
def read_events(path: str | Path) -> list[dict[str, Any]]:
    """Decode an event file written here (CRCs checked): per event its wall_time, step,
    file_version and values (tag, simple_value, plugin, content, tensor)."""
    out = []
    for rec in read_records(Path(path)):
        ev: dict[str, Any] = {"wall_time": None, "step": 0, "file_version": None, "values": []}
        for field, _, v in parse(rec):
            if field == 1:
                ev["wall_time"] = struct.unpack("<d", v)[0]
            elif field == 2:
                ev["step"] = v
            elif field == 3:
                ev["file_version"] = v.decode()
            elif field == 5:
                ev["values"] = [_read_value(val) for f, _, val in parse(v) if f == 1]
        out.append(ev)
    return out


def _read_value(msg: bytes) -> dict[str, Any]:
    value: dict[str, Any] = {"tag": None, "simple_value": None, "plugin": None, "content": b"",
                             "tensor": None}
    for field, _, v in parse(msg):
        if field == 1:
            value["tag"] = v.decode()
        elif field == 2:
            value["simple_value"] = float(np.frombuffer(v, dtype="<f4")[0])
        elif field == 8:
            value["tensor"] = v
        elif field == 9:
            for f, _, pd in parse(v):
                if f == 1:
                    for g, _, x in parse(pd):
                        value["plugin" if g == 1 else "content"] = x.decode() if g == 1 else x
    return value


def read_scalars(path: str | Path) -> dict[str, list[tuple[int, float, float]]]:
    """tag -> [(step, value, wall_time)] of every simple scalar in an event file."""
    out: dict[str, list[tuple[int, float, float]]] = {}
    for ev in read_events(path):
        for v in ev["values"]:
            if v["simple_value"] is not None:
                out.setdefault(v["tag"], []).append((ev["step"], v["simple_value"], ev["wall_time"]))
    return out

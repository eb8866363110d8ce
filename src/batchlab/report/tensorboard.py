"""Export an experiment as TensorBoard event files, written with PyTorch's
``torch.utils.tensorboard.SummaryWriter`` (it needs the optional ``tensorboard`` extra; no
TensorFlow).

Layout: ``out_dir/<run>/events.out.tfevents.<time>.<host>.<pid>.<n>.batchlab`` (SummaryWriter's
name) per run, nothing else. ``<run>`` names every swept field with numbers padded so that
TensorBoard's text order is numeric order (``b0016_lr0.010_momentum0.9_s0`` before
``b0256_...``; see ``run_dir_names``). Each file holds
every stored metric as a scalar (``train/loss``, ``train/lr``, ``val/loss``, ``val/acc``, ...),
the progress scalars ``progress/epoch`` and ``progress/examples_seen`` (``progress``),
the run's config as a text summary and its hyperparameters as an HParams session (start +
end). The HParams experiment (which hyperparameters and metrics the dashboard shows) is written
into the first run's file: a file of its own in ``out_dir`` would show as an empty run named
".". The LR is a hyperparameter there, never a metric (its per-step scalar is ``train/lr``).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from batchlab.layernames import PREFIX
from batchlab.report.errors import ReportError
from batchlab.report.plotdata import EVAL_METRICS, slug
from batchlab.report.series import stride_index
from batchlab.results import schedule_label
from batchlab.store import RunRecord, Series, Store

TAGS = {"train_loss": "train/loss", "lr": "train/lr", "val_loss": "val/loss", "val_acc": "val/acc",
        "train_eval_loss": "train/eval_loss", "train_acc": "train/acc",
        "samples_per_s": "perf/samples_per_s"}
# Scalars that are not results: never listed as HParams metrics.
NOT_METRICS = ("train/lr", "progress/epoch", "progress/examples_seen")
FILE_SUFFIX = ".batchlab"
# SessionEndInfo.Status by run status (api.proto); anything else is STATUS_UNKNOWN. Pruned:
# ended as its sweep asked (the reason is in the run's text).
SESSION_STATUS = {"completed": "STATUS_SUCCESS", "pruned": "STATUS_SUCCESS", "diverged": "STATUS_FAILURE",
                  "failed": "STATUS_FAILURE", "running": "STATUS_RUNNING", "pending": "STATUS_RUNNING"}
# HParamInfo.type by the Python type of a hyperparameter's values.
_DATA_TYPES = {str: "DATA_TYPE_STRING", bool: "DATA_TYPE_BOOL", float: "DATA_TYPE_FLOAT64"}


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
class _TB:
    """What the export uses of PyTorch's TensorBoard writer and of tensorboard's HParams plugin,
    imported once and only when exporting (tensorboard is an optional extra, and importing the
    writer costs a second or two)."""

    def __init__(self) -> None:
        try:
            from tensorboard.compat.proto import summary_pb2
            from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
            from tensorboard.plugins.hparams import metadata as hparams_metadata
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ReportError("exporting TensorBoard event files needs the tensorboard package: "
                              "pip install 'batchlab[tensorboard]' (no TensorFlow needed), then "
                              "run the export again.") from None
        self.Summary, self.SummaryWriter = summary_pb2.Summary, SummaryWriter
        self.api, self.plugin_data, self.hparams_meta = api_pb2, plugin_data_pb2, hparams_metadata


# The HParams summaries are the plugin's own messages (tensorboard.plugins.hparams): the writers'
# helpers cannot say them (SummaryWriter.add_hparams writes a second run folder, always with
# STATUS_SUCCESS and no group; tensorboard's hparams summary API needs TensorFlow).
def _hparams(tb: _TB, tag: str, data: Any) -> Any:
    """A Summary holding one HParamsPluginData message under one of the plugin's tags."""
    return tb.Summary(value=[tb.Summary.Value(
        tag=tag, metadata=tb.hparams_meta.create_summary_metadata(data),
        tensor=tb.hparams_meta.NULL_TENSOR)])
def session_start(tb: _TB, hparams: dict[str, Any], group: str, start: float) -> Any:
    info = tb.plugin_data.SessionStartInfo(group_name=group, start_time_secs=start)
    for k, v in hparams.items():
        if isinstance(v, bool):
            info.hparams[k].bool_value = v
        elif isinstance(v, int | float):
            info.hparams[k].number_value = float(v)
        else:
            info.hparams[k].string_value = str(v)
    return _hparams(tb, tb.hparams_meta.SESSION_START_INFO_TAG,
                    tb.plugin_data.HParamsPluginData(session_start_info=info))


def session_end(tb: _TB, status: str, end: float) -> Any:
    code = tb.api.Status.Value(SESSION_STATUS.get(status, "STATUS_UNKNOWN"))
    info = tb.plugin_data.SessionEndInfo(status=code, end_time_secs=end)
    return _hparams(tb, tb.hparams_meta.SESSION_END_INFO_TAG,
                    tb.plugin_data.HParamsPluginData(session_end_info=info))


def experiment_summary(tb: _TB, hparam_types: dict[str, type], metric_tags: Sequence[str],
                       created: float) -> Any:
    exp = tb.api.Experiment(
        time_created_secs=created,
        hparam_infos=[tb.api.HParamInfo(name=name, type=tb.api.DataType.Value(_DATA_TYPES[t]))
                      for name, t in hparam_types.items()],
        metric_infos=[tb.api.MetricInfo(name=tb.api.MetricName(tag=tag)) for tag in metric_tags])
    return _hparams(tb, tb.hparams_meta.EXPERIMENT_TAG, tb.plugin_data.HParamsPluginData(experiment=exp))


# ----------------------------------------------------------------------- export
def hparams_of(record: RunRecord) -> dict[str, Any]:
    """The knobs people compare, plus every swept field, as flat name -> scalar; with the
    training set's size and classes (``n_train``, ``num_classes``), which ``import
    tensorboard`` reads back as config: without them an imported export had no chance level
    (the diagnosis of a run at chance changed) and no examples seen."""
    cfg = record.config
    train = cfg.get("train", {})
    out: dict[str, Any] = {
        "batch_size": train.get("batch_size"), "lr": train.get("lr"),
        "effective_lr": record.summary.get("effective_lr", train.get("lr")),
        "schedule": schedule_label(train), "optimizer": train.get("optimizer"),
        "seed": train.get("seed"), "scale_lr": train.get("scale_lr"),
        "model": cfg.get("model", {}).get("name"), "data": cfg.get("data", {}).get("name"),
        "status": record.status, "n_train": record.summary.get("n_train"),
        "num_classes": record.summary.get("num_classes"),
    }
    for k, v in record.point.items():  # swept fields the short names above do not cover
        if k.rsplit(".", 1)[-1] not in out and not k.startswith("train.schedule"):
            out[k] = v if isinstance(v, bool | int | float | str) else json.dumps(v)
    return {k: v for k, v in out.items() if v is not None}


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


def _write_run(tb: _TB, folder: Path, record: RunRecord, series: dict[str, Series],
               hp: dict[str, Any], experiment: Any = None) -> Path:
    """Write one run's file into ``folder`` with SummaryWriter: the experiment (first run only),
    its HParams session start, its config as text, every scalar in one step-ordered stream
    (TensorBoard drops earlier events when a step goes backwards) and the session end.
    Returns the file written; an earlier export's file of ours in ``folder`` is replaced."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"events.out.tfevents.*{FILE_SUFFIX}"):
        old.unlink()  # a re-export replaces ours; TensorBoard would merge both files otherwise
    base = record.started or record.created
    config = "```json\n" + json.dumps(record.config, indent=2, sort_keys=True, default=str) + "\n```"
    columns = [(scalar_tag(name), s.step, s.value, s.wall_time) for name, s in series.items()]
    at, epoch, examples, wall = progress(series)
    columns += [("progress/epoch", at, epoch, wall), ("progress/examples_seen", at, examples, wall)]
    tags = [tag for tag, steps, _, _ in columns for _ in range(steps.size)]
    steps, values, walls = (np.concatenate([c[i] for c in columns]) for i in (1, 2, 3))
    # a huge queue: the writer's thread never blocks the loop, and flushes once at close
    writer = tb.SummaryWriter(str(folder), max_queue=max(10, steps.size + 8), flush_secs=3600,
                              filename_suffix=FILE_SUFFIX)
    try:
        add = writer.file_writer.add_summary
        if experiment is not None:
            add(experiment, 0, base)
        add(session_start(tb, hp, record.id, base), 0, base)
        writer.add_text("config", config, 0, walltime=base)  # tag "config/text_summary"
        # a value beyond float32 (a diverged 1e300 loss) is written as inf, as in TensorFlow
        for i in np.argsort(steps, kind="stable").tolist():
            writer.add_scalar(tags[i], float(values[i]), int(steps[i]), walltime=base + float(walls[i]))
        last = max((float(s.wall_time[-1]) for s in series.values() if s.step.size), default=0.0)
        add(session_end(tb, record.status, base + last),
            int(record.steps or record.progress_step or 0), base + last)
    finally:
        writer.close()
    (path,) = folder.glob(f"events.out.tfevents.*{FILE_SUFFIX}")
    return path


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
    that recorded a metric row (``run_dir_names``), nothing else; returns the files in run
    order. A run without rows (pending, or failed before its first step) is left out: its
    folder would be an empty run in TensorBoard. Unknown experiment: StoreError; an
    experiment without runs, or without a run with rows: ReportError. Open with
    ``tensorboard --logdir out_dir``."""
    out_dir = Path(out_dir)
    every = store.runs(experiment)
    tb = _TB()
    if not every:
        raise ReportError(f"experiment '{experiment}' has no runs to export; run its sweep first.")
    names = run_dir_names(every)  # over every run: a folder keeps its name once the others run
    runs = [r for r in every if store.count_metric_rows(r.id)]
    if not runs:
        raise ReportError(f"experiment '{experiment}' has no run with a recorded metric to export "
                          f"yet ({len(every)} runs, none has trained a step); run its sweep first.")
    _remove_stale(out_dir, {names[r.id] for r in runs}, [r.id for r in every])
    types: dict[str, type] = {}
    tags: set[str] = set()
    files: list[Path] = []
    first = None
    for record in runs:
        hp = hparams_of(record)
        types.update({k: float if isinstance(v, int | float) and not isinstance(v, bool) else type(v)
                      for k, v in hp.items()})
        series = store.metrics(record.id)
        tags.update(scalar_tag(name) for name in series)
        if first is None:  # written last: it also carries the experiment, known once all are read
            first = (record, series, hp)
            continue
        files.append(_write_run(tb, out_dir / names[record.id], record, series, hp))
    created = min(r.created for r in runs)
    # per-layer signals are diagnostics, not results to compare runs by
    metrics = sorted(t for t in tags if t not in NOT_METRICS and not t.startswith(PREFIX))
    record, series, hp = first
    files.insert(0, _write_run(tb, out_dir / names[record.id], record, series, hp,
                               experiment_summary(tb, types, metrics, created)))
    return files

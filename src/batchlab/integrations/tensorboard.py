"""Import a TensorBoard log folder into a store (extra ``tensorboard``): one run per run folder.

A run folder is a folder holding event files with scalars. Two kinds of sub-folder belong to
the run folder above them instead of being runs of their own: the ``train``/``validation``
(``val``, ``eval``, ``test``) folders Keras's TensorBoard callback writes (their tags are read
as ``validation/epoch_loss`` and so on), and the timestamp-named folder
``SummaryWriter.add_hparams`` writes (its hyper-parameters become the run's; its summary
metrics are not curves and are not imported).
Events are read with the ``tensorboard`` package's own reader (``EventAccumulator``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from batchlab.errors import DataError
from batchlab.integrations.importing import (
    PlannedRun,
    Point,
    check_config,
    config_from_name,
    config_key,
    import_notes,
    lr_from_log,
    metrics_for,
    store_runs,
)
from batchlab.integrations.logpaths import check_logdir
from batchlab.integrations.names import EXPORT_SUFFIX
from batchlab.store import Store
from batchlab.track import TrackedRun

_SPLIT_FOLDERS = {"train", "validation", "val", "eval", "test"}
# hparams batchlab's own export writes that are results, not config: importing them would add
# redundant config columns (batchlab derives the effective LR itself; the status is the run's)
_EXPORT_RESULTS = ("effective_lr", "status")


def _reader() -> Any:
    try:
        from tensorboard.backend.event_processing import event_accumulator
    except ImportError:
        raise DataError("importing TensorBoard logs needs the tensorboard package: "
                        "pip install 'batchlab[tensorboard]'.") from None
    return event_accumulator


def _hparams(acc: Any) -> dict[str, Any]:
    """Hyper-parameters of an ``add_hparams`` session (parsed by the hparams plugin's own
    ``metadata``), numbers as int when integral."""
    from tensorboard.plugins.hparams import metadata

    try:
        content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
    except KeyError:
        return {}
    out: dict[str, Any] = {}
    blob = content.get(metadata.SESSION_START_INFO_TAG)
    if blob is None:
        return out
    for key, value in metadata.parse_session_start_info_plugin_data(blob).hparams.items():
        kind = value.WhichOneof("kind")
        v = getattr(value, kind) if kind else None
        out[config_key(key)] = int(v) if isinstance(v, float) and v.is_integer() else v
    return out


def _session_start(acc: Any) -> float | None:
    """The HParams session's start time (seconds since the epoch), None without one. Only
    batchlab's own export's is the run's start (``SummaryWriter.add_hparams`` writes the time
    it was called, at the end of training)."""
    from tensorboard.plugins.hparams import metadata

    try:
        blob = acc.PluginTagToContent(metadata.PLUGIN_NAME).get(metadata.SESSION_START_INFO_TAG)
    except KeyError:
        return None
    start = metadata.parse_session_start_info_plugin_data(blob).start_time_secs if blob else 0.0
    return start or None


def _is_timestamp(name: str) -> bool:
    """``SummaryWriter.add_hparams`` names its folder ``str(time.time())``."""
    try:
        return float(name) > 1e8
    except ValueError:
        return False


def read_logdir(logdir: Path) -> dict[str, tuple[dict[str, Any], dict[str, list[Point]], float | None]]:
    """{run name: (hparams, {tag: points}, start)} for every run folder under ``logdir``; tags
    of a split folder are prefixed with its name ('validation/epoch_loss'); start: when the run
    began, for batchlab's own export (its HParams session start), else None."""
    ea = _reader()
    folders = check_logdir(logdir)
    runs: dict[Path, tuple[dict[str, Any], dict[str, list[Point]]]] = {}
    starts: dict[Path, float | None] = {}
    for folder in folders:  # sorted: a run folder comes before its sub-folders
        acc = ea.EventAccumulator(str(folder), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
        acc.Reload()
        hparams = _hparams(acc)
        if any(folder.glob(f"*tfevents*{EXPORT_SUFFIX}")):  # batchlab export --format tensorboard
            hparams = {k: v for k, v in hparams.items() if k not in _EXPORT_RESULTS}
            starts[folder] = _session_start(acc)
        if _is_timestamp(folder.name) and folder.parent in runs:
            runs[folder.parent][0].update(hparams)  # add_hparams' folder: its scalars are the
            continue                                # session summary, not curves
        split = folder.name.lower() in _SPLIT_FOLDERS and folder != logdir
        owner, prefix = (folder.parent, folder.name + "/") if split else (folder, "")
        runs.setdefault(owner, ({}, {}))[0].update(hparams)
        for tag in acc.Tags()["scalars"]:
            runs[owner][1][prefix + tag] = [Point(e.step, e.value, e.wall_time) for e in acc.Scalars(tag)]
    # a folder with hparams but no scalars (an export's experiment summary) is no run
    return {(str(f.relative_to(logdir)) if f != logdir else logdir.name): (*v, starts.get(f))
            for f, v in runs.items() if v[1]}


def import_tensorboard(store: Store | str | Path, logdir: Path, experiment: str, *,
                       mapping: dict[str, str], overrides: dict[str, Any], unit: str = "auto",
                       notes: list[str] | None = None) -> list[TrackedRun]:
    """Import every run folder under ``logdir`` into ``experiment`` (re-importing replaces).

    ``store``: a Store or its path; a path is opened (created when missing) only once every
    run was read and checked, so a refused import creates no file. ``unit``: 'step' or
    'epoch' for what a TensorBoard step counts; 'auto' is 'epoch' when every tag starts with
    ``epoch_`` (Keras's TensorBoard callback) and 'step' otherwise. ``notes`` gets what each
    run's import dropped, left unmapped or lacks (``import_notes``).
    """
    planned = []
    for name, (hparams, tags, start) in read_logdir(logdir).items():
        series: dict[str, list[Point]] = {}
        metrics = metrics_for(tags, mapping)
        for tag, points in tags.items():
            metric = metrics[tag]
            if metric is not None and points:
                series.setdefault(metric, []).extend(points)
        if not series:
            continue
        found: list[str] = []
        config = lr_from_log(config_from_name(name) | hparams | overrides, series, name, found)
        check_config(config, name, overrides)  # every run's, before anything is stored
        run_unit = unit
        if unit == "auto":
            keras_style = all(t.rsplit("/", 1)[-1].startswith("epoch_") for t in tags)
            run_unit = "epoch" if keras_style else "step"
        planned.append(PlannedRun(f"tensorboard:{name}", config, series, run_unit, start,
                                  tuple(found + import_notes(name, metrics, config))))
    if not planned:
        raise DataError(f"no scalars to import under '{logdir}' (or every tag was dropped by --map); "
                        "check the folder with 'tensorboard --logdir' and the --map options.")
    return store_runs(store, experiment, planned, notes)

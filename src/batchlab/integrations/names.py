"""Other tools' metric names -> batchlab's: ``train_loss``, ``train_acc``, ``val_loss``,
``val_acc``, ``lr``. Shared by the Lightning logger, the Keras callback and the importers, so a
Keras ``val_accuracy``, a Lightning ``lr-SGD`` and a TensorBoard ``Loss/val`` all land where the
report and the diagnosis look for them."""

from __future__ import annotations

import re
from collections.abc import Iterable

from batchlab.layernames import SIGNALS, parse_metric

_VAL = {"val", "valid", "validation", "test", "eval", "dev"}
_ACC = {"acc", "accuracy"}
_SKIP = {"epoch", "step", "global_step", "iteration", "iterations"}


# batchlab's own TensorBoard export (report.tensorboard.TAGS, which a test keeps this the inverse
# of): its tags read back as the names they were written from, so an export imports losslessly
EXPORTED_TAGS = {"train/loss": "train_loss", "train/lr": "lr", "val/loss": "val_loss",
                 "val/acc": "val_acc", "train/eval_loss": "train_eval_loss", "train/acc": "train_acc",
                 "perf/samples_per_s": "samples_per_s"}
# what that export names its event files (SummaryWriter's filename_suffix)
EXPORT_SUFFIX = ".batchlab"


def own_name(tag: str) -> str | None:
    """The batchlab metric a tag of batchlab's own TensorBoard export holds: ``EXPORTED_TAGS``,
    or a per-layer signal (``layer/<layer>/<signal>``, stored under that very name); None for
    any other tag."""
    if tag in EXPORTED_TAGS:
        return EXPORTED_TAGS[tag]
    parsed = parse_metric(tag)
    return tag if parsed is not None and parsed[1] in SIGNALS else None


def batchlab_name(name: str) -> str | None:
    """batchlab's name for metric ``name``; None for counters that are not metrics (``epoch``).

    Names that are neither a loss, an accuracy nor a learning rate are kept as they are.
    """
    lowered = name.lower()
    if lowered in _SKIP:
        return None
    tokens = set(re.split(r"[/_\-\s.]+", lowered))
    if "lr" in tokens or lowered.startswith("lr-") or "learning" in tokens:
        return "lr"
    kind = "loss" if "loss" in tokens else "acc" if tokens & _ACC or lowered.endswith("accuracy") else None
    if kind is None:
        return name
    return f"{'val' if tokens & _VAL else 'train'}_{kind}"


def _plainness(name: str) -> tuple[int, bool, str]:
    """Sorts the plainest name first: fewest words, then a per-step value before its
    ``*_epoch`` mean (Lightning's CSVLogger writes ``train_loss_step`` and ``train_loss_epoch``),
    then by name."""
    return len([w for w in re.split(r"[/_\-\s.]+", name) if w]), name.endswith("_epoch"), name


def batchlab_names(keys: Iterable[str]) -> dict[str, str]:
    """batchlab's names (``batchlab_name``) of metrics logged together, counters left out.

    Where several keys map to one name (Keras's ``val_accuracy`` and
    ``val_sparse_top_k_categorical_accuracy``, a module's ``loss`` and ``loss_kl``, Lightning's
    ``val_loss/dataloader_idx_0`` and ``..._1``), the plainest takes it (``_plainness``, whatever order
    they came in: ``dataloader_idx_0``, ``train_loss_step`` before ``train_loss_epoch``) and
    the others keep their own names. Which one became ``val_acc`` used to depend on the order
    they were logged in, so a top-k accuracy was stored as the val acc and the others were
    lost. Extra ``lr`` keys (a second param group's LR) are left out: the first is the run's."""
    named = {key: name for key in keys if (name := batchlab_name(key)) is not None}
    taken: dict[str, str] = {}
    for key, name in named.items():
        if name not in taken or _plainness(key) < _plainness(taken[name]):
            taken[name] = key
    return {key: name if taken[name] == key else key for key, name in named.items()
            if taken[name] == key or name != "lr"}

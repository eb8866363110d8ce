"""What to do about an overfitting run: the early-stopping point it passed, and the remedies
that apply to *its* spec.

:func:`remedies` reads a stored run config (the JSON of a ``RunConfig``) and returns only the
remedies that config can still take, each with the spec changes that would try it (one variant
per change, so a follow-up sweep measures each remedy alone against the unchanged run):

- **augmentation** the data allows, for image data that has options not yet on (a horizontal
  flip only where it keeps the label: natural images, never digits);
- **weight decay** when it is 0 or below the usual range of the optimizer;
- **dropout** when the model family takes ``model.dropout`` and its dropout is below 0.5;
- **a smaller model** where the family has a size knob (the MLP's widths, MobileNetV2's
  width multiplier);
- **more data**: a learning curve over ``data.limit`` (a quarter and a half of the training
  examples) tells whether more data would help before anyone collects it.

:func:`with_remedies` adds the early-stopping point and those remedies to an ``overfitting``
finding. Pure functions of plain data; ``batchlab.nextspec`` writes the follow-up sweep from
the same :class:`Remedy` list.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from batchlab.analysis import series as S
from batchlab.analysis.findings import Finding, pct
from batchlab.store import Series

# Weight decay worth trying when the run's is below the first value: the classic 5e-4 of SGD
# on CNNs (and 10x it); AdamW's decoupled decay works at ~100x larger values.
WEIGHT_DECAYS = {"adamw": (0.01, 0.1)}
DEFAULT_WEIGHT_DECAYS = (5e-4, 5e-3)
# Dropout: a family's own default (None: no dropout unless model.dropout is set); families
# not listed here ignore model.dropout (cnn1d) or may not take it (a user's factory).
FAMILY_DROPOUT: dict[str, float | None] = {
    "mlp": None, "lenet5": 0.25, "alexnet_small": 0.5, "mobilenet_v2": 0.2, "squeezenet": 0.5}
DEFAULT_WORDS = {"lenet5": "0.25 and 0.5 by default"}  # a family with two dropout layers
DROPOUTS = (0.2, 0.5)  # tried above the run's own; beyond 0.5 a small model mostly underfits
# Augmentations that keep the label, per data set of images. Digits must not be flipped (a
# mirrored 2 is no 2); a random crop with a small padding (1/8 of the side) shifts them safely.
AUGMENTS: dict[str, tuple[tuple[str, ...], int | None]] = {
    "cifar10": (("crop", "flip"), None), "cifar100": (("crop", "flip"), None),
    "image_folder": (("crop", "flip"), None), "mnist_idx": (("crop",), 3), "digits": (("crop",), 1)}


@dataclass(frozen=True)
class Remedy:
    """One remedy for overfitting: ``kind`` (augmentation, weight_decay, dropout,
    smaller_model, more_data), ``words`` (what to try, with the run's current value) and
    ``variants``: spec changes (field path -> value), each one run variant to try it."""

    kind: str
    words: str
    variants: tuple[dict[str, Any], ...]


def _augmentation(data: Mapping[str, Any]) -> Remedy | None:
    allowed, padding = AUGMENTS.get(str(data.get("name")), ((), None))
    on = list(data.get("augment") or [])
    missing = [a for a in allowed if a not in on]
    if not missing:
        return None
    change: dict[str, Any] = {"data.augment": [*on, *missing]}
    if padding is not None and "crop" in missing and data.get("crop_padding", 4) > padding:
        change["data.crop_padding"] = padding
    shown = " + ".join(missing) + (f" (crop padding {padding} px)" if "data.crop_padding" in change else "")
    return Remedy("augmentation", f"augmentation: {shown}, which {data.get('name')} allows and the "
                  f"run did not use (data.augment = {on})", (change,))


def _weight_decay(train: Mapping[str, Any]) -> Remedy | None:
    wd = float(train.get("weight_decay") or 0.0)
    values = WEIGHT_DECAYS.get(str(train.get("optimizer")), DEFAULT_WEIGHT_DECAYS)
    if wd >= values[0]:
        return None
    return Remedy("weight_decay", f"weight decay: train.weight_decay is {wd:g}; try "
                  f"{' and '.join(f'{v:g}' for v in values)}",
                  tuple({"train.weight_decay": v} for v in values))


def _dropout(model: Mapping[str, Any]) -> Remedy | None:
    name = str(model.get("name"))
    library = name.startswith(("torchvision:", "timm:"))
    if name not in FAMILY_DROPOUT and not library:
        return None
    own = model.get("dropout")
    current = own if own is not None else FAMILY_DROPOUT.get(name)
    values = [p for p in DROPOUTS if current is None or p > current]
    if not values:
        return None
    now = "none" if current is None else (f"{current:g}" if own is not None else
                                          DEFAULT_WORDS.get(name, f"{current:g} by default"))
    return Remedy("dropout", f"dropout: {name}'s is {now}; try model.dropout = "
                  f"{' and '.join(f'{p:g}' for p in values)}",
                  tuple({"model.dropout": p} for p in values))


def _smaller_model(model: Mapping[str, Any]) -> Remedy | None:
    name = model.get("name")
    if name == "mlp" and model.get("hidden"):
        hidden = list(model["hidden"])
        half = [max(1, w // 2) for w in hidden]
        if half == hidden:
            return None
        return Remedy("smaller_model", f"a smaller model: model.hidden {hidden} -> {half}",
                      ({"model.hidden": half},))
    if name == "mobilenet_v2":
        width = float(model.get("width", 1.0))
        return Remedy("smaller_model", f"a smaller model: model.width {width:g} -> {width / 2:g}",
                      ({"model.width": width / 2},))
    return None


def _more_data(n_train: int | None, batch_size: Any) -> Remedy | None:
    if not isinstance(n_train, int):
        return None
    # a subset smaller than one batch cannot train at this batch size (the sweep refuses it)
    smallest = batch_size if isinstance(batch_size, int) else 1
    limits = [n for n in (n_train // 4, n_train // 2) if n >= max(smallest, 2)]
    if not limits:
        return None
    return Remedy("more_data", f"more data: a learning curve over data.limit = "
                  f"{', '.join(map(str, limits))} (of the {n_train} training examples) shows whether "
                  "validation still improves with the examples", tuple({"data.limit": n} for n in limits))


def remedies(config: Mapping[str, Any], n_train: int | None = None) -> list[Remedy]:
    """The remedies for overfitting that apply to the run ``config`` (a stored run config:
    data, model and train sections), in the order to try them: augmentation, weight decay,
    dropout, a smaller model, more data (``n_train``: the training examples the run saw, from
    its summary; without it no learning curve). A section the config lacks (a tracked run's)
    contributes nothing, and so does the optimizer of a function sweep's run: its training
    function builds its own, which need not read ``train.optimizer`` or ``train.weight_decay``."""
    data, model, train = (config.get(k) or {} for k in ("data", "model", "train"))
    batchlabs_optimizer = train.get("optimizer") and not train.get("function")
    found = [_augmentation(data), _weight_decay(train) if batchlabs_optimizer else None,
             _dropout(model), _smaller_model(model),
             _more_data(n_train, train.get("batch_size")) if data.get("name") not in (None, "custom")
             else None]
    return [r for r in found if r is not None]


def early_stop(metrics: Mapping[str, Series]) -> tuple[float, float, float, str] | None:
    """(epoch, score, final score, metric) of the best validation evaluation: the one early
    stopping would have kept. Validation accuracy (highest), else validation loss (lowest);
    None without two finite evaluations or without epochs."""
    for name, sign in (("val_acc", 1.0), ("val_loss", -1.0)):
        f = S.finite(S.get(metrics, name))
        if len(f.value) >= 2 and len(f.epoch) == len(f.value):
            i = int((sign * f.value).argmax())
            return float(f.epoch[i]), float(f.value[i]), float(f.value[-1]), name
    return None


def with_remedies(finding: Finding, metrics: Mapping[str, Series], config: Mapping[str, Any],
                  summary: Mapping[str, Any]) -> Finding:
    """An ``overfitting`` finding with the early-stopping point and the remedies that apply
    (see the module doc) added to its sentence and numbers; any other finding unchanged."""
    if finding.kind != "overfitting":
        return finding
    words, numbers = [finding.message], dict(finding.numbers)
    stop = early_stop(metrics)
    if stop is not None and math.isfinite(stop[0]):
        epoch, best, final, name = stop
        shown = pct if name == "val_acc" else (lambda v: f"{v:.3g}")
        metric = name.replace("_", " ")
        if best == final:  # the end ties the best: nothing to gain by stopping early
            words.append(f"early stopping would keep no better score: {metric} at the end equals "
                         f"its best ({shown(best)}, first reached at epoch {epoch:.3g})")
        else:
            words.append(f"early stopping would have kept epoch {epoch:.3g}: {metric} "
                         f"{shown(best)} (at the end {shown(final)})")
        numbers.update(best_epoch=epoch, best_score=best, final_score=final)
    found = remedies(config, summary.get("n_train"))
    if found:
        words.append("remedies for this spec: " + "; ".join(r.words for r in found))
    return replace(finding, message=". ".join(words), numbers=numbers)

"""The fields of a run config that apply to it, for display (``batchlab show``) and planning.

A stored config holds every field with its default, so a user factory's run shows ``hidden``,
a constant schedule shows ``gamma`` and ``milestones``, and so on: noise that makes a reader
wonder whether those values mattered. ``applicable`` keeps a field only when it has an effect
on this run. It works on the plain JSON dict (what the store keeps), never changes it, and
keeps every field it does not know about (a newer batchlab's config still shows in full).

The plan (``batchlab.plan``) asks ``swept_inapplicable`` which swept values a run ignores
(``train.momentum`` for adam): those runs would differ only in a value with no effect, so the
plan trains them once.
"""

from __future__ import annotations

from typing import Any

# (section, field) -> predicate over the whole config: keep the field when it is true
FILE_FORMATS = ("mnist_idx", "cifar10", "cifar100", "image_folder", "npz")
_STEPPED = ("step", "multistep", "exponential")


def _data(c: dict[str, Any]) -> dict[str, Any]:
    return c.get("data", {})


def _train(c: dict[str, Any]) -> dict[str, Any]:
    return c.get("train", {})


def _schedule(c: dict[str, Any]) -> dict[str, Any]:
    return _train(c).get("schedule", {})


def _model(c: dict[str, Any]) -> dict[str, Any]:
    return c.get("model", {})


def _factory_set(c: dict[str, Any], field: str, default: Any) -> bool:
    """A user factory's config with ``field`` away from its default (the factory received it)."""
    name = str(_model(c).get("name", ""))
    return ":" in name and not name.startswith(("torchvision:", "timm:")) and \
        _model(c).get(field, default) != default


RULES: dict[tuple[str, ...], Any] = {
    ("data", "path"): lambda c: _data(c).get("name") in FILE_FORMATS,
    ("data", "val_fraction"): lambda c: _data(c).get("validation") == "split",
    ("data", "split_seed"): lambda c: (_data(c).get("validation") == "split"
                                       or _data(c).get("name") == "synthetic"),
    ("data", "crop_padding"): lambda c: "crop" in _data(c).get("augment", []),
    ("data", "image_size"): lambda c: _data(c).get("name") == "image_folder",
    ("data", "shape"): lambda c: _data(c).get("name") == "synthetic",
    ("data", "classes"): lambda c: _data(c).get("name") == "synthetic",
    ("data", "size"): lambda c: _data(c).get("name") in ("synthetic", "mnist1d"),
    ("data", "cache_dir"): lambda c: _data(c).get("name") == "mnist1d",
    # a factory is passed hidden/width when it names them and they are set (models/factory.py;
    # the defaults are ModelSpec's, written out: show must not wait for pydantic)
    ("model", "hidden"): lambda c: _model(c).get("name") == "mlp" or _factory_set(c, "hidden", [256, 128]),
    ("model", "width"): lambda c: _model(c).get("name") == "mobilenet_v2" or _factory_set(c, "width", 1.0),
    ("model", "kwargs"): lambda c: ":" in str(c.get("model", {}).get("name", "")),
    ("model", "freeze"): lambda c: c.get("model", {}).get("freeze", "none") != "none",
    ("train", "momentum"): lambda c: _train(c).get("optimizer") in ("sgd", "rmsprop"),
    ("train", "nesterov"): lambda c: _train(c).get("optimizer") == "sgd",
    ("train", "base_batch_size"): lambda c: _train(c).get("scale_lr", "none") != "none",
    ("train", "noise_scale_micro_batches"): lambda c: bool(_train(c).get("measure_noise_scale")),
    ("train", "noise_scale_every"): lambda c: bool(_train(c).get("measure_noise_scale")),
    # the training options at their defaults change nothing: shown only when set
    ("train", "accumulate"): lambda c: _train(c).get("accumulate", 1) != 1,
    ("train", "precision"): lambda c: _train(c).get("precision", "fp32") != "fp32",
    ("train", "channels_last"): lambda c: bool(_train(c).get("channels_last")),
    # one process unless set; options are a train.function's own keys, nothing the loop reads
    ("train", "devices"): lambda c: _train(c).get("devices", 1) != 1,
    ("train", "strategy"): lambda c: _train(c).get("strategy", "single") != "single",
    ("train", "sync_batchnorm"): lambda c: bool(_train(c).get("sync_batchnorm")),
    ("train", "options"): lambda c: bool(_train(c).get("function")),
    ("train", "schedule", "unit"): lambda c: _schedule(c).get("name") in _STEPPED,
    ("train", "schedule", "step_size"): lambda c: _schedule(c).get("name") == "step",
    ("train", "schedule", "milestones"): lambda c: _schedule(c).get("name") == "multistep",
    ("train", "schedule", "gamma"): lambda c: _schedule(c).get("name") in _STEPPED,
    ("train", "schedule", "min_lr"): lambda c: _schedule(c).get("name") == "cosine",
    ("train", "schedule", "pct_start"): lambda c: _schedule(c).get("name") == "onecycle",
    ("train", "schedule", "div_factor"): lambda c: _schedule(c).get("name") == "onecycle",
    ("train", "schedule", "final_div_factor"): lambda c: _schedule(c).get("name") == "onecycle",
    ("train", "schedule", "warmup_unit"): lambda c: bool(_schedule(c).get("warmup")),
}


#: the fields whose effect another field decides (the rule's field -> the deciding fields): what
#: the plan may set back to its default for a run it does not apply to. The rules that read the
#: field's own value ("shown only when set": accumulate, precision, freeze, ...) are not here: a
#: swept default value of those is a real point of the sweep.
DECIDED_BY: dict[tuple[str, ...], tuple[str, ...]] = {
    ("data", "path"): ("data.name",),
    ("data", "val_fraction"): ("data.validation",),
    ("data", "split_seed"): ("data.validation", "data.name"),
    ("data", "crop_padding"): ("data.augment",),
    **{("data", f): ("data.name",) for f in ("image_size", "shape", "classes", "size", "cache_dir")},
    ("model", "hidden"): ("model.name",),
    ("model", "width"): ("model.name",),
    ("model", "kwargs"): ("model.name",),
    ("train", "momentum"): ("train.optimizer",),
    ("train", "nesterov"): ("train.optimizer",),
    ("train", "base_batch_size"): ("train.scale_lr",),
    ("train", "noise_scale_micro_batches"): ("train.measure_noise_scale",),
    ("train", "noise_scale_every"): ("train.measure_noise_scale",),
    **{("train", "schedule", f): ("train.schedule.name",) for f in (
        "unit", "step_size", "milestones", "gamma", "min_lr", "pct_start", "div_factor",
        "final_div_factor")},
    ("train", "schedule", "warmup_unit"): ("train.schedule.warmup",),
}


def value_at(config: dict[str, Any], path: str) -> Any:
    """The value at dotted ``path`` in ``config``; None where a part is missing."""
    node: Any = config
    for key in path.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node


def decided_off(config: dict[str, Any], path: str) -> bool:
    """Whether the dotted field ``path`` has no effect on the run of ``config`` (a full JSON
    config) because another of its fields decides so (``DECIDED_BY``): train.momentum for
    adam, model.hidden for lenet5."""
    where = tuple(path.split("."))
    return where in DECIDED_BY and not RULES[where](config)


def swept_inapplicable(config: dict[str, Any], paths: list[str]) -> list[str]:
    """Those of the dotted ``paths`` (a sweep point's keys) that are ``decided_off``."""
    return [p for p in paths if decided_off(config, p)]


def deciding(config: dict[str, Any], path: str) -> str:
    """What in ``config`` makes the field ``path`` not apply, in words: "train.optimizer =
    'adam'" (each deciding field of ``DECIDED_BY`` with its value)."""
    return " and ".join(f"{d} = {value_at(config, d)!r}" for d in DECIDED_BY[tuple(path.split("."))])


def applicable(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` without the fields that have no effect on this run, and without
    unset optional fields (None: e.g. ``data.limit``, ``train.threads``)."""

    def walk(node: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        out = {}
        for key, value in node.items():
            where = (*path, key)
            if value is None or not RULES.get(where, lambda c: True)(config):
                continue
            out[key] = walk(value, where) if isinstance(value, dict) and key != "kwargs" else value
        return out

    return walk(config, ())

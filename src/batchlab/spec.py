"""The study spec: what data, which model, how to train, what to sweep.

A spec is plain pydantic data, loaded from TOML or built in Python. Every model forbids
unknown fields so a typo (``bach_size``) is an error naming the field, never silently ignored.
``load_spec`` reads one from TOML with the CLI's ``--set train.lr=0.05`` overrides applied
(``batchlab.overrides``).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from batchlab.errors import SpecError
from batchlab.overrides import apply_overrides
from batchlab.spec_train import accumulation_error, devices_error

DataName = Literal[
    "digits", "mnist1d", "synthetic", "mnist_idx", "cifar10", "cifar100", "image_folder", "npz",
    "memory",  # arrays passed to the Python API (batchlab.data.memory); path = "memory:<hash>"
    "custom",  # loaded by the user's own training function (train.function), never by batchlab
]
Augmentation = Literal["crop", "flip", "resized_crop"]
Pipeline = Literal["auto", "memory", "stream"]
ScheduleName = Literal["constant", "step", "multistep", "exponential", "power", "cosine", "onecycle"]
OptimizerName = Literal["sgd", "adam", "adamw", "rmsprop", "adagrad"]
Task = Literal["auto", "classification", "regression"]
ScaleRule = Literal["none", "linear", "sqrt"]
Precision = Literal["fp32", "bf16", "fp16"]
PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NOISE_SCALE_FIELDS = ("measure_noise_scale", "noise_scale_micro_batches", "noise_scale_every")
#: fields added after runs were stored, per section, with the default that leaves a run
#: unchanged: a run at the default keeps the id it had before the field existed (``run_id``)
LATER_DEFAULTS: dict[str, dict[str, Any]] = {
    "data": {"pipeline": "auto", "task": "auto"},
    "model": {"weights": None, "freeze": "none"},
    "train": {"accumulate": 1, "micro_batch_size": None, "precision": "fp32", "channels_last": False,
              "function": None, "options": {}, "devices": 1, "strategy": "single",
              "sync_batchnorm": False},
}
# how batches are produced, not which: the same seed gives the same numbers with any of them
DATA_LOADING_FIELDS = ("workers", "cache")
AUTO_LR_UNRESOLVED = (
    "train.lr = 'auto' must be resolved by the LR range test first "
    "(batchlab.probes.auto_lr.resolve_auto_lr); or set train.lr to a number."
)


# data sets made in memory, without a file (data.path would be ignored), and those read from one
BUILTIN_DATA = ("digits", "mnist1d", "synthetic")
FILE_DATA = ("npz", "image_folder", "mnist_idx", "cifar10", "cifar100")


class _Strict(BaseModel):
    # inf passes a positivity check (lr = inf, --set train.lr=1e999) and trains nothing useful
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DataSpec(_Strict):
    """Where examples come from and how they are split and prepared."""

    name: DataName = "digits"
    path: str | None = Field(None, description="local file or folder for file formats")
    validation: Literal["split", "test"] = Field(
        "split", description="'split': hold out val_fraction of train; 'test': the format's test split"
    )
    val_fraction: float = Field(0.2, gt=0, lt=1)
    split_seed: int = 0
    limit: PositiveInt | None = Field(None, description="use at most this many training examples")
    normalize: bool = True
    augment: list[Augmentation] = []
    crop_padding: Annotated[int, Field(ge=0)] = 4
    image_size: PositiveInt = Field(32, description="image_folder: images are resized to this")
    shape: list[PositiveInt] = Field([1, 28, 28], description="synthetic: input shape")
    classes: Annotated[int, Field(ge=2)] = Field(10, description="synthetic: number of classes")
    size: PositiveInt = Field(2000, description="synthetic / mnist1d: number of examples")
    cache_dir: str | None = Field(None, description="mnist1d cache; default ~/.cache/batchlab")
    pipeline: Pipeline = Field(
        "auto", description="'memory': decoded tensors; 'stream': DataLoader decoding per sample; "
        "'auto': memory when the decoded set fits comfortably in memory")
    workers: Annotated[int, Field(ge=0)] = Field(0, description="stream: loader processes")
    cache: bool = Field(False, description="image_folder: decode each image once into a uint8 memmap")
    task: Task = Field(
        "auto", description="npz: 'regression' fits float targets with MSE, 'classification' "
        "reads class labels; 'auto': regression for 2-D or non-whole float targets")

    @model_validator(mode="after")
    def _needs_path(self) -> DataSpec:
        if self.name in FILE_DATA and not self.path:
            raise ValueError(f"data.path is required for data.name = {self.name!r}")
        if self.name in BUILTIN_DATA and self.path:
            # a spec that gives its file but not its format would train on digits, the
            # default, in silence (and under another run id than digits without a path)
            raise ValueError(
                f"data.path = {self.path!r} is set, but data.name = {self.name!r} is a built-in "
                f"data set that reads no file; set data.name to the file's format "
                f"({', '.join(FILE_DATA)}), or remove data.path")
        if self.task == "regression" and self.name != "npz":
            raise ValueError(f"data.name = {self.name!r} holds class labels, so data.task = "
                             "'regression' does not apply; save inputs and float targets with "
                             "numpy.savez and use data.name = 'npz', or drop data.task")
        return self


class ModelSpec(_Strict):
    """A zoo model by name, 'package.module:factory' for the user's own nn.Module, or
    'torchvision:<builder>' / 'timm:<name>' (batchlab.models.vision). ``weights``/``freeze``
    apply to the latter and to the zoo's mobilenet_v2/squeezenet (batchlab.models.torchvision_zoo)."""

    name: str = "mlp"
    hidden: list[PositiveInt] = Field([256, 128], description="mlp: hidden layer widths")
    width: PositiveFloat = Field(1.0, description="mobilenet_v2: width multiplier")
    dropout: float | None = Field(None, ge=0, lt=1, description="override the model's dropout")
    kwargs: dict[str, Any] = Field({}, description="extra keyword arguments for a user factory")
    weights: str | None = Field(
        None, description="torchvision:/timm: models and zoo mobilenet_v2/squeezenet: a local state-dict "
        "file (.pth/.pt/.bin/.safetensors) or, not timm:, a weights name read from the torch "
        "hub cache (batchlab.models.weights)")
    freeze: Literal["none", "backbone"] = Field(
        "none", description="torchvision:/timm: models and zoo mobilenet_v2/squeezenet: 'backbone' trains "
        "only the new classifier head")


class ScheduleSpec(_Strict):
    """LR as a function of step. step/multistep/exponential decay in whole ``unit``s (their
    step sizes and milestones count in it); cosine and onecycle anneal per optimizer step over
    the whole run whatever ``unit`` says (see ``batchlab.train.schedules``)."""

    name: ScheduleName = "constant"
    unit: Literal["epoch", "step"] = Field(
        "epoch", description="step/multistep/exponential: decay per epoch or per step")
    step_size: PositiveInt = Field(10, description="step: decay every step_size units")
    milestones: list[PositiveInt] = Field([], description="multistep: decay at these units")
    gamma: PositiveFloat = Field(0.1, description="step/multistep/exponential decay factor")
    min_lr: Annotated[float, Field(ge=0)] = Field(0.0, description="cosine: final LR")
    pct_start: float = Field(0.3, gt=0, lt=1, description="onecycle: fraction spent rising")
    div_factor: PositiveFloat = Field(25.0, description="onecycle: initial LR = lr / div_factor")
    final_div_factor: PositiveFloat = Field(1e4, description="onecycle: final = initial / this")
    warmup: Annotated[int, Field(ge=0)] = Field(0, description="linear warm-up length (0 = none)")
    warmup_unit: Literal["epoch", "step"] = "step"

    @model_validator(mode="after")
    def _milestones_in_order(self) -> ScheduleSpec:
        # an unsorted or repeated list is more often a typo than a wish to decay twice at
        # once; milestones past the end of a run are refused where its length is known
        # (batchlab.train.schedules, for every run the sweep plans)
        m = self.milestones
        if any(a >= b for a, b in pairwise(m)):
            raise ValueError(
                f"train.schedule.milestones = {m} must increase strictly (each {self.unit} "
                f"once, in order), e.g. {sorted(set(m))}")
        return self


class TrainSpec(_Strict):
    """One training run's optimisation settings."""

    optimizer: OptimizerName = "sgd"
    lr: PositiveFloat | Literal["auto"] = Field(
        0.01, description="learning rate; 'auto': the LR range test's suggestion (resolve_auto_lr)"
    )
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    nesterov: bool = False
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    batch_size: PositiveInt = 32
    epochs: PositiveInt | None = 10
    steps: PositiveInt | None = None
    schedule: ScheduleSpec = ScheduleSpec()
    scale_lr: ScaleRule = "none"
    base_batch_size: PositiveInt = 32
    eval_every: PositiveInt | None = Field(None, description="evaluate every N steps (default: each epoch)")
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: PositiveInt | None = Field(None, description="torch threads (default: executor's share)")
    checkpoint: bool = Field(True, description="epoch-end checkpoints (~2% of run time) so a run can resume")
    watch: bool = Field(True, description="per-layer signals at each evaluation: gradient norm, "
                        "update ratio, dead units (layer/<name>/...; batchlab.train.watch)")
    measure_noise_scale: bool = Field(False, description="estimate the gradient noise scale while training")
    noise_scale_micro_batches: Annotated[int, Field(ge=2)] = Field(
        4, description="noise scale: micro-batches the batch is split into (B_small = batch / this)"
    )
    noise_scale_every: PositiveInt = Field(
        50, description="noise scale: measure every N steps (each costs about 1-3.5 extra steps)"
    )
    accumulate: PositiveInt = Field(
        1, description="gradient accumulation: each batch in this many equal micro-batches")
    micro_batch_size: PositiveInt | None = Field(
        None, description="gradient accumulation: at most this many examples per forward/backward")
    precision: Precision = Field("fp32", description="autocast dtype: fp32 (off), bf16, fp16")
    channels_last: bool = Field(False, description="model and 4-D image inputs in channels_last")
    function: str | None = Field(
        None, description="'module:function': sweep your own training function instead of the "
        "built-in loop (batchlab.execute.function); it loads its own data and builds its model")
    options: dict[str, Any] = Field(
        {}, description="train.function: your own keys, given to the function in run.config")
    devices: PositiveInt = Field(
        1, description="processes one run trains in (data parallel; needs strategy = 'ddp'): "
        "each takes batch_size / devices examples of every batch (batchlab.train.distributed)")
    strategy: Literal["single", "ddp"] = Field(
        "single", description="'ddp': DistributedDataParallel over train.devices processes")
    sync_batchnorm: bool = Field(
        False, description="ddp: BatchNorm statistics over the global batch (SyncBatchNorm) "
        "instead of each process's share")

    @field_validator("lr", mode="wrap")
    @classmethod
    def _lr(cls, value: Any, handler: Any) -> Any:
        # one message instead of one per member of the union
        try:
            return handler(value)
        except ValidationError:
            raise ValueError("must be a positive number or 'auto'") from None

    @model_validator(mode="after")
    def _length(self) -> TrainSpec:
        if self.steps is not None and "epochs" in self.model_fields_set and self.epochs is not None:
            raise ValueError("set train.epochs or train.steps, not both")
        if self.nesterov and self.optimizer == "sgd" and self.momentum == 0:
            raise ValueError("train.nesterov needs train.momentum > 0")
        if self.measure_noise_scale and self.batch_size < self.noise_scale_micro_batches:
            raise ValueError(
                f"train.measure_noise_scale splits each batch into {self.noise_scale_micro_batches} "
                "micro-batches, so train.batch_size must be at least train.noise_scale_micro_batches"
            )
        if (why := devices_error(self) or accumulation_error(self)) is not None:
            raise ValueError(why)
        if self.steps is not None and self.epochs is not None:
            # steps replaces the default length; dumping and reloading must not meet both
            return self.model_copy(update={"epochs": None})
        return self

    def device_batch(self) -> int:
        """Examples of every batch one process trains on: ``batch_size`` over ``devices``
        (the global batch is ``batch_size``; see ``batchlab.train.distributed``)."""
        return self.batch_size // self.devices

    def micro_batch(self) -> int:
        """Examples per forward/backward for a full batch in one process (``device_batch()``
        without accumulation).

        The optimizer still steps once per ``batch_size`` examples: see
        ``batchlab.train.accumulate``."""
        if self.micro_batch_size is not None:
            return min(self.micro_batch_size, self.device_batch())
        return self.device_batch() // self.accumulate

    def numeric_lr(self) -> float:
        """``lr`` as a number; SpecError when it is still "auto" (never guessed silently)."""
        if self.lr == "auto":
            raise SpecError(AUTO_LR_UNRESOLVED)
        return self.lr


class Distribution(_Strict):
    """One random-search dimension: exactly one of log_uniform, uniform, int_uniform, choice."""

    log_uniform: tuple[PositiveFloat, PositiveFloat] | None = None
    uniform: tuple[float, float] | None = None
    int_uniform: tuple[int, int] | None = None
    choice: list[Any] | None = None

    @model_validator(mode="after")
    def _one(self) -> Distribution:
        given = [k for k in ("log_uniform", "uniform", "int_uniform", "choice") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of log_uniform, uniform, int_uniform, choice")
        bounds = getattr(self, given[0]) if given[0] != "choice" else None
        if bounds is not None and bounds[0] > bounds[1]:
            # refused rather than swapped: a reversed range is more often a typo in one bound
            raise ValueError(f"{given[0]} = [{bounds[0]}, {bounds[1]}] is reversed; "
                             f"give [low, high], e.g. [{bounds[1]}, {bounds[0]}]")
        return self


def field_paths(value: Any, leaf: Callable[[Any], bool], prefix: str = "") -> Any:
    """``value`` (a table of field paths) with its nested tables that are not ``leaf`` values
    flattened into dotted keys, as ``--set sweep.grid.train.lr=...`` is read: TOML reads an
    unquoted ``train.lr = ...`` under ``[sweep.grid]`` or ``[sweep.random.params]`` as the
    table {"train": {"lr": ...}}. Anything but a dict is returned as it is (pydantic says what
    is wrong with it)."""
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        out.update({f"{prefix}{key}": item} if leaf(item)
                   else field_paths(item, leaf, f"{prefix}{key}."))
    return out


class RandomSpec(_Strict):
    count: PositiveInt
    seed: int = 0
    params: dict[str, Distribution]

    @field_validator("params", mode="before")
    @classmethod
    def _dotted_keys(cls, value: Any) -> Any:
        # a distribution is a table of its own, {log_uniform = [...]}, but of lists: a table
        # of tables is a path
        return field_paths(value, lambda item: not isinstance(item, dict) or not item
                           or not all(isinstance(v, dict) for v in item.values()))


class SweepSpec(_Strict):
    """Grid over field paths, explicit points, random samples, and repeats (seeds) of each.

    Every grid point is crossed with every explicit point and every random sample.
    """

    grid: dict[str, list[Any]] = {}
    points: list[dict[str, Any]] = Field([], description="explicit sweep points")
    random: RandomSpec | None = None
    repeats: PositiveInt = 1
    prune: Literal["off", "hopeless", "halving"] = Field(
        "hopeless", description="stop runs early: 'hopeless' ones (collapsed to chance, or never "
        "learned: a loss above ln C from the start), or successive 'halving' at equal examples "
        "seen (which prunes hopeless runs too)")
    halving_eta: Annotated[int, Field(ge=2)] = Field(
        3, description="halving: keep the best 1/eta of the configurations at each rung")

    @field_validator("grid", mode="before")
    @classmethod
    def _dotted_keys(cls, value: Any) -> Any:
        # a grid value is always a list, never a table: a table is a path (see field_paths)
        return field_paths(value, lambda item: not isinstance(item, dict))


class Spec(_Strict):
    """A whole study: an experiment name plus data, model, train and sweep sections."""

    name: str = Field("experiment", min_length=1)
    data: DataSpec = DataSpec()
    model: ModelSpec = ModelSpec()
    train: TrainSpec = TrainSpec()
    sweep: SweepSpec = SweepSpec()

    @model_validator(mode="after")
    def _function_owns_data_and_model(self) -> Spec:
        # a training function loads its data and builds its model: the run config says so
        # ("custom", as for tracked runs) rather than naming the default digits and mlp
        custom = self.data.name == "custom"
        if self.train.function is None:
            if custom:
                raise ValueError("data.name = 'custom' is the data of a train.function; set "
                                 "train.function = 'module:function' or name a data set")
            return self
        if "data" in self.model_fields_set and not custom:
            raise ValueError(f"train.function = '{self.train.function}' loads its own data, so "
                             "the spec takes no [data] section; leave it out")
        if "model" in self.model_fields_set and self.model.name != "custom":
            raise ValueError(f"train.function = '{self.train.function}' builds its own model, so "
                             "the spec takes no [model] section; leave it out (put your own "
                             "keys in [train.options])")
        return self.model_copy(update={"data": DataSpec(name="custom"), "model": ModelSpec(name="custom")})


class RunConfig(_Strict):
    """The resolved config of one run: what the trainer needs, nothing about the sweep."""

    data: DataSpec
    model: ModelSpec
    train: TrainSpec

    def run_id(self) -> str:
        """Stable id: a hash of the canonical JSON of the config (same config, same id)."""
        import hashlib

        config = self.model_dump(mode="json")
        if not self.train.measure_noise_scale:
            # Added later and inert when off: left out so runs keep the ids they had before.
            for key in NOISE_SCALE_FIELDS:
                config["train"].pop(key)
        for key in DATA_LOADING_FIELDS:  # added later; they never change a run's numbers
            config["data"].pop(key)
        config["train"].pop("watch")  # what is recorded beside the run, not its numbers
        for section, defaults in LATER_DEFAULTS.items():
            for key, default in defaults.items():
                if key in config[section] and config[section][key] == default:
                    config[section].pop(key)
        blob = json.dumps(config, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------- loading


def format_validation_error(err: ValidationError, source: str) -> str:
    """One paragraph naming every bad field, what was wrong and how to fix it."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-after"))
        loc = loc or "(top level)"
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown field '{loc}' (check the spelling; the spec reference: docs/spec.md)")
        elif e["type"] == "literal_error":
            parts.append(f"'{loc}' = {e.get('input')!r} is not allowed: {e['msg'].lower()}")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            parts.append(f"'{loc}': {msg} (got {e.get('input')!r})")
    return f"invalid spec in {source}: " + "; ".join(parts) + "."


def spec_from_dict(raw: dict[str, Any], source: str = "spec") -> Spec:
    """A spec from a dict laid out as a TOML spec file (``name`` and the ``data``, ``model``,
    ``train`` and ``sweep`` tables), validated as ``load_spec`` validates a file; SpecError
    naming the field and ``source`` (where the dict came from) when it is not valid."""
    try:
        return Spec.model_validate(raw)
    except ValidationError as err:
        raise SpecError(format_validation_error(err, source)) from None


def load_spec(path: str | Path, overrides: list[str] | None = None,
              notes: list[str] | None = None) -> Spec:
    """Read a TOML spec file, apply ``key=value`` overrides (``notes`` collects what they
    replaced), validate."""
    p = Path(path)
    if p.is_dir():
        raise SpecError(f"spec path '{p}' is a folder, not a file; pass the path of a TOML spec "
                        "file (see examples/).")
    if not p.is_file():
        raise SpecError(f"spec file '{p}' does not exist; pass the path of a TOML spec (see examples/).")
    try:
        # utf-8-sig: a byte-order mark (Windows Notepad, PowerShell) is no syntax error at 1:1
        raw = tomllib.loads(p.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as err:
        raise SpecError(f"spec file '{p}' is not UTF-8 text ({err}); save it as UTF-8, as TOML "
                        "requires, and retry.") from None
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"spec file '{p}' is not valid TOML: {err}. Fix the syntax and retry.") from None
    raw.setdefault("name", p.stem)
    return spec_from_dict(apply_overrides(raw, overrides or [], notes), source=str(p))

"""The Python API's keywords as a spec: short field names, grid keys and object fields.

``bl.sweep(..., grid={"batch_size": [16, 64]}, epochs=5)`` means the spec
``{"train": {"epochs": 5}, "sweep": {"grid": {"train.batch_size": [16, 64]}}}``. A short name
is a field of ``train`` (``batch_size``, ``lr``, ``schedule``, ``seed``, ``epochs``,
``optimizer``, ...) or of ``data`` (``limit``, ``val_fraction``, ``augment``, ...); a full path
(``"train.schedule.warmup"``) is taken as it is. A schedule given as a name (``"cosine"``) is
``{"name": "cosine"}``. Everything is then validated by the same pydantic models as a TOML
spec, so a typo is an error naming the field.
"""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Callable, Mapping
from typing import Any

from batchlab.errors import SpecError
from batchlab.overrides import set_path
from batchlab.spec import DataSpec, ModelSpec, Spec, TrainSpec, spec_from_dict

# where a short name is looked up, in this order (model fields name zoo settings: not here)
SECTIONS = (("train", TrainSpec), ("data", DataSpec))
# Fields the objects themselves decide: given by keyword they would contradict the objects.
# data.task too: the targets passed decide it (integer labels or float regression targets)
OBJECT_FIELDS = {"data.name", "data.path", "data.task", "model.name", "model.kwargs"}


def field_path(key: str) -> str:
    """The dotted spec path of an API keyword or grid key; SpecError naming it when unknown."""
    if "." in key:
        path = key
    else:
        owners = [section for section, fields in SECTIONS if key in fields.model_fields]
        if not owners:
            known = sorted({f for _, fields in SECTIONS for f in fields.model_fields})
            raise SpecError(
                f"'{key}' is not a spec field; use a field of train or data ({', '.join(known)}) "
                "or a full path such as 'train.schedule.warmup'."
            )
        path = f"{owners[0]}.{key}"
    if path.split(".")[0] not in ("train", "data", "model"):
        raise SpecError(f"'{key}' must name a field of train, data or model "
                        "(for example 'train.batch_size').")
    if path in OBJECT_FIELDS:
        raise SpecError(f"'{key}' is set by the objects you pass (model=, train=, val=); "
                        "leave it out.")
    if path.startswith("model."):  # the module passed is used as it is: nothing reads these
        raise SpecError(
            f"'{key}' sets {path}, a setting of batchlab's own models (the zoo, torchvision:, "
            "timm:, a spec's factory); the model= you pass is trained as it is, so it would "
            "change the run ids and nothing else. Build each variant yourself and sweep it "
            "under the same experiment name, e.g. for p in (0.1, 0.5): "
            "bl.sweep('exp', model=Net(dropout=p), ...) (the runs join, told apart by model)."
        )
    return path


# what batchlab's named optimizers read (``build_optimizer``); an optimizer= function builds
# its own, so these would change the run ids and nothing else
OPTIMIZER_FIELDS = ("train.optimizer", "train.momentum", "train.nesterov", "train.weight_decay")
# what splits train= when no val= is given (``InMemoryData.dataset``); unread beside a val=
SPLIT_FIELDS = ("data.val_fraction",)


def keys_setting(paths: tuple[str, ...], fields: Mapping[str, Any], grid: Any) -> list[str]:
    """The keywords and grid keys that set one of ``paths`` (unknown keys: ``field_path``'s
    SpecError)."""
    keys = [*fields, *(grid if isinstance(grid, dict) else {})]
    return [k for k in keys if isinstance(k, str) and field_path(k) in paths]


def refuse_optimizer_fields(fields: Mapping[str, Any], grid: Any) -> None:
    """SpecError when a keyword or grid key sets an ``OPTIMIZER_FIELDS`` field beside an
    optimizer= function: ``weight_decay=0.1`` with ``lambda p, lr: Adam(p, lr=lr)`` was
    trained without weight decay and stored as if with it."""
    if named := keys_setting(OPTIMIZER_FIELDS, fields, grid):
        raise SpecError(
            f"{', '.join(map(repr, named))} configure batchlab's named optimizers, but "
            "optimizer= is your function, which builds the optimizer itself and never reads "
            "them; set them in it (lambda params, lr: torch.optim.SGD(params, lr=lr, "
            "momentum=0.9, weight_decay=5e-4)), or pass optimizer='sgd' (a name) to use them."
        )


def refuse_split_fields(fields: Mapping[str, Any], grid: Any) -> None:
    """SpecError when a keyword or grid key sets ``val_fraction`` beside a val=: nothing is
    split off then, yet the runs were stored (and labelled) as if it differed."""
    if named := keys_setting(SPLIT_FIELDS, fields, grid):
        raise SpecError(
            f"{', '.join(map(repr, named))} sets the share of train= held out for validation "
            "when no val= is given; with val= nothing is held out, so it would change the run "
            "ids and nothing else. Leave it out, or leave out val= to split train= instead."
        )


def plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays as Python numbers and lists, inside dicts,
    lists and tuples too: ``np.int64(64)`` is 64 to the spec's validation and to the JSON of
    the stored config, which cannot write numpy types."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if type(value) in (list, tuple):  # not subclasses: a namedtuple is built otherwise
        return type(value)(plain(v) for v in value)
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return _short_floats(value).tolist()  # a scalar's Python number, an array's nested lists
    return value


def _short_floats(value: Any) -> Any:
    """A numpy float32/float16 scalar or array as float64 holding the shortest decimal that
    reads back as each value: ``np.float32(0.1)`` holds 0.10000000149011612, which became the
    run's LR, its label and its run id instead of the 0.1 written (``np.logspace(..., dtype=
    np.float32)``, ``torch.logspace`` in a grid). Anything else unchanged."""
    import numpy as np

    dtype = getattr(value, "dtype", None)
    if dtype is None or dtype.kind != "f" or dtype.itemsize >= 8:
        return value
    array = np.asarray(value)
    short = np.array([float(np.format_float_positional(v, unique=True)) for v in array.ravel()])
    return short.reshape(array.shape) if array.ndim else short[0]


def user_config(config: Any, who: str) -> dict[str, Any]:
    """``config`` as a dict of flat keys (a copy; None: empty), for ``who`` ("bl.track",
    "BatchlabLogger", ...) to record. Anything else is a SpecError naming the fix: a string or
    a list would otherwise fail inside dict() with a traceback that names neither."""
    if config is None:
        return {}
    if isinstance(config, Mapping):
        return dict(config)
    hint = " (an argparse.Namespace: vars(args))" if isinstance(config, Namespace) else ""
    raise SpecError(f"{who}: config={config!r:.80} ({type(config).__name__}) is not a dict; pass "
                    f"a dict of flat keys{hint}, e.g. config={{'batch_size': 64, 'lr': 0.01}}, "
                    "or leave it out.")


# grid values given as something other than a list: the ordered sequences that are read as
# one (numpy arrays, pandas Series and torch tensors by their tolist())
SEQUENCES = (list, tuple, range)


def _grid_items(grid: Any) -> list[tuple[str, Any]]:
    """``grid``'s (key, values) pairs; SpecError when it is not a dict of names."""
    if grid is None:
        return []
    if not isinstance(grid, dict):
        raise SpecError(
            f"grid={grid!r} is a {type(grid).__name__}; pass a dict of spec field -> list of "
            "values, e.g. grid={'batch_size': [16, 32], 'lr': [0.1, 0.01]}."
        )
    for key in grid:
        if not isinstance(key, str):
            raise SpecError(f"grid key {key!r} is not a string; grid keys are spec field "
                            "names as strings, e.g. grid={'batch_size': [16, 32]}.")
    return list(grid.items())


def grid_values(key: str, values: Any) -> list[Any]:
    """The values of ``grid[key]`` as a list of plain Python values: a list, tuple or range,
    or a 1-D numpy array (pandas Series, torch tensor); SpecError for a single value or
    anything else, with the list to write instead."""
    if not isinstance(values, (*SEQUENCES, str, bytes, dict)) and hasattr(values, "tolist"):
        if type(values).__module__.startswith("torch") and hasattr(values, "numpy"):
            values = values.detach().cpu().numpy()  # float32 by default: read as numpy's are
        if type(values).__module__.startswith("pandas"):
            values = values.to_numpy()
        values = _short_floats(values).tolist()  # Python scalars, nested lists by dimension
        if not isinstance(values, list):  # a 0-d array: one value
            raise SpecError(f"grid['{key}'] = {values!r} is a single value; a grid gives a list "
                            f"of values, e.g. grid={{'{key}': [{values!r}]}}.")
    if isinstance(values, str | int | float | bool | dict) or values is None:
        raise SpecError(f"grid['{key}'] = {values!r} must be a list of values, "
                        f"e.g. grid={{'{key}': [{values!r}]}}.")
    if not isinstance(values, SEQUENCES):
        raise SpecError(f"grid['{key}'] is a {type(values).__name__}; pass a list of values "
                        "instead: list(...) of it, or sorted(...) of a set (a grid's order is "
                        "the runs' order).")
    return [plain(v) for v in values]


def _value(path: str, value: Any) -> Any:
    """A schedule given by name is the schedule section with that name."""
    if path == "train.schedule" and isinstance(value, str):
        return {"name": value}
    return value


def api_spec(name: str, *, data: DataSpec, model: ModelSpec, grid: dict[str, list[Any]] | None,
             fields: dict[str, Any], repeats: int = 1, prune: str = "hopeless",
             call: str = "sweep") -> Spec:
    """The validated Spec of an API call: ``data``/``model`` name the objects, ``fields``
    (keyword -> value) set single values, ``grid`` (key -> values) is the sweep, ``prune``
    its ``sweep.prune``; ``call`` names the API function in errors."""
    raw: dict[str, Any] = {"name": name, "data": data.model_dump(mode="json"),
                           "model": model.model_dump(mode="json"), "train": {}}
    where = f"batchlab.sweep('{name}')" if call == "sweep" else f"batchlab.{call}(...)"
    return keyword_spec(raw, grid, fields, repeats, prune, where)


def _refuse_replaced(source: str, key: str, path: str, keyword_paths: Mapping[str, str]) -> None:
    """SpecError when grid key ``key`` (at ``path``) replaces, in every run, a field inside it
    that a keyword set: ``train.schedule.warmup=5`` beside ``grid={'schedule': [...]}``
    trained every run without the warm-up, without a word. (A keyword of the grid key's own
    field is its default, as a spec file's ``train.lr`` beside a grid over it: wrappers such
    as ``functools.partial(bl.sweep, lr=0.05)`` rely on it.)"""
    for kpath, kw in keyword_paths.items():
        if kpath.startswith(path + "."):
            inner = kpath[len(path) + 1:]
            example = (f", e.g. grid={{{key!r}: [{{'name': 'cosine', {inner!r}: ...}}, ...]}}"
                       if path == "train.schedule" else "")
            raise SpecError(f"{source}: keyword {kw!r} sets {kpath}, but grid key {key!r} sets "
                            f"the whole {path} of every run, which replaces it; put {inner!r} in "
                            f"each of the grid's values instead{example}.")


def keyword_spec(raw: dict[str, Any], grid: dict[str, list[Any]] | None, fields: dict[str, Any],
                 repeats: int, prune: str, source: str,
                 path_of: Callable[[str], str] = field_path) -> Spec:
    """``raw`` with ``fields`` set and ``grid`` as its sweep, validated; ``path_of`` maps a
    keyword or grid key to its spec path (default: ``field_path``)."""
    given: dict[str, str] = {}  # "keywords" or "grid keys" + path -> the key that set it

    def once(key: str, what: str) -> str:
        """``key``'s spec path; SpecError when another key of ``what`` named it: one of
        the two values would be dropped without a word."""
        path = path_of(key)
        if (other := given.get(what + path)) is not None:
            raise SpecError(f"{source}: {what} {other!r} and {key!r} both set {path}; "
                            "give it once.")
        given[what + path] = key
        return path

    keyword_paths: dict[str, str] = {}
    for key, value in fields.items():
        path = once(key, "keywords")
        keyword_paths[path] = key
        raw = set_path(raw, path, _value(path, plain(value)))
    sweep_grid: dict[str, list[Any]] = {}
    for key, values in _grid_items(grid):
        path = once(key, "grid keys")
        _refuse_replaced(source, key, path, keyword_paths)
        sweep_grid[path] = [_value(path, v) for v in grid_values(key, values)]
    raw["sweep"] = {"grid": sweep_grid, "repeats": repeats, "prune": prune}
    return spec_from_dict(raw, source=source)

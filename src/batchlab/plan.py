"""Expand a spec into the runs of its sweep.

Each run is a ``RunSpec``: the resolved ``RunConfig`` (data, model, train with a concrete seed),
its stable id (hash of that config) and the sweep values that produced it (for tables/plots).
The same spec always plans the same runs in the same order, so re-running a sweep finds the
runs it already finished by id and never creates a duplicate.

A swept value a run ignores (``train.momentum`` for adam, ``model.hidden`` for lenet5:
``batchlab.applicable``) is set back to the field's default for that run, so points that differ
only in it are one run, trained once, and the plan says so in a note. Runs whose swept values
all apply keep the ids they always had. Random-search floats are rounded to
``SIGNIFICANT_DIGITS`` when drawn, so stored configs and every label read "lr 0.0998".
"""

from __future__ import annotations

import itertools
import json
import math
import random
from dataclasses import dataclass, field
from typing import Any

from batchlab.applicable import deciding, swept_inapplicable, value_at
from batchlab.errors import SpecError
from batchlab.overrides import set_path
from batchlab.spec import Distribution, RandomSpec, RunConfig, Spec, spec_from_dict

#: significant digits of a random-search float draw: 1,000 values per decade, finer than any
#: LR or momentum difference a run can show, and labels that read (0.0998, not 0.0997806)
SIGNIFICANT_DIGITS = 3
#: fields a model that ignores them refuses when set (``batchlab.models.zoo``): a sweep over
#: ``model.name`` sets them back to their defaults for such a model, as for a swept value
MODEL_FIELDS = ("model.hidden", "model.width")


@dataclass(frozen=True)
class RunSpec:
    """One planned run: its id, resolved config and the sweep point it came from."""

    run_id: str
    config: RunConfig
    point: dict[str, Any] = field(default_factory=dict)


def sample(dist: Distribution, rng: random.Random) -> Any:
    """Draw one value; log-uniform samples uniformly in log space (the right prior for LR).
    Float draws are rounded to ``SIGNIFICANT_DIGITS`` (kept inside their bounds)."""
    if dist.log_uniform:
        lo, hi = dist.log_uniform
        return _rounded(math.exp(rng.uniform(math.log(lo), math.log(hi))), lo, hi)
    if dist.uniform:
        return _rounded(rng.uniform(*dist.uniform), *dist.uniform)
    if dist.int_uniform:
        return rng.randint(*dist.int_uniform)
    assert dist.choice is not None
    return rng.choice(dist.choice)


def _rounded(x: float, lo: float, hi: float) -> float:
    """``x`` to ``SIGNIFICANT_DIGITS`` significant digits, clamped to [lo, hi] (rounding may
    step just outside a bound that has more digits)."""
    return min(max(float(f"{x:.{SIGNIFICANT_DIGITS}g}"), lo), hi)


def sweep_points(spec: Spec) -> list[dict[str, Any]]:
    """Grid points (cartesian product, in the spec's order) x explicit points x random samples."""
    grid = spec.sweep.grid
    for key, values in grid.items():
        if not values:
            raise SpecError(f"sweep.grid.'{key}' is an empty list; give at least one value.")
    points = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]
    if spec.sweep.points:
        points = [{**p, **q} for p in points for q in spec.sweep.points]
    if spec.sweep.random is not None:
        points = [{**p, **s} for p in points for s in random_samples(spec.sweep.random)]
    return points


def random_samples(rnd: RandomSpec) -> list[dict[str, Any]]:
    """``rnd.count`` draws from ``rnd.seed``, each unlike the ones before: a draw that repeats
    one (two floats the rounding made equal, or the same choice) is drawn again, so a count of
    20 trains 20 runs. Where the space holds fewer points than the count (choices only), the
    distinct draws of ``10 * count`` tries are all there is."""
    rng = random.Random(rnd.seed)
    samples: list[dict[str, Any]] = []
    drawn: set[str] = set()
    for _ in range(10 * rnd.count):
        draw = {k: sample(d, rng) for k, d in rnd.params.items()}
        key = json.dumps(draw, sort_keys=True, default=str)
        if key not in drawn:
            drawn.add(key)
            samples.append(draw)
            if len(samples) == rnd.count:
                break
    return samples


def _defaults() -> dict[str, Any]:
    return Spec().model_dump(mode="json", exclude={"sweep", "name"})


def _drop_inapplicable(raw: dict[str, Any], point: dict[str, Any], spec: Spec,
                       defaults: dict[str, Any]) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    """``raw`` (a point's resolved config) with the values it ignores set back to their
    defaults: the point's own keys that do not apply to it, and, where the sweep sets
    model.name, model.hidden / model.width for a model that does not take them. Returns it, the
    paths it looked at, and the dropped ones, each with why it does not apply
    ("train.optimizer = 'adam'").
    A train.function reads train.* as it likes, so nothing is dropped from its runs."""
    if spec.train.function is not None:
        return raw, [], {}
    keys = list(point) + ([k for k in MODEL_FIELDS if k not in point
                           and value_at(raw, k) != value_at(defaults, k)] if "model.name" in point else [])
    dropped = {p: deciding(raw, p) for p in swept_inapplicable(raw, keys)}
    for path in dropped:
        raw = set_path(raw, path, value_at(defaults, path))
    return raw, keys, dropped


def _dropped_notes(dropped: dict[tuple[str, str], list[tuple[int, str]]],
                   defaults: dict[str, Any]) -> list[str]:
    """One sentence per (field, reason): how many sweep points set a value there that has no
    effect, and how many runs they are once it is dropped (``dropped``: (point index, run id)
    each)."""
    notes = []
    for (path, why), hits in dropped.items():
        points, ids = len({i for i, _ in hits}), len({r for _, r in hits})
        same = f", so they are {ids} run{'s' if ids > 1 else ''} (trained once)" if ids < points else ""
        there = "the point there runs" if points == 1 else f"the {points} points there run"
        notes.append(f"{path} does not apply where {why}: {there} with its default "
                     f"{value_at(defaults, path)!r}{same}.")
    return notes


def _refuse_unread(applied: dict[str, bool], ignored: dict[tuple[str, str], Any]) -> None:
    """SpecError for a swept field that no run of the sweep reads (``applied``: each swept path,
    whether some run reads it; ``ignored``: why, by (path, reason)): a mistake, such as a
    model.hidden grid on lenet5, not values to try."""
    unread = [p for p, used in applied.items() if not used]
    if unread:
        path = unread[0]
        why = next(w for p, w in ignored if p == path)
        raise SpecError(
            f"{path} is set, but no run of the sweep reads it: it does not apply where {why}, "
            f"so every value would train the same run. Remove {path} (from the sweep or the "
            f"spec), or change {why.partition(' = ')[0]} to a setting it applies to.")


def plan_runs(spec: Spec, notes: list[str] | None = None) -> list[RunSpec]:
    """All runs of the sweep: every point x every repeat (seed = train.seed + repeat).

    ``notes`` collects one sentence per swept field some runs ignore (their value is set back
    to the default, see the module's docstring), to say once at the start of the sweep."""
    base = spec.model_dump(mode="json", exclude={"sweep", "name"})
    defaults = _defaults()
    runs: list[RunSpec] = []
    seen: set[str] = set()
    ignored: dict[tuple[str, str], list[tuple[int, str]]] = {}
    applied: dict[str, bool] = {}  # each swept path: whether some run reads it
    for index, point in enumerate(sweep_points(spec)):
        for repeat in range(spec.sweep.repeats):
            raw = base
            for path, value in point.items():
                if path.split(".")[0] not in ("data", "model", "train"):
                    raise SpecError(
                        f"sweep key '{path}' must start with data., model. or train. "
                        "(for example \"train.batch_size\")."
                    )
                raw = set_path(raw, path, value)
            # a seed swept in the grid or given by a point is the first of its repeats
            raw = set_path(raw, "train.seed", point.get("train.seed", spec.train.seed) + repeat)
            raw, keys, dropped = _drop_inapplicable(raw, point, spec, defaults)
            for key in keys:
                applied[key] = applied.get(key, False) or key not in dropped
            resolved = spec_from_dict(raw, source=f"sweep point {point}")
            config = RunConfig(data=resolved.data, model=resolved.model, train=resolved.train)
            run_id = config.run_id()
            for path, why in dropped.items() if repeat == 0 else ():  # points, not seeds
                ignored.setdefault((path, why), []).append((index, run_id))
            if run_id in seen:  # two sweep points that resolve to the same run: train it once
                continue
            seen.add(run_id)
            label = {k: v for k, v in point.items() if k not in dropped}  # what the run is
            if spec.sweep.repeats > 1:
                label["train.seed"] = config.train.seed
            runs.append(RunSpec(run_id=run_id, config=config, point=label))
    _refuse_unread(applied, ignored)
    if notes is not None:
        notes += _dropped_notes(ignored, defaults)
    return runs

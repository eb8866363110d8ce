"""Expand a spec into the runs of its sweep.

Each run is a ``RunSpec``: the resolved ``RunConfig`` (data, model, train with a concrete seed),
its stable id (hash of that config) and the sweep values that produced it (for tables/plots).
The same spec always plans the same runs in the same order, so re-running a sweep finds the
runs it already finished by id and never creates a duplicate.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from typing import Any

from batchlab.errors import SpecError
from batchlab.overrides import set_path
from batchlab.spec import Distribution, RunConfig, Spec, spec_from_dict


@dataclass(frozen=True)
class RunSpec:
    """One planned run: its id, resolved config and the sweep point it came from."""

    run_id: str
    config: RunConfig
    point: dict[str, Any] = field(default_factory=dict)


def sample(dist: Distribution, rng: random.Random) -> Any:
    """Draw one value; log-uniform samples uniformly in log space (the right prior for LR)."""
    if dist.log_uniform:
        lo, hi = dist.log_uniform
        return math.exp(rng.uniform(math.log(lo), math.log(hi)))
    if dist.uniform:
        return rng.uniform(*dist.uniform)
    if dist.int_uniform:
        return rng.randint(*dist.int_uniform)
    assert dist.choice is not None
    return rng.choice(dist.choice)


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
        rnd = spec.sweep.random
        rng = random.Random(rnd.seed)
        samples = [{k: sample(d, rng) for k, d in rnd.params.items()} for _ in range(rnd.count)]
        points = [{**p, **s} for p in points for s in samples]
    return points


def plan_runs(spec: Spec) -> list[RunSpec]:
    """All runs of the sweep: every point x every repeat (seed = train.seed + repeat)."""
    base = spec.model_dump(mode="json", exclude={"sweep", "name"})
    runs: list[RunSpec] = []
    seen: set[str] = set()
    for point in sweep_points(spec):
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
            resolved = spec_from_dict(raw, source=f"sweep point {point}")
            config = RunConfig(data=resolved.data, model=resolved.model, train=resolved.train)
            run_id = config.run_id()
            if run_id in seen:  # two sweep points that resolve to the same run: train it once
                continue
            seen.add(run_id)
            label = {**point, "train.seed": config.train.seed} if spec.sweep.repeats > 1 else point
            runs.append(RunSpec(run_id=run_id, config=config, point=label))
    return runs

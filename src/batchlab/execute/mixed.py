"""An experiment whose runs use different models or data: name them as a differing field.

Sweeping again under an experiment's name with another model (or other data) adds its runs to
the experiment, beside the earlier ones. Their configs then differ in a field no sweep point
names, so tables, the report's legends, facets and the diagnosis would show two configurations
that read the same. ``label_sections`` puts a ``model`` (and/or ``data``) entry into the point
of every run of the experiment, old and new, with a short label that tells them apart, and says
so in a notice; everything downstream shows points, so it shows the difference too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

from batchlab.plan import RunSpec
from batchlab.store import Store

SECTIONS = ("model", "data")


def _key(section: dict[str, Any]) -> str:
    return json.dumps(section, sort_keys=True, default=str)


def section_labels(configs: list[dict[str, Any]]) -> dict[str, str]:
    """A short label per distinct section config (by its JSON key): its name plus every
    other field whose value differs among them, as ``field=value`` (a dict, such as an object
    model's fingerprints, or a long value as ``#`` and 6 hex digits of its hash)."""
    distinct = {_key(c): c for c in configs}
    fields = sorted({k for c in distinct.values() for k in c})
    differ = [k for k in fields
              if k != "name" and len({_key({"v": c.get(k)}) for c in distinct.values()}) > 1]

    def show(value: Any) -> str:
        text = _key(value) if isinstance(value, dict | list) else str(value)
        if len(text) <= 24 and not isinstance(value, dict):
            return text
        return "#" + hashlib.sha256(text.encode()).hexdigest()[:6]

    return {key: " ".join([str(c.get("name"))] + [f"{k}={show(c.get(k))}" for k in differ])
            for key, c in distinct.items()}


def _hidden(section: str, points: list[dict[str, Any]], configs: list[dict[str, Any]]) -> bool:
    """Whether runs whose points show the same ``section.*`` values differ in that section
    (a grid over ``model.hidden`` shows its difference already)."""
    seen: dict[str, str] = {}
    for point, config in zip(points, configs, strict=True):
        shown = _key({k: v for k, v in point.items() if k.startswith(f"{section}.")})
        if seen.setdefault(shown, _key(config)) != _key(config):
            return True
    return False


def label_sections(store: Store, experiment: str, runs: list[RunSpec], *,
                   write: bool = True) -> tuple[list[RunSpec], list[str]]:
    """``runs`` with a ``model``/``data`` point entry where the experiment's runs (stored and
    planned) differ in that section, and one notice per section a planned run adds; the
    stored runs' points are updated in the store (not with ``write=False``: a dry run)."""
    known = any(e.name == experiment for e in store.experiments())
    planned = {run.run_id for run in runs}
    records = store.runs(experiment) if known else []
    stored = [r for r in records if r.id not in planned]
    notices: list[str] = []
    points: dict[str, dict[str, Any]] = {r.id: dict(r.point) for r in stored}
    out = list(runs)
    for section in SECTIONS:
        old = [r.config.get(section, {}) for r in stored]
        new = [run.config.model_dump(mode="json")[section] for run in runs]
        if not _hidden(section, [r.point for r in stored] + [r.point for r in runs], old + new):
            continue
        labels = section_labels(old + new)
        for record, config in zip(stored, old, strict=True):
            points[record.id][section] = labels[_key(config)]
        out = [replace(run, point={**run.point, section: labels[_key(config)]})
               for run, config in zip(out, new, strict=True)]
        before = {_key(r.config.get(section, {})) for r in records}
        if before and any(_key(c) not in before for c in new):
            notices.append(
                f"experiment '{experiment}' already has runs with another {section} "
                f"({', '.join(sorted(labels.values()))}); the new runs are added beside them and "
                f"every table and figure shows '{section}' as a differing field. Use another "
                "experiment name to keep them apart.")
    if write and stored and any(points[r.id] != r.point for r in stored):
        store.set_points(experiment, {r.id: points[r.id] for r in stored})
    return out, notices

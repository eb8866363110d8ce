"""Write a spec as TOML, in the layout of the spec files in ``examples/``, with comments.

:func:`compact` keeps only what differs from the defaults (what a person would have written);
:func:`spec_toml` turns that dict into TOML: top-level keys, then one ``[section]`` per
section (``[train.schedule]``, ``[sweep.grid]`` below their parents), with a ``# comment`` line
above any key whose dotted path has one. ``sweep.points`` is written one inline table per line
so that each point can carry its own comment. The text reads back with ``load_spec`` to the
same spec (``batchlab.nextspec`` checks that before it writes a file).
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from batchlab.spec import spec_from_dict

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
SECTIONS = ("data", "model", "train", "sweep")


def compact(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A stored spec (``Spec.model_dump(mode="json")``) reduced to the fields that differ from
    the defaults; None values are dropped (TOML has no null, and a field left out takes its
    default, which is what a stored None means for every field that can be None)."""
    spec = spec_from_dict(dict(raw), source="the stored spec")
    return _drop_none(spec.model_dump(mode="json", exclude_defaults=True))


def _drop_none(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _drop_none(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_drop_none(v) for v in node]
    return node


def key(name: str) -> str:
    """A TOML key: bare when it can be, else quoted ("train.lr")."""
    return name if _BARE.match(name) else json.dumps(name)


def value(v: Any) -> str:
    """A TOML value for a JSON-like Python value (str, bool, int, float, list, dict)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + " }" if v else "{}"
    if isinstance(v, Sequence):
        return "[" + ", ".join(value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} {v!r} as TOML")


def _comment(lines: list[str], text: str | None, indent: str = "") -> None:
    """``text`` as comment lines of at most ~100 characters (its own line breaks kept); an
    indented line, a command to paste, is kept whole however long (wrapped, a path with a
    space in it would be cut in two)."""
    for line in (text or "").splitlines():
        parts = [line] if line.startswith(" ") else textwrap.wrap(
            line, 98 - len(indent), break_on_hyphens=False)
        for part in parts or [""]:
            lines.append(f"{indent}# {part}".rstrip())


def _table(lines: list[str], path: tuple[str, ...], node: Mapping[str, Any],
           notes: Mapping[str, str], point_notes: Sequence[str | None]) -> None:
    """Append ``[path]`` (nothing for the top level) with its plain keys, then its sub-tables
    (every non-empty dict value becomes its own ``[path.key]``)."""
    dotted = ".".join(path)
    tables = {k: v for k, v in node.items() if isinstance(v, Mapping) and v}
    if path and (len(tables) < len(node) or dotted in notes):  # no header for a bare parent
        lines.append("")
        _comment(lines, notes.get(dotted))
        lines.append("[" + ".".join(key(p) for p in path) + "]")
    for k, v in node.items():
        if k in tables:
            continue
        here = f"{dotted}.{k}" if dotted else k
        _comment(lines, notes.get(here))
        if here == "sweep.points" and v:
            lines.append("points = [")
            for i, point in enumerate(v):
                _comment(lines, point_notes[i] if i < len(point_notes) else None, "  ")
                lines.append(f"  {value(point)},")
            lines.append("]")
        else:
            lines.append(f"{key(k)} = {value(v)}")
    for k, v in tables.items():
        _table(lines, (*path, k), v, notes, point_notes)


def spec_toml(raw: Mapping[str, Any], header: str = "", notes: Mapping[str, str] | None = None,
              point_notes: Sequence[str | None] = ()) -> str:
    """The TOML text of a spec dict (see the module doc). ``header``: comment lines at the top;
    ``notes``: dotted path ("train.epochs", "sweep.grid.train.lr" as "sweep.grid", ...) ->
    comment written above it; ``point_notes``: one comment (or None) per ``sweep.points`` entry."""
    lines: list[str] = []
    raw = _drop_none(raw)  # a field set to None is left out: it takes its default (see compact)
    _comment(lines, header)
    top = {k: v for k, v in raw.items() if k not in SECTIONS}
    _table(lines, (), top, notes or {}, point_notes)
    for section in SECTIONS:
        if raw.get(section):
            _table(lines, (section,), raw[section], notes or {}, point_notes)
    return "\n".join(lines).lstrip("\n") + "\n"

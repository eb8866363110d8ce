"""Edit a raw spec (nested dicts, as read from TOML) by dotted paths: the CLI's
``--set train.lr=0.05`` and the code that writes follow-up specs.

Plain dict editing, below the pydantic models of ``batchlab.spec``: values are parsed as TOML
literals, paths may quote a key that holds dots (a sweep grid's keys are field paths).
"""

from __future__ import annotations

import json
import tomllib
from typing import Any

from batchlab.errors import SpecError


def parse_value(text: str) -> Any:
    """A CLI override value: TOML/JSON literal when it parses (numbers, bools, lists), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def split_path(path: str) -> list[str]:
    """The keys of a dotted path; a quoted part is one key even with dots inside, as in TOML:
    ``sweep.grid."train.batch_size"`` -> ["sweep", "grid", "train.batch_size"].

    A sweep grid's keys are field paths themselves, so ``sweep.grid.train.batch_size`` (no
    quotes) means the same grid key: grid values are never nested sections."""
    keys: list[str] = []
    rest = path.strip()
    while rest:
        if rest[0] in "\"'":
            end = rest.find(rest[0], 1)
            if end < 0:
                raise SpecError(f"override key '{path}' has an unclosed quote; write it like "
                                'sweep.grid."train.batch_size"=[64].')
            keys.append(rest[1:end])
            rest = rest[end + 1:]
        else:
            key, _, _ = rest.partition(".")
            keys.append(key.strip())
            rest = rest[len(key):]
        if rest and not rest.startswith("."):
            raise SpecError(f"override key '{path}': expected a '.' after a quoted key.")
        rest = rest[1:]
    if not keys or any(not k for k in keys):
        raise SpecError(f"override key '{path}' has an empty part; write section.field, e.g. train.lr.")
    if keys[:2] == ["sweep", "grid"] and len(keys) > 3:
        keys = [*keys[:2], ".".join(keys[2:])]
    return keys


def set_path(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Return a copy of nested dict ``raw`` with dotted ``path`` set to ``value`` (quoted parts
    of the path are single keys, see ``split_path``)."""
    out = json.loads(json.dumps(raw))
    node = out
    keys = split_path(path)
    for k in keys[:-1]:
        nxt = node.get(k)
        if nxt is None:
            nxt = node[k] = {}
        if not isinstance(nxt, dict):
            raise SpecError(f"cannot set '{path}': '{k}' is a value, not a section.")
        node = nxt
    node[keys[-1]] = value
    return out


# fields of which a spec sets at most one: an override of one replaces the other
EXCLUSIVE = {"train.steps": "train.epochs", "train.epochs": "train.steps"}


def apply_overrides(raw: dict[str, Any], overrides: list[str],
                    notes: list[str] | None = None) -> dict[str, Any]:
    """Apply ``key=value`` overrides in order. Setting one of two exclusive fields (train.steps,
    train.epochs) removes the other, so the last one given wins; ``notes`` gets a line saying so."""
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"override '{item}' must look like section.field=value, e.g. train.lr=0.05.")
        key = key.strip()
        raw = set_path(raw, key, parse_value(text.strip()))
        if (other := EXCLUSIVE.get(key)) is not None:
            section, _, field = other.partition(".")
            node = raw.get(section)
            if isinstance(node, dict) and field in node:
                node.pop(field)
                if notes is not None:
                    notes.append(f"--set {item} replaces {other} from the spec (a run has "
                                 f"either {key} or {other}; the last one given wins).")
    return raw

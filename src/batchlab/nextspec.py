"""The next experiment, as a spec file: ``batchlab next EXPERIMENT`` and ``result.next()``.

:func:`plan_next` reads an experiment's stored spec and its analysis and writes the follow-up
the diagnosis calls for, as a spec dict with one comment per change saying why (with numbers):

- the best configuration **overfits**: a regularisation sweep at the best configuration, one
  point per remedy that applies to its spec (``batchlab.analysis.remedies``: augmentation,
  weight decay, dropout, a smaller model, a ``data.limit`` learning curve), beside the
  unchanged configuration, so each remedy's effect is measured alone;
- otherwise the **LR grid** per batch size (``batchlab.analysis.nextlr``): finer around the
  best, beyond an edge, without the range that diverged or collapsed (a run at chance whose
  LR was too small to move its loss marks no such range); and when the best run
  **underfits**, a longer run (its val loss was still falling: twice the epochs, the decay
  points with them) or a larger-model variant (training accuracy below
  :data:`UNDERFIT_TRAIN_ACC` with a converged loss, unless its LR was too small to tell or it
  ended at chance).

The follow-up keeps the experiment's name: running it (``batchlab sweep FILE --store STORE``)
adds its runs to the same experiment, so the report shows both sweeps together, and a run
whose config was already trained is not trained again. Renaming ``name`` keeps them apart.
"""

from __future__ import annotations

import datetime
import json
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchlab.analysis.experiment import ExperimentAnalysis, RunAnalysis, analyze_experiment
from batchlab.analysis.findings import pct
from batchlab.analysis.nextlr import refine_lrs
from batchlab.analysis.remedies import remedies
from batchlab.errors import BatchlabError
from batchlab.events import FAILED, FINAL_STATUSES
from batchlab.fserrors import disk_error
from batchlab.overrides import set_path, split_path
from batchlab.paths import safe_name
from batchlab.results import varying_fields
from batchlab.spec import spec_from_dict
from batchlab.specwrite import compact, key, spec_toml
from batchlab.store import Store
from batchlab.store.tracked import TRACKED_SPEC_KEY

#: A best run whose final training accuracy stays below this, with a loss that stopped
#: falling, is underfitting: the model cannot fit its own training data (a larger one may).
UNDERFIT_TRAIN_ACC = 0.9
#: A best run whose val loss is "not converged" is run twice as long only when it still falls at
#: this fraction of its average rate over the run (the diagnosis' ``not_converged_rate``), or
#: when it underfits; a loss at 99% accuracy still creeping down is nearly done.
STILL_FALLING_RATE = 0.5


#: Said in the header of the follow-up of a ``bl.sweep`` over Python objects: a spec file names
#: their fingerprints ("memory:<hash>"), which only the same objects passed to bl.sweep resolve.
OBJECTS_NOTE = """Its data and model are Python objects given to bl.sweep, which `batchlab sweep` cannot
load: call bl.sweep again with the same objects and, as grid= and keywords, the values below
(one call per batch size when they are points)."""

#: Said in the header of the follow-up of a function sweep whose function lives in the script
#: that called bl.sweep: "__main__:train" names no module `batchlab sweep` can import.
SCRIPT_NOTE = """Its training function is defined in the script that called bl.sweep (`__main__`), which
`batchlab sweep` cannot import: call bl.sweep again from that script with, as grid= and keywords,
the values below, or move the function into a module and set train.function = "module:function"."""


@dataclass
class NextSpec:
    """A follow-up spec: the dict, its TOML text (comments included), one line per change
    (what and why), one per change considered and not made (``kept``, why not) and, once
    written, its ``path`` (None while nothing was written)."""

    experiment: str
    raw: dict[str, Any]
    changes: list[str]
    kept: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    point_notes: list[str | None] = field(default_factory=list)
    unfinished: str | None = None  # runs not finished yet, when any (see unfinished_note)
    text: str = ""
    path: Path | None = None


def default_path(store: Path, experiment: str) -> Path:
    """``<experiment>-next.toml`` beside the store (the name made safe, see ``safe_name``)."""
    return store.parent / f"{safe_name(experiment)}-next.toml"


def _lookup(config: Mapping[str, Any], path: str) -> Any:
    node: Any = config
    for part in split_path(path):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _failures(runs: list[RunAnalysis]) -> dict[str, str]:
    """Run id -> what it did, for the runs that failed at their LR: pruned as hopeless (never
    learned, collapsed), diverged, or diagnosed collapsed to chance."""
    out = {}
    for r in runs:
        why = next((f.message for f in r.findings if f.kind == "pruned"), "")
        kinds = {f.kind for f in r.findings}
        if "lr_too_small" in kinds:
            # at chance because its loss never moved: its LR was too small, which says nothing
            # of the LRs above it (counted as a failure, it capped the grid there and sent the
            # follow-up below the LRs that were too small)
            continue
        if r.status == "pruned" and "never learned" in why:
            out[r.run_id] = "never learned"
        elif r.status == "diverged" or "diverged" in kinds:
            out[r.run_id] = "diverged"
        elif "collapsed" in kinds or (r.status == "pruned" and "collapsed" in why):
            out[r.run_id] = "collapsed"
    return out


def _swept(raw: Mapping[str, Any]) -> set[str]:
    sweep = raw.get("sweep", {})
    keys = set(sweep.get("grid", {})) | set((sweep.get("random") or {}).get("params", {}))
    for point in sweep.get("points", []):
        keys |= set(point)
    return keys


def _varied(runs: list[RunAnalysis]) -> set[str]:
    """The config fields (dotted paths) on which the experiment's runs differ, the seed aside:
    whatever swept them (this spec, an earlier sweep of the same name, ``batchlab run`` of its
    base config, ``next``'s own points), the follow-up holds them at the best run's values."""
    return set(varying_fields([r.config for r in runs], key)) - {"train.seed"}


def _hold(plan: NextSpec, best: RunAnalysis, paths: set[str]) -> None:
    """``paths`` set to the best run's values in the follow-up's base config (a field the best
    run leaves at None is left out: it takes its default, as a stored None means)."""
    for path in sorted(paths):
        plan.raw = set_path(plan.raw, path, _lookup(best.config, path))


def _without(raw: dict[str, Any], paths: set[str]) -> dict[str, Any]:
    """A copy of ``raw`` with ``paths`` no longer swept (grid keys, random params, point keys)."""
    raw = json.loads(json.dumps(raw))  # the caller's dict stays as it was
    sweep = raw.setdefault("sweep", {})
    sweep["grid"] = {k: v for k, v in sweep.get("grid", {}).items() if k not in paths}
    if sweep.get("random"):
        params = {k: v for k, v in sweep["random"]["params"].items() if k not in paths}
        sweep["random"] = {**sweep["random"], "params": params} if params else None
    points = []
    for p in sweep.get("points", []):
        kept = {k: v for k, v in p.items() if k not in paths}
        if kept and kept not in points:
            points.append(kept)
    sweep["points"] = points
    return {**raw, "sweep": {k: v for k, v in sweep.items() if v not in (None, [], {})}}


def _regularise(plan: NextSpec, best: RunAnalysis, why: str) -> bool:
    """The regularisation sweep at the best configuration (see the module doc); False when no
    remedy applies to its spec."""
    found = remedies(best.config, best.summary.get("n_train"))
    if not found:
        return False
    fixed = {p for p in _swept(plan.raw) if p != "train.seed"}
    _hold(plan, best, fixed)
    raw = _without(plan.raw, fixed)
    points: list[dict[str, Any]] = [{}]
    plan.point_notes = ["the best configuration unchanged (already trained: not trained again)"]
    for remedy in found:
        for variant in remedy.variants:
            points.append(variant)
            plan.point_notes.append(remedy.words if variant is remedy.variants[0] else None)
    raw["sweep"]["points"] = points
    plan.raw = raw
    plan.notes["sweep.points"] = (f"{why}\nEach point tries one remedy alone beside the best "
                                  "configuration, so its effect is measured.")
    held = ", ".join(f"{p} = {_lookup(best.config, p)}" for p in sorted(fixed))
    plan.changes.append(f"a regularisation sweep at the best configuration{f' ({held})' if held else ''}"
                        f", which overfits: {len(points) - 1} variants beside it "
                        f"({', '.join(r.kind.replace('_', ' ') for r in found)})")
    return True


def _refine_lr(plan: NextSpec, analysis: ExperimentAnalysis) -> None:
    """The LR grid per batch size (see the module doc), replacing the swept LRs."""
    per_batch = refine_lrs(analysis.groups, _failures(analysis.runs))
    if not per_batch:
        return
    batch_swept = "train.batch_size" in _swept(plan.raw) | _varied(analysis.runs)
    raw = _without(plan.raw, {"train.lr", "train.batch_size"})
    old_points = raw["sweep"].pop("points", []) or [{}]
    if len(per_batch) == 1 and not batch_swept:
        raw["sweep"].setdefault("grid", {})["train.lr"] = list(per_batch[0].lrs)
        raw["sweep"]["points"] = [p for p in old_points if p]
        plan.notes["sweep.grid"] = per_batch[0].why
    else:
        points, notes = [], []
        for b in per_batch:
            for i, lr in enumerate(b.lrs):
                for old in old_points:
                    points.append({**old, "train.batch_size": b.batch_size, "train.lr": lr})
                    notes.append(b.why if i == 0 and old is old_points[0] else None)
        raw["sweep"]["points"] = points
        plan.point_notes = notes
        plan.notes["sweep.points"] = ("the LR grid per batch size, around each batch size's best LR "
                                      "(crossed with the grid below)")
    plan.raw = {**raw, "sweep": {k: v for k, v in raw["sweep"].items() if v not in (None, [], {})}}
    plan.changes += [f"LR grid: {b.why} -> {', '.join(f'{x:g}' for x in b.lrs)}" for b in per_batch]


def _longer(plan: NextSpec, best: RunAnalysis, words: str) -> None:
    """Twice the run length, with the step/multistep decay points moved along."""
    train = plan.raw.setdefault("train", {})
    unit = "steps" if "steps" in train else "epochs"
    length = int(_lookup(best.config, f"train.{unit}") or 10)
    train[unit] = 2 * length
    plan.notes[f"train.{unit}"] = f"was {length}: {words}; twice as long"
    # the decay points of a step/multistep schedule move with the length (a constant run ignores them)
    old = best.config.get("train", {}).get("schedule", {})
    schedule = train.setdefault("schedule", {})
    if old.get("milestones"):
        schedule["milestones"] = [2 * m for m in old["milestones"]]
    if isinstance(old.get("step_size"), int):
        schedule["step_size"] = 2 * old["step_size"]
    plan.changes.append(f"train.{unit} {length} -> {2 * length}: {words}")


def _larger(plan: NextSpec, best: RunAnalysis, train_acc: float) -> None:
    """A larger-model variant beside the current model, where the family has a size knob."""
    model = best.config.get("model", {})
    why = (f"the best run's training accuracy ends at {pct(train_acc)} (< {pct(UNDERFIT_TRAIN_ACC)}) "
           "with a converged loss: the model underfits; a larger variant beside it")
    if model.get("name") == "mlp" and model.get("hidden"):
        path, values = "model.hidden", [model["hidden"], [2 * w for w in model["hidden"]]]
    elif model.get("name") == "mobilenet_v2":
        path, values = "model.width", [model.get("width", 1.0), 2 * model.get("width", 1.0)]
    else:
        plan.kept.append(f"the model: {why}, but {model.get('name')} has no size knob in batchlab; "
                         "try a larger architecture by hand")
        return
    plan.raw.setdefault("sweep", {}).setdefault("grid", {})[path] = values
    plan.notes["sweep.grid"] = "\n".join(filter(None, [plan.notes.get("sweep.grid"), f"{path}: {why}"]))
    plan.changes.append(f"{path} {values[0]} and {values[1]}: {why}")


def plan_next(store: Store, experiment: str) -> NextSpec:
    """The follow-up of ``experiment`` (see the module doc); not written anywhere yet.

    Raises ``BatchlabError`` for an unknown experiment (the store's message lists the names)
    or one with no stored spec (tracked or imported runs: nothing to write a sweep from)."""
    analysis = analyze_experiment(store, experiment)  # StoreError names the experiments
    stored = next(e.spec for e in store.experiments() if e.name == experiment)
    if not stored or stored.get(TRACKED_SPEC_KEY):  # probes only, or tracked/imported runs
        raise BatchlabError(
            f"experiment '{experiment}' has no stored spec (its runs were tracked, imported or "
            "only probed), so there is no sweep to follow up; `batchlab next` works on "
            "experiments trained with `batchlab sweep` or `bl.sweep`.")
    full = spec_from_dict(stored, source=f"experiment '{experiment}'s stored spec").model_dump(mode="json")
    raw = compact(stored)
    for section, first in (("data", "name"), ("model", "name"), ("train", "optimizer")):
        # what a reader looks for first, as in the example specs
        raw[section] = {first: full[section][first], **raw.get(section, {})}
    plan = NextSpec(experiment, raw, [], unfinished=unfinished_note(analysis.runs))
    by_id = {r.run_id: r for r in analysis.runs}
    best_runs = [by_id[i] for i in analysis.best["group"]["run_ids"]] if analysis.best else []
    label = analysis.best["group"]["label"] if analysis.best else ""
    if best_runs:  # runs may differ beyond what the stored spec sweeps (see _varied)
        _hold(plan, best_runs[0], _varied(analysis.runs) - _swept(raw))
    overfit = next((f for r in best_runs for f in r.findings if f.kind == "overfitting"), None)
    # the overfitting sentence up to its remedies: each remedy is said beside its own point
    why = overfit.message.split(". remedies for this spec")[0] if overfit is not None else ""
    if overfit is not None and _regularise(plan, best_runs[0], f"the best configuration ({label}) {why}"):
        return plan
    _refine_lr(plan, analysis)
    not_converged = next((f for r in best_runs for f in r.findings if f.kind == "not_converged"), None)
    acc = analysis.best["group"]["final_train_acc_mean"] if analysis.best else None
    fits = acc is None or acc >= UNDERFIT_TRAIN_ACC  # it fits its training data
    if not_converged is not None:
        words = not_converged.message.removeprefix("not converged: ").split("; train longer")[0]
        rate = not_converged.numbers.get("rate_ratio", 0.0)
        if rate >= STILL_FALLING_RATE or not fits:
            _longer(plan, best_runs[0], f"the best configuration ({label}) had not converged: {words}")
        else:  # a last few tenths of a loss that is nearly flat: not worth a run twice as long
            n = not_converged.numbers
            plan.kept.append(f"train.epochs: the best run's val loss still fell at the end "
                             f"({n.get('val_loss_start', float('nan')):.3g} -> "
                             f"{n.get('val_loss_final', float('nan')):.3g}), but at {rate:.2g}x its "
                             f"average rate{f', with train acc {pct(acc)}' if acc is not None else ''}"
                             ": nearly converged, "
                             "not worth a run twice as long")
    elif best_runs and not fits and acc is not None:
        if any(f.kind == "lr_too_small" for r in best_runs for f in r.findings):
            plan.kept.append(f"the model: the best run's training accuracy ends at {pct(acc)}, but "
                             "its LR was too small to tell (its training loss barely fell): "
                             "the LR grid above comes first")
        elif any(f.kind == "collapsed" for r in best_runs for f in r.findings):
            # at chance at the end, its low accuracy says how training went, not the model's size
            plan.kept.append(f"the model: the best run's training accuracy ends at {pct(acc)}, but "
                             "it ended at chance (collapsed or never learned), which says nothing "
                             "of the model's size: the LR grid above comes first")
        else:
            _larger(plan, best_runs[0], acc)
    return plan


def unfinished_note(runs: list[RunAnalysis]) -> str | None:
    """A sentence saying how many of ``runs`` have not finished (interrupted, still running,
    not started), that a follow-up planned now reads only what they reached, and how to finish
    them; None when every run ended (a failed run has ended: sweeping again retrains it, but
    it holds nothing to wait for)."""
    open_ = [r.status for r in runs if r.status not in (*FINAL_STATUSES, FAILED)]
    if not open_:
        return None
    counts = ", ".join(f"{open_.count(s)} {s}" for s in dict.fromkeys(open_))
    verb = "has" if len(open_) == 1 else "have"
    return (f"{len(open_)} of {len(runs)} runs {verb} not finished ({counts}): what follows reads "
            "only what they reached so far; `batchlab sweep` on the same spec finishes them "
            "(interrupted runs resume), then run `batchlab next` again.")


def unrunnable_note(raw: Mapping[str, Any]) -> str | None:
    """Why ``batchlab sweep`` cannot run the follow-up spec ``raw`` and what to do instead
    (its data or model are Python objects, or its function lives in a script); None when it can."""
    if raw.get("data", {}).get("name") == "memory":
        return OBJECTS_NOTE
    if str(raw.get("train", {}).get("function")).startswith("__main__:"):
        return SCRIPT_NOTE
    return None


def sweep_command(spec_file: Path, store_path: Path) -> str:
    """The shell command that runs the follow-up, quoted so that it can be pasted as it is
    (a path with a space, a name with a quote)."""
    return shlex.join(["batchlab", "sweep", str(spec_file), "--store", str(store_path)])


def render(plan: NextSpec, store_path: Path, out: Path) -> str:
    """The TOML text of ``plan`` with a header saying what it is and how to run it; checked to
    read back as a valid spec (a SpecError here is a bug, never a file the user has to fix)."""
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    header = "\n".join([
        f"Follow-up of experiment '{plan.experiment}', written by `batchlab next` on {today}.",
        *(unrunnable_note(plan.raw) or f"Run it with:\n  {sweep_command(out, store_path)}"
          ).splitlines(),
        f"It keeps the name '{plan.experiment}': its runs join that experiment, so its report",
        "shows both sweeps, and runs already trained are not trained again (rename `name` to",
        "keep the two apart).",
        *([f"Note: {plan.unfinished}"] if plan.unfinished else []),
        "Changes:", *[f"- {c}" for c in plan.changes],
        *(["Not changed:", *[f"- {k}" for k in plan.kept]] if plan.kept else [])])
    text = spec_toml(plan.raw, header, plan.notes, plan.point_notes)
    spec_from_dict(tomllib.loads(text), source="the follow-up spec")
    return text


def write_next(store_path: str | Path, experiment: str, output: str | Path | None = None) -> NextSpec:
    """Plan the follow-up of ``experiment`` in the store at ``store_path`` and write it to
    ``output`` (default :func:`default_path`); ``path`` stays None and nothing is written when
    the diagnosis calls for no change (``changes`` is empty)."""
    store_path = Path(store_path)
    with Store(store_path, create=False) as st:
        plan = plan_next(st, experiment)
    if not plan.changes:
        return plan
    # "~/next.toml" is the home folder's (it made a folder named ~ here)
    out = Path(output).expanduser() if output is not None else default_path(store_path, experiment)
    plan.text = render(plan, store_path, out)
    try:
        out.write_text(plan.text)
    except OSError as err:  # the default lies beside the store, which may be on read-only media
        raise disk_error(err, out, "writing the follow-up spec",
                         fix="pass a file in it (batchlab next -o FILE; path= in Python)") from None
    plan.path = out
    return plan

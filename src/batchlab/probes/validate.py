"""Check a recommendation against what really happens: a short sweep around it.

The sweep trains the user's base configuration (the spec as written), the recommended batch
size and its neighbours (half and double, where they were measured and fit in memory), each at
the recommended LR moved by the square-root rule, for the spec's training length. The time
each takes to reach the target (95% of the best validation accuracy among them) is compared
with the predicted time, both relative to the recommended batch size. When the base
configuration ends better than the recommendation (by more than the noise floor), the verdict
says so plainly and names the better configuration: a recommendation is never silently worse
than what the user already had.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchlab.analysis import analyze_experiment
from batchlab.analysis.diagnose import Thresholds
from batchlab.execute.inline import InlineExecutor
from batchlab.execute.sweep import run_sweep
from batchlab.probes.recommend import Recommendation
from batchlab.results import run_row
from batchlab.spec import Spec, spec_from_dict
from batchlab.store import Store


@dataclass(frozen=True)
class Validation:
    experiment: str
    rows: list[dict[str, Any]]  # one per run, as in the results table
    comparison: list[dict[str, Any]]  # batch size, predicted and measured relative time
    explanation: list[str]
    base_better: bool = False  # the user's base configuration beat the recommendation


def neighbours(rec: Recommendation) -> list[int]:
    """The recommended batch size and its measured, fitting halves and doubles."""
    fitting = {p.batch_size for p in rec.predictions if p.fits}
    return sorted(b for b in {rec.batch_size // 2, rec.batch_size, rec.batch_size * 2}
                  if b in fitting)


def validation_spec(spec: Spec, rec: Recommendation) -> Spec:
    """The user's base configuration (the first point, as written) and the neighbours."""
    raw = spec.model_dump(mode="json")
    raw["name"] = f"{spec.name}-validate"
    points: list[dict[str, Any]] = [{}]
    for b in neighbours(rec):
        point: dict[str, Any] = {"train.batch_size": b,
                                 "train.lr": float(f"{rec.lr * math.sqrt(b / rec.batch_size):.3g}"),
                                 "train.scale_lr": "none"}
        if rec.warmup_steps:
            point.update({"train.schedule.warmup": rec.warmup_steps,
                          "train.schedule.warmup_unit": "step"})
        points.append(point)
    raw["sweep"] = {"points": points}
    return spec_from_dict(raw, source="the validation sweep")


def against_base(rec_cfg: tuple[int, float], rec_acc: float | None, base_cfg: tuple[int, float],
                 base_acc: float | None, noise: float = Thresholds().noise_floor,
                 times: tuple[float | None, float | None] = (None, None)) -> tuple[bool, str]:
    """(base is better, the sentence) from the best validation accuracy of the recommended
    and the base configuration, each ``(batch, lr)``; ``times``: their seconds to the target,
    when known, quoted where the recommendation is faster but ends lower (pure)."""
    def name(cfg: tuple[int, float]) -> str:
        return f"batch {cfg[0]}, lr {cfg[1]:.3g}"

    if base_cfg == rec_cfg:
        return False, f"The recommendation is your base configuration ({name(base_cfg)})."
    if base_acc is None or rec_acc is None:
        return False, "No comparison with your base configuration: a run has no validation accuracy."
    if base_acc > rec_acc + noise:
        rec_s, base_s = times
        faster = (f" The recommendation only reaches the target sooner ({rec_s:.3g} s vs "
                  f"{base_s:.3g} s)." if rec_s is not None and base_s is not None and rec_s < base_s
                  else "")
        return True, (f"Your base configuration ({name(base_cfg)}) is BETTER than the recommendation "
                      f"({name(rec_cfg)}): best validation accuracy {base_acc:.1%} vs {rec_acc:.1%}."
                      f"{faster} Keep {name(base_cfg)}.")
    if rec_acc > base_acc + noise:
        return False, (f"The recommendation ({name(rec_cfg)}) beats your base configuration "
                       f"({name(base_cfg)}): best validation accuracy {rec_acc:.1%} vs {base_acc:.1%}.")
    return False, (f"The recommendation ({name(rec_cfg)}) and your base configuration "
                   f"({name(base_cfg)}) end within {noise:.0%} of each other ({rec_acc:.1%} vs "
                   f"{base_acc:.1%}); compare their times to the target above.")


def compare(rec: Recommendation, measured: dict[int, float | None]) -> tuple[list[dict], list[str]]:
    """Predicted vs measured time to target, both relative to the recommended batch (pure)."""
    predicted = {p.batch_size: p.relative_time for p in rec.predictions}
    base_p, base_m = predicted[rec.batch_size], measured.get(rec.batch_size)
    rows, lines = [], []
    for b in sorted(measured):
        m = measured[b]
        rel_p = predicted[b] / base_p
        rel_m = m / base_m if (m is not None and base_m) else None
        rows.append({"batch_size": b, "predicted": rel_p, "measured": rel_m,
                     "measured_seconds": m})
        if m is None:
            lines.append(f"batch {b}: predicted x{rel_p:.2f}; did not reach the target.")
        elif rel_m is None:  # it reached the target, the recommended batch did not: no ratio
            lines.append(f"batch {b}: predicted x{rel_p:.2f} the recommended time; reached the "
                         f"target ({m:.3g} s), the recommended batch did not.")
        else:
            lines.append(f"batch {b}: predicted x{rel_p:.2f} the recommended time, measured "
                         f"x{rel_m:.2f} ({m:.3g} s to target).")
    reached = {b: m for b, m in measured.items() if m is not None}
    if reached:
        fastest = min(reached, key=reached.__getitem__)
        verdict = "was" if fastest == rec.batch_size else f"was not (batch {fastest} was)"
        lines.append(f"The recommended batch {rec.batch_size} {verdict} the fastest to the target.")
    else:
        lines.append("No run reached the target: train longer (train.epochs) to validate.")
    return rows, lines


def validate_recommendation(spec: Spec, rec: Recommendation, store_path: Path) -> Validation:
    """Train the validation sweep into the store and compare with the prediction and with the
    user's base configuration."""
    vspec = validation_spec(spec, rec)
    with Store(store_path) as store:
        out = run_sweep(vspec, store, InlineExecutor())
        analysis = analyze_experiment(store, vspec.name)
    by_run = {(a.config["train"]["batch_size"], a.config["train"]["lr"]): a for a in analysis.runs}
    lrs = {p["train.batch_size"]: p["train.lr"] for p in vspec.sweep.points[1:]}
    measured = {b: (a.hit.wall_time if (a := by_run.get((b, lr))) and a.hit else None)
                for b, lr in lrs.items()}
    comparison, lines = compare(rec, measured)
    base = next(a for a in analysis.runs if not {k: v for k, v in a.point.items() if k != "train.seed"})
    base_cfg = (base.config["train"]["batch_size"], base.config["train"]["lr"])
    mine = by_run.get((rec.batch_size, lrs[rec.batch_size]))
    base_s = base.hit.wall_time if base.hit else None
    better, line = against_base((rec.batch_size, lrs[rec.batch_size]),
                                mine.summary.get("best_val_acc") if mine else None,
                                base_cfg, base.summary.get("best_val_acc"),
                                times=(measured.get(rec.batch_size), base_s))
    return Validation(vspec.name, [run_row(r) for r in out.records], comparison, [*lines, line], better)

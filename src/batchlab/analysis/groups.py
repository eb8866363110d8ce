"""Runs -> configurations: aggregate seeds, pick the best, and tabulate per batch size.

A *group* is every run of one configuration: runs whose configs are equal once ``train.seed``
is removed. Groups are plain dicts (they go straight into tables, JSON and the report) with
these keys:

    key           canonical JSON of the config without the seed (the group's identity)
    label         'batch 64, lr 0.01, step(20ep, x0.1)' plus any other swept field
    point         the sweep point without the seed
    batch_size, lr, effective_lr, scale_lr, schedule
    run_ids, n_runs (planned), n (runs with validation data), n_diverged, n_pruned
    metric        what the experiment's configurations are ranked by: 'val_acc', or 'val_loss'
                  when no run records an accuracy (see ``batchlab.analysis.metric``)
    best_val_acc_mean/std, final_val_acc_mean/std, final_train_acc_mean, gap_mean/std
                  (std is None with fewer than 2 runs; gap = final train acc - final val acc)
    best_val_loss_mean/std, final_val_loss_mean/std, final_train_loss_mean
                  the same of each run's lowest and last validation loss and last train loss
                  (eval mode)
    n_hit, steps/epochs/examples/wall_time_to_target_mean (over the runs that hit; None if none)
    reached       every run with data reached the target
    eligible      has data (a value of the metric) and no run diverged or was pruned: only these are ranked or
                  recommended. A pruned run (sweep.prune) stopped early, so its numbers are not
                  those of its configuration trained to the end: a hopeless one collapsed (its
                  best accuracy is a peak it lost), one cut by successive halving ranked below
                  the configurations that went on. Its curves and metrics are still shown.

Configurations are ranked by mean best validation accuracy (the accuracy an early-stopping
checkpoint keeps, the number the results table headlines), ties broken by mean final accuracy;
in an experiment without accuracies (a regression) by mean lowest validation loss, ties broken
by mean final loss. ``n`` counts the runs with a value of that metric.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from batchlab.analysis import series as S
from batchlab.analysis.findings import Thresholds
from batchlab.analysis.metric import experiment_metric, metric_of
from batchlab.analysis.targets import TargetHit
from batchlab.errors import BatchlabError
from batchlab.results import schedule_label
from batchlab.store import RunRecord, Series
from batchlab.train.scaling import scaled_lr

DIVERGED, PRUNED, FAILED = "diverged", "pruned", "failed"
_KNOBS = ("train.batch_size", "train.lr", "train.schedule", "train.seed")


@dataclass(frozen=True)
class RunFacts:
    """The numbers of one run that the experiment analysis aggregates (NaN = unknown)."""

    run_id: str
    status: str
    group_key: str
    label: str
    train: dict[str, Any]
    point: dict[str, Any]
    has_data: bool
    best_val_acc: float
    final_val_acc: float
    final_train_acc: float
    effective_lr: float | None
    hit: TargetHit | None = None
    # lowest and last validation loss: what ranks runs that record no accuracy (a regression)
    best_val_loss: float = float("nan")
    final_val_loss: float = float("nan")
    final_train_loss: float = float("nan")  # the last train_eval_loss (eval mode, like val)


def _summary_float(summary: dict[str, Any], key: str) -> float:
    value = summary.get(key)
    return float(value) if isinstance(value, int | float) and value >= 0 else float("nan")


def _summary_loss(summary: dict[str, Any], key: str) -> float:
    value = summary.get(key)  # a loss may be negative (a likelihood): any finite number is one
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else float("nan")


def run_facts(record: RunRecord, metrics: dict[str, Series], hit: TargetHit | None = None) -> RunFacts:
    """Facts of one run: accuracies and losses from its series, falling back to the stored
    summary."""
    train = dict(record.config.get("train", {}))
    without_seed = {**record.config, "train": {k: v for k, v in train.items() if k != "seed"}}
    val_acc = S.get(metrics, "val_acc")
    has_data = bool(len(S.finite(val_acc).value))
    best, final = S.best(val_acc), S.last(val_acc)
    final_train = S.last(S.get(metrics, "train_acc"))
    summary = record.summary
    if math.isnan(best):
        best = _summary_float(summary, "best_val_acc")
    if math.isnan(final):
        final = _summary_float(summary, "final_val_acc")
    if math.isnan(final_train):
        final_train = _summary_float(summary, "final_train_acc")
    effective = summary.get("effective_lr")
    if effective is None and "lr" in train and "batch_size" in train:  # not trained yet
        try:
            effective = scaled_lr(train["lr"], train["batch_size"], train.get("scale_lr", "none"),
                                  train.get("base_batch_size", 32))
        except (ValueError, BatchlabError):  # a config no run could train with: no LR to show
            effective = None
    point = {k: v for k, v in record.point.items() if k != "train.seed"}
    val_loss = S.get(metrics, "val_loss")
    lowest, last = _lowest(val_loss), S.last(val_loss)
    if math.isnan(lowest):
        lowest, last = _summary_loss(summary, "best_val_loss"), _summary_loss(summary, "final_val_loss")
    return RunFacts(record.id, record.status, json.dumps(without_seed, sort_keys=True, default=str),
                    _label(train, point), train, point,
                    has_data or not math.isnan(best), best, final, final_train, effective, hit,
                    lowest, last, S.last(S.get(metrics, "train_eval_loss")))


def _lowest(series: Series) -> float:
    """The smallest finite value, NaN when there is none."""
    values = S.finite(series).value
    return float(values.min()) if len(values) else float("nan")


def _label(train: dict[str, Any], point: dict[str, Any]) -> str:
    parts = [f"batch {train.get('batch_size', '?')}", f"lr {train.get('lr'):g}" if "lr" in train else "lr ?",
             schedule_label(train)]
    parts += [f"{k.split('.', 1)[-1]} {v}" for k, v in point.items()
              if not any(k.startswith(knob) for knob in _KNOBS)]
    return ", ".join(parts)


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=float)
    if not v.size:
        return None, None
    return float(v.mean()), (float(v.std(ddof=1)) if v.size >= 2 else None)


def _mean(values: Sequence[float]) -> float | None:
    return _mean_std(values)[0]


def make_groups(facts: Sequence[RunFacts]) -> list[dict[str, Any]]:
    """One dict per configuration (see the module doc), in the order configs first appear,
    all ranked by one metric (``experiment_metric`` of every run)."""
    metric = experiment_metric(facts)
    members: dict[str, list[RunFacts]] = {}
    for f in facts:
        members.setdefault(f.group_key, []).append(f)
    groups = []
    for key, runs in members.items():
        first = runs[0]
        data = [r for r in runs if metric.has(r)]
        hits = [r.hit for r in data if r.hit is not None]
        best_mean, best_std = _mean_std([r.best_val_acc for r in data])
        final_mean, final_std = _mean_std([r.final_val_acc for r in data])
        gap_mean, gap_std = _mean_std([r.final_train_acc - r.final_val_acc for r in data])
        n_diverged = sum(r.status == DIVERGED for r in runs)
        n_pruned = sum(r.status == PRUNED for r in runs)
        n_failed = sum(r.status == FAILED for r in runs)  # stopped by an error, not by training
        loss_mean, loss_std = _mean_std([r.best_val_loss for r in data])
        last_mean, last_std = _mean_std([r.final_val_loss for r in data])
        scale = first.train.get("scale_lr", "none")
        group = {
            "key": key, "label": first.label, "point": first.point,
            "batch_size": first.train.get("batch_size"), "lr": first.train.get("lr"),
            "effective_lr": first.effective_lr, "scale_lr": scale,
            "schedule": schedule_label(first.train),
            "run_ids": [r.run_id for r in runs], "n_runs": len(runs), "n": len(data),
            "n_diverged": n_diverged, "n_pruned": n_pruned,
            "best_val_acc_mean": best_mean, "best_val_acc_std": best_std,
            "final_val_acc_mean": final_mean, "final_val_acc_std": final_std,
            "final_train_acc_mean": _mean([r.final_train_acc for r in data]),
            "gap_mean": gap_mean, "gap_std": gap_std,
            "metric": metric.key,
            "best_val_loss_mean": loss_mean, "best_val_loss_std": loss_std,
            "final_val_loss_mean": last_mean, "final_val_loss_std": last_std,
            "final_train_loss_mean": _mean([r.final_train_loss for r in data]),
            "n_hit": len(hits),
            "steps_to_target_mean": _mean([h.step for h in hits]),
            "epochs_to_target_mean": _mean([h.epoch for h in hits]),
            "examples_to_target_mean": _mean([h.examples for h in hits]),
            "wall_time_to_target_mean": _mean([h.wall_time for h in hits]),
            "reached": bool(data) and len(hits) == len(data),
        }
        group["eligible"] = (bool(data) and group[metric.mean] is not None
                             and n_diverged == n_pruned == n_failed == 0)
        groups.append(group)
    return groups


def _rank_key(group: dict[str, Any]) -> tuple[float, float]:
    m = metric_of(group)
    final = group[m.final_mean]
    return m.order(group[m.mean]), m.order(final) if final is not None else -math.inf


def ranked(groups: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Eligible groups, best first."""
    return sorted((g for g in groups if g["eligible"]), key=_rank_key, reverse=True)


def pick_best(groups: Sequence[dict[str, Any]], th: Thresholds) -> dict[str, Any] | None:
    """The best group, the runner-up and whether their difference is within seed noise.

    ``difference`` and ``noise`` are in the units of the groups' metric's ``behind``: accuracy
    points, or for a loss fractions of the best's loss (a loss has no fixed scale). Noise is
    the pooled seed std sqrt((s1^2 + s2^2) / 2) when both have 2+ runs with data (a difference
    under one typical seed-to-seed spread could flip with another seed), else the metric's
    floor (``th.noise_floor``, ``th.loss_noise_floor``). A lone eligible group is never "within
    noise" of anything. ``metric`` names the group key ranked by.
    """
    order = ranked(groups)
    if not order:
        return None
    best = order[0]
    m = metric_of(best)
    out: dict[str, Any] = {"group": best, "runner_up": None, "difference": None, "noise": None,
                           "noise_source": None, "within_noise": False, "metric": m.mean}
    if len(order) < 2:
        return out
    runner = order[1]
    diff = m.behind(best[m.mean], runner[m.mean])
    if best[m.std] is not None and runner[m.std] is not None:
        noise = m.spread(math.sqrt((best[m.std] ** 2 + runner[m.std] ** 2) / 2), best[m.mean])
        source = "seeds"
    else:
        noise, source = m.noise_floor(th), "threshold"
    out.update(runner_up=runner, difference=diff, noise=noise, noise_source=source,
               within_noise=bool(diff <= noise))  # <=: an exact tie is within any noise
    return out


def batch_sizes(groups: Sequence[dict[str, Any]]) -> list[Any]:
    """The distinct batch sizes of the groups, ascending (groups without one are left out)."""
    return sorted({g["batch_size"] for g in groups if g["batch_size"] is not None})


def fit_lr(group: dict[str, Any]) -> float | None:
    """The LR a group really trained with for the LR-vs-batch fit: the spec LR, or the
    effective LR when a scaling rule changed it."""
    return group["effective_lr"] if group["scale_lr"] not in (None, "none") else group["lr"]


def by_batch(groups: Sequence[dict[str, Any]]) -> tuple[list[dict], list[dict], list[dict]]:
    """Per batch size: (to_target_by_batch, gap_by_batch, best_lr_by_batch).

    to_target: batch_size, reached, n_reached (groups), has_data (any run evaluated), and the
    least mean steps/epochs/examples/wall time to target, each with the ``<clock>_label`` of the
    group achieving it, over the eligible groups at that batch size whose every run reached the
    target (each clock minimised on its own; steps, epochs and examples pick the same group at
    one batch size); None where no group did, or none has a value on that clock.
    gap and best LR: those of the best-ranked eligible group at that batch size (``metric``:
    what ranked it; the gap row also has its final train and val loss, the best-LR row its
    lowest val loss).
    """
    to_target, gaps, best_lr = [], [], []
    for b in batch_sizes(groups):
        here = [g for g in groups if g["batch_size"] == b]
        done = [g for g in here if g["eligible"] and g["reached"]]
        row: dict[str, Any] = {"batch_size": b, "reached": bool(done), "n_reached": len(done),
                               "has_data": any(g["n"] for g in here)}
        for clock in ("steps", "epochs", "examples", "wall_time"):
            col = f"{clock}_to_target_mean"
            # a clock the runs have no value on (an imported log without times) is left out
            fastest = min((g for g in done if g[col] is not None), key=lambda g, c=col: g[c],
                          default=None)
            row[clock] = fastest[col] if fastest else None
            row[f"{clock}_label"] = fastest["label"] if fastest else None
        to_target.append(row)
        top = ranked(here)
        g: dict[str, Any] = top[0] if top else dict.fromkeys(groups[0], None)  # all None: no pick
        gaps.append({"batch_size": b, "label": g["label"], "lr": g["lr"], "gap": g["gap_mean"],
                     "gap_std": g["gap_std"], "train_acc": g["final_train_acc_mean"],
                     "val_acc": g["final_val_acc_mean"], "n": g["n"] or 0,
                     "train_loss": g["final_train_loss_mean"], "val_loss": g["final_val_loss_mean"],
                     "metric": here[0]["metric"]})
        best_lr.append({"batch_size": b, "label": g["label"], "lr": g["lr"],
                        "effective_lr": g["effective_lr"], "fit_lr": fit_lr(g) if top else None,
                        "schedule": g["schedule"], "best_val_acc": g["best_val_acc_mean"],
                        "n_lrs": len({x["lr"] for x in here}),
                        "best_val_loss": g["best_val_loss_mean"], "metric": here[0]["metric"]})
    return to_target, gaps, best_lr

"""Analyse a whole experiment: diagnose every run, aggregate seeds, compare batch sizes.

:func:`analyze_runs` is the pure core over (run, series) pairs; :func:`analyze_experiment`
reads those pairs from a store (only the metrics the analysis uses) and calls it. The result is
plain data (frozen dataclasses, lists, dicts) that the report draws and ``to_dict`` turns into
JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from batchlab.analysis import series as S
from batchlab.analysis.answer import Answer, write_answer
from batchlab.analysis.capacity import add_capacity
from batchlab.analysis.conclusions import Evidence, write_conclusions
from batchlab.analysis.diagnose import (
    DIAGNOSIS_METRICS,
    EVAL_METRICS,
    Finding,
    RunContext,
    Thresholds,
    diagnose_run,
    wants_step_loss,
)
from batchlab.analysis.direction import reconsider_lr_too_small
from batchlab.analysis.groups import by_batch, fit_lr, make_groups, pick_best, run_facts
from batchlab.analysis.layers import layer_metric_names
from batchlab.analysis.metric import LOSS, metric_of
from batchlab.analysis.remedies import with_remedies
from batchlab.analysis.scaling import (
    CriticalBatchFit,
    ExponentVerdict,
    PowerLawFit,
    fit_critical_batch_or_reason,
    fit_power_law,
    judge_exponent,
    lr_grid_ratio,
)
from batchlab.analysis.targets import TargetHit, default_target, first_hit, known_clocks
from batchlab.analysis.verdict import RunVerdict, run_verdict
from batchlab.jsonsafe import json_safe
from batchlab.store import RunRecord, Series, Store

#: Every metric the analysis may read (val_acc for targets and groups is among them); per-step
#: train_loss only for the runs whose evaluations leave a question (see ``wants_step_loss``).
ANALYSIS_METRICS = DIAGNOSIS_METRICS


@dataclass(frozen=True)
class RunAnalysis:
    """One run: its identity, how it ended, its diagnoses, when it first hit the target, and
    its verdict (one label and one sentence from those diagnoses)."""

    run_id: str
    config: dict
    point: dict
    status: str
    summary: dict
    findings: list[Finding]
    hit: TargetHit | None
    verdict: RunVerdict | None = None  # its label and sentence for tables (see analysis.verdict)


@dataclass(frozen=True)
class ExperimentAnalysis:
    """Everything the report shows about one experiment. See ``batchlab.analysis.groups`` for
    the keys of ``groups`` and of the per-batch tables; ``best`` has keys group, runner_up,
    difference, noise, noise_source ('seeds' or 'threshold'), within_noise and metric."""

    experiment: str
    target: float | None
    runs: list[RunAnalysis]
    groups: list[dict]
    best: dict | None
    to_target_by_batch: list[dict]
    gap_by_batch: list[dict]
    best_lr_by_batch: list[dict]
    lr_exponent: PowerLawFit | None
    critical_batch: CriticalBatchFit | None
    conclusions: list[str]
    lr_rule: ExponentVerdict | None = None
    answer: Answer | None = None

    def to_dict(self) -> dict:
        """A JSON-safe dict: dataclasses become dicts, numpy scalars Python numbers, NaN/inf None."""
        return json_safe(self)


def _target(facts: Sequence[Any], given: float | None) -> float | None:
    """The given target, or the default over the runs' best val acc (runs that did not diverge
    when there are any: a config that diverged is no benchmark). None when nothing evaluated."""
    if given is not None:
        return float(given)
    steady = [f.best_val_acc for f in facts if f.status != "diverged"]
    value = default_target([x for x in steady if not math.isnan(x)]
                           or [f.best_val_acc for f in facts])
    return value if math.isfinite(value) else None


def sweep_context(
    runs: Sequence[tuple[RunRecord, dict[str, Series]]],
    groups: Sequence[dict[str, Any]],
    best: dict[str, Any] | None,
    noise_floor: float,
) -> RunContext:
    """What every run of an experiment is judged against (see :class:`RunContext`).

    The number of classes is the first one a run recorded (``summary["num_classes"]``; one
    experiment trains on one data set). A sweep needs 2+ configurations with data that did not
    diverge; the best is the top-ranked configuration's mean best val acc, with the noise of
    its seed std but never below ``noise_floor`` (two or three seeds can agree by luck).
    Ranked by loss (no accuracies) the best is the lowest mean final val loss of an eligible
    configuration (a run is judged where it ends; a configuration ranked first by its lowest
    loss can end above another, which the runs must then be compared with).
    With no configuration to rank but runs with losses, it is the lowest final val loss of a
    run that did not diverge.
    """
    n_classes = next((r.summary["num_classes"] for r, _ in runs
                      if isinstance(r.summary.get("num_classes"), int)), None)
    if sum(g["eligible"] for g in groups) >= 2 and best is not None:
        g = best["group"]
        if metric_of(g) is LOSS:  # where the runs end: the lowest mean final val loss
            finals = [x["final_val_loss_mean"] for x in groups
                      if x["eligible"] and x["final_val_loss_mean"] is not None]
            return RunContext(n_classes, None, min(finals) if finals else g["best_val_loss_mean"])
        std = g["best_val_acc_std"]
        return RunContext(n_classes, g["best_val_acc_mean"], None,
                          max(std, noise_floor) if std is not None else noise_floor)
    losses = [S.last(S.get(m, "val_loss")) for r, m in runs if r.status not in ("diverged", "pruned")]
    losses = [x for x in losses if math.isfinite(x)]
    distinct = {json.dumps(r.config, sort_keys=True, default=str) for r, _ in runs}
    if best is None and len(losses) >= 2 and len(distinct) >= 2:
        return RunContext(n_classes, None, min(losses), None)
    return RunContext(n_classes)


def analyze_runs(
    runs: list[tuple[RunRecord, dict[str, Series]]],
    experiment: str,
    target: float | None = None,
    th: Thresholds = Thresholds(),  # noqa: B008 - frozen, so a shared default is safe
) -> ExperimentAnalysis:
    """Analyse runs (each with its metric series) as one experiment. Pure; never raises on
    empty, pending, diverged or single runs.

    ``target`` is an absolute validation accuracy; None uses :func:`default_target` over the
    runs' best validation accuracy. The LR exponent needs 2+ batch sizes with an eligible
    config; the critical batch fit 3+ batch sizes that reach the target (its reason for not
    fitting goes into the conclusions).
    """
    facts = [run_facts(record, metrics) for record, metrics in runs]
    tgt = _target(facts, target)
    hits = [known_clocks(first_hit(S.get(metrics, "val_acc"), tgt), record.summary)
            if tgt is not None else None for record, metrics in runs]
    facts = [replace(f, hit=hit) for f, hit in zip(facts, hits, strict=True)]
    groups = make_groups(facts)
    best = pick_best(groups, th)
    context = sweep_context(runs, groups, best, th.noise_floor)
    findings = reconsider_lr_too_small(
        [(r.config, r.summary, r.status) for r, _ in runs],
        [diagnose_run(metrics, record.status, record.summary, th, context, record.error)
         for record, metrics in runs])
    # an overfitting run is told where early stopping would have stopped and what to try
    findings = [[with_remedies(f, metrics, record.config, record.summary) for f in found]
                for (record, metrics), found in zip(runs, findings, strict=True)]
    findings = add_capacity(runs, findings)  # a model too small: judged across the sweep's LRs
    analyses = [
        RunAnalysis(record.id, record.config, record.point, record.status, record.summary, found, hit,
                    run_verdict(found, record.status, record.error))
        for (record, _), found, hit in zip(runs, findings, hits, strict=True)
    ]
    to_target, gaps, best_lr = by_batch(groups)
    with_lr = [r for r in best_lr if r["fit_lr"] is not None]
    lr_fit = fit_power_law([r["batch_size"] for r in with_lr], [r["fit_lr"] for r in with_lr])
    lr_rule = None
    if lr_fit is not None:
        fitted = [r["batch_size"] for r in with_lr]
        grid = lr_grid_ratio([g["batch_size"] for g in groups], [fit_lr(g) for g in groups])
        lr_rule = judge_exponent(lr_fit, grid, max(fitted) / min(fitted))
    reached = [r for r in to_target if r["reached"]]
    critical: CriticalBatchFit | str | None = None  # no sentence without a target or batch sizes
    if tgt is not None and to_target:
        critical = fit_critical_batch_or_reason([r["batch_size"] for r in reached],
                                                [r["steps"] for r in reached])
    # the flat conclusions and the answer that leads with them read the same inputs
    evidence = Evidence(experiment, [(f, a.findings) for f, a in zip(facts, analyses, strict=True)],
                        tgt, target is not None, groups, best, (to_target, gaps, best_lr), lr_fit,
                        critical, th.noise_floor, lr_rule)
    return ExperimentAnalysis(
        experiment, tgt, analyses, groups, best, to_target, gaps, best_lr, lr_fit,
        critical if isinstance(critical, CriticalBatchFit) else None, write_conclusions(evidence),
        lr_rule, write_answer(evidence))


def analyze_experiment(
    store: Store,
    experiment: str,
    target: float | None = None,
    th: Thresholds = Thresholds(),  # noqa: B008 - frozen, so a shared default is safe
) -> ExperimentAnalysis:
    """Read an experiment's runs and the metrics the analysis needs, then :func:`analyze_runs`.

    Every run's evaluation metrics are read; its per-step ``train_loss`` only when
    :func:`~batchlab.analysis.diagnose.wants_step_loss` says it can change the diagnosis, so
    the cost follows the number of evaluations, not of steps.

    An unknown experiment raises the store's ``StoreError``.
    """
    runs = []
    for record in store.runs(experiment):
        # evaluations are a few rows per epoch; per-step losses are ~all the rows of a long run
        # (reading them costs ~20 ms per 10k steps), so they are read only where they matter
        metrics = store.metrics(record.id, EVAL_METRICS)
        # the per-layer signals: a few rows per layer and evaluation (batchlab.analysis.layers)
        if layers := layer_metric_names(store.metric_names(record.id)):
            metrics.update(store.metrics(record.id, layers))
        if wants_step_loss(metrics, record.status, th):
            metrics.update(store.metrics(record.id, ["train_loss"]))
        runs.append((record, metrics))
    return analyze_runs(runs, experiment, target, th)

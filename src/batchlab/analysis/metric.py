"""The one number an experiment's configurations are compared by: validation accuracy (higher
is better) or, for an experiment that records none (a regression, a loss without classes), the
validation loss (lower is better).

One :class:`Metric` per experiment (:func:`experiment_metric`): accuracy when any run has it,
else the loss. It names the group keys to rank by, how far one value is behind another, and the
words and number formats the sentences and tables use, so that every consumer (groups, the
answer, the conclusions, the report, ``next``) handles both kinds without a branch of its own.

Differences in accuracy are absolute (points); differences in loss are relative to the better
loss (a loss has no fixed scale: 0.01 apart means nothing on a loss of 2 and a lot on 0.02).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from batchlab.analysis.findings import Thresholds, pct, points


class _Scored(Protocol):
    """What :func:`experiment_metric` reads of a run (``groups.RunFacts`` has it)."""

    best_val_acc: float
    best_val_loss: float


@dataclass(frozen=True)
class Metric:
    """How configurations are compared (see the module doc).

    key: the run series ('val_acc', 'val_loss'); ``best_key``/``final_key`` are the run- and
    row-level names of its best and last value, and ``mean``/``std``/``final_mean`` the group
    keys (``groups.make_groups``) of their means over seeds.
    name: its words in a sentence ('val acc'); ``best_name`` those of its best value ('best val
    acc', 'lowest val loss').
    higher_is_better: the sign of the comparison; ``worse`` the word for a worse value
    ('lower' accuracy, 'higher' loss).
    preamble: what the best-configuration sentence opens with ('' for accuracy).
    """

    key: str
    name: str
    best_name: str
    higher_is_better: bool
    worse: str
    preamble: str = ""

    @property
    def best_key(self) -> str:
        return f"best_{self.key}"

    @property
    def final_key(self) -> str:
        return f"final_{self.key}"

    @property
    def mean(self) -> str:
        return f"{self.best_key}_mean"

    @property
    def std(self) -> str:
        return f"{self.best_key}_std"

    @property
    def final_mean(self) -> str:
        return f"{self.final_key}_mean"

    def order(self, value: float) -> float:
        """``value`` with the sign that makes larger better (for sorting and max)."""
        return value if self.higher_is_better else -value

    def behind(self, top: float, other: float) -> float:
        """How far ``other`` is behind ``top`` (0 or more when ``top`` is the better one):
        accuracy points, or the loss's excess as a fraction of ``top``'s."""
        if self.higher_is_better:
            return top - other
        if top == other:
            return 0.0
        return (other - top) / abs(top) if top else math.inf

    def spread(self, std: float, top: float) -> float:
        """A seed std in the units of :meth:`behind` (relative to ``top`` for a loss)."""
        if self.higher_is_better:
            return std
        return std / abs(top) if top else math.inf

    def noise_floor(self, th: Thresholds) -> float:
        """The noise of a single seed, in the units of :meth:`behind`: ``th.noise_floor``
        (points), or ``th.loss_noise_floor`` (a fraction of the loss, as the runs' own standing)."""
        return th.noise_floor if self.higher_is_better else th.loss_noise_floor

    def fmt(self, value: float) -> str:
        """A value in a sentence: '99.4%' or '0.01703'."""
        return pct(value) if self.higher_is_better else f"{value:.4g}"

    def pm(self, std: float) -> str:
        """A seed std beside a value: '0.5 points' or '0.0021'."""
        return points(std) if self.higher_is_better else f"{std:.2g}"

    def diff(self, x: float) -> str:
        """A difference from :meth:`behind` or :meth:`spread`: '0.5 points' or '12%'."""
        return points(x) if self.higher_is_better else pct(x)

    def lead(self, x: float) -> str:
        """How far one configuration leads another: '0.5 points' or '12% in val loss' (a bare
        percentage would read as one of accuracy)."""
        return self.diff(x) + ("" if self.higher_is_better else f" in {self.name}")

    def has(self, run: _Scored) -> bool:
        """Whether a run has a best value of this metric (it was evaluated)."""
        return not math.isnan(getattr(run, self.best_key))


ACCURACY = Metric("val_acc", "val acc", "best val acc", True, "lower")
LOSS = Metric("val_loss", "val loss", "lowest val loss", False, "higher",
              "no accuracy recorded (a regression or a loss without classes): configurations are "
              "compared by validation loss; ")
METRICS = {m.key: m for m in (ACCURACY, LOSS)}


def experiment_metric(runs: Iterable[_Scored]) -> Metric:
    """Accuracy when any run has a best accuracy, else the loss when any run has a finite
    lowest loss, else accuracy (nothing evaluated yet: the classification words stand)."""
    runs = list(runs)
    if any(ACCURACY.has(r) for r in runs):
        return ACCURACY
    return LOSS if any(LOSS.has(r) for r in runs) else ACCURACY


def metric_of(row: Mapping[str, Any]) -> Metric:
    """The metric a group or per-batch row was ranked by (its ``metric`` key; accuracy when it
    has none, as rows written before the key existed)."""
    return METRICS[row.get("metric") or ACCURACY.key]

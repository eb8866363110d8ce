"""Buffers a run's metrics and hands them to the sink in batches.

The per-step loss stays a device tensor until a check: calling ``.item()`` every step would
force a GPU sync each update and cost real throughput. ``check()`` turns the buffered losses
into floats in one transfer and finds the first non-finite one (divergence); ``flush()`` does
that and emits one ``MetricRows`` event, so the store sees a batch of rows, never one
transaction per step. The loop checks at every evaluation (a diverged run must stop before
evaluating blown-up weights) but flushes only once ``flush_seconds`` have passed: a commit per
epoch was ~2 % of a sweep of short runs, and the store (dashboard, progress) needs no more than
a second's freshness.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

from batchlab.events import Event, MetricRow, MetricRows

Update = tuple[int, float | None, float, torch.Tensor]  # (step, lr, wall, loss) of one update


class Recorder:
    """Collects (step, loss, lr) per update and evaluation values; flushes to ``sink``."""

    def __init__(
        self,
        run_id: str,
        sink: Callable[[Event], None],
        n_train: int,
        batch_size: int,
        steps_per_epoch: int,
        clock_offset: float = 0.0,
        flush_seconds: float = 1.0,
    ) -> None:
        self.run_id = run_id
        self.sink = sink
        self.n_train = n_train
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch
        self.flush_seconds = flush_seconds
        # wall time continues across a resume: offset by the time the run had already spent
        self._t0 = time.perf_counter() - clock_offset
        self._last_flush = time.perf_counter()
        # (step, lr, wall, loss) in one list, appended whole: a Ctrl-C lands between two
        # bytecodes, so two parallel lists could be left one entry apart (seen in CI)
        self._updates: list[Update] = []
        self._rows: list[MetricRow] = []
        self._diverged_at: int | None = None  # found by check() since the last flush
        self.step_done = 0

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0

    def position(self, step: int) -> tuple[float, int]:
        """(epoch, examples seen) after ``step`` updates: what every row records. The last batch
        of an epoch may be partial; the epoch is fractional (examples seen / n_train). The one
        place a subclass counts its own way (a tracked loop: ``batchlab.track``)."""
        epochs, within = divmod(step, self.steps_per_epoch)
        examples = epochs * self.n_train + min(within * self.batch_size, self.n_train)
        return examples / self.n_train, examples

    def examples(self, step: int) -> int:
        return self.position(step)[1]

    def epoch(self, step: int) -> float:
        return self.position(step)[0]

    def log_step(self, step: int, loss: torch.Tensor, lr: float | None) -> None:
        """Record update ``step``'s loss (a detached 0-d tensor) and the LR it used (None: not
        known, as in a tracked loop that logs no LR; no ``lr`` row is written then)."""
        self._updates.append((step, lr, self.elapsed(), loss))
        self.step_done = step

    def log_values(self, step: int, values: dict[str, float]) -> None:
        """Record evaluation values taken after ``step`` updates."""
        (ep, ex), wall = self.position(step), self.elapsed()
        self._rows.extend((name, step, float(v), ep, ex, wall) for name, v in values.items())
        self.step_done = max(self.step_done, step)

    def due(self) -> bool:
        return time.perf_counter() - self._last_flush >= self.flush_seconds

    def check(self) -> int | None:
        """Turn the buffered losses into rows (one host transfer) and return the first step
        since the last flush whose loss was not finite, if any; nothing is emitted."""
        if updates := self._updates:
            # float64 on the host: exact for any loss dtype, and a tracked loop's Python floats
            # are stored as given rather than rounded to float32
            values = torch.stack([u[3] for u in updates]).cpu().double().tolist()
            if self._diverged_at is None:
                steps = updates
                if not all(map(math.isfinite, values)):
                    bad = next(i for i, v in enumerate(values) if not math.isfinite(v))
                    self._diverged_at = steps[bad][0]
                    steps, values = steps[: bad + 1], values[: bad + 1]
                self._rows.extend(self._step_rows(steps, values))
            self._updates = []
        return self._diverged_at

    def _step_rows(self, steps: list[Update], losses: list[float]) -> list[MetricRow]:
        """The ``train_loss`` (and ``lr``) rows of those updates, in one pass (it runs over
        every step of a run)."""
        rows: list[MetricRow] = []
        for (step, lr, wall, _), loss in zip(steps, losses, strict=True):
            ep, ex = self.position(step)
            rows.append(("train_loss", step, loss, ep, ex, wall))
            if lr is not None:
                rows.append(("lr", step, lr, ep, ex, wall))
        return rows

    def flush(self) -> int | None:
        """Emit everything buffered. Returns the first step whose loss was not finite, if any.

        Rows after a non-finite loss are dropped: the run ends there as diverged.
        """
        diverged_at = self.check()
        rows = self._rows
        if diverged_at is not None:
            rows = [r for r in rows if r[1] <= diverged_at]
        if rows:
            self.sink(MetricRows(self.run_id, rows, diverged_at or self.step_done))
        self._rows, self._diverged_at = [], None
        self._last_flush = time.perf_counter()
        return diverged_at

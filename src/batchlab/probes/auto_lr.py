"""``train.lr = "auto"``: one ``lr_find`` per distinct probe key, its suggestion written into
every run that asked for it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from batchlab.data.pipeline import LoadedData
from batchlab.plan import RunSpec
from batchlab.probes.common import load_probe_data
from batchlab.probes.lr_search import DEFAULT_STRATEGY, HORIZON, LrFindResult, lr_find
from batchlab.spec import RunConfig
from batchlab.train.scaling import scaled_lr

#: a finished probe as a sweep stores it: (kind, config, result)
Probe = tuple[str, dict[str, Any], dict[str, Any]]


class AutoLrInterrupted(KeyboardInterrupt):
    """Ctrl-C while ``lr = "auto"`` was measured, after some of its probes finished:
    ``probes`` holds those, for the caller to store (a sweep run again reuses them rather than
    measure them again)."""

    def __init__(self, probes: list[Probe]) -> None:
        super().__init__("interrupted while finding LRs for lr = 'auto'")
        self.probes = list(probes)


@contextmanager
def finished_kept(probes: list[Probe]) -> Iterator[None]:
    """A Ctrl-C inside the block becomes ``AutoLrInterrupted`` with ``probes`` as filled so far
    (by ``resolve_auto_lr``'s ``on_result``), when any finished."""
    try:
        yield
    except KeyboardInterrupt as cut:
        if probes and not isinstance(cut, AutoLrInterrupted):
            raise AutoLrInterrupted(probes) from None
        raise


def interrupted_note(cut: AutoLrInterrupted) -> str:
    """What a Ctrl-C kept while ``lr = "auto"`` was measured, and how to go on."""
    n = len(cut.probes)
    return (f"the LR{'s' * (n != 1)} found for lr = 'auto' so far ({n} probe{'s' * (n != 1)}) "
            f"{'are' if n != 1 else 'is'} stored and nothing else was; run the same sweep again "
            "to find the rest and train (it reuses them).")


def auto_lr_note(config: RunConfig, result: LrFindResult) -> str:
    """One line for the sweep's start: the LR ``lr = "auto"`` found for ``config`` (the probed
    config), how sure the suggestion is, and what finding it cost beside the run itself (at
    most the run; a run too short for two miniatures gets the optimizer's conventional LR,
    untried)."""
    b = next(p for p in result.per_batch if p.batch_size == result.batch_size)
    t = config.train
    share, run = ((b.cost_steps / t.steps, f"{t.steps} step{'s' * (t.steps != 1)}") if t.steps else
                  (b.cost_epochs / (t.epochs or 1), f"{t.epochs} epoch{'s' * (t.epochs != 1)}"))
    sure = f" (confidence {b.confidence})" if b.confidence else ""
    scaled = "" if t.scale_lr == "none" else f", the effective LR under scale_lr = '{t.scale_lr}'"
    lr = "none found" if result.suggested_lr is None else f"{result.suggested_lr:.3g}"
    how = (f"finding it took {b.cost_epochs:.2g} epochs of training, {share:.2g}x the run's {run}"
           if b.cost_steps else f"untried: a run of {run} is too short to compare LRs within it")
    return (f"lr = 'auto' at batch {b.batch_size}: {lr}{scaled}{sure}; {how} "
            "(`batchlab lr-find` shows how it was found).")


def auto_lr_key(config: RunConfig) -> str:
    """What the LR probe of ``config`` depends on: data, model, the optimizer settings, the
    batch size and the run length (trials never outlast the run). Runs that differ only in
    seed, schedule, ... share one probe."""
    t = config.train
    fields = {"optimizer", "momentum", "nesterov", "weight_decay", "batch_size", "device",
              "epochs", "steps"}
    return json.dumps([config.data.model_dump(mode="json"), config.model.model_dump(mode="json"),
                       t.model_dump(mode="json", include=fields)], sort_keys=True)


def resolve_auto_lr(
    runs: list[RunSpec], *, repeats: int | None = None, strategy: str = DEFAULT_STRATEGY,
    on_result: Callable[[RunConfig, LrFindResult], None] | None = None,
    known: dict[str, float] | None = None, measure: bool = True, **range_kwargs: Any,
) -> list[RunSpec]:
    """Replace ``train.lr = "auto"`` by the LR range test's suggestion; other runs pass through.

    One ``lr_find`` per distinct ``auto_lr_key`` (data, model, optimizer settings, batch
    size), with seeds 0..repeats-1 whatever the runs' seeds, so every repeat of a sweep point
    gets the same LR. The suggestion is the *effective* LR at the run's batch size: with a
    scaling rule, ``train.lr`` is set to suggestion / scale factor so the loop's scaled LR
    equals it. It is rounded to 3 significant digits, then the run id is the hash of the
    resolved config: ids are stable across re-runs as long as the suggestion is (it is
    deterministic for fixed seeds on the same machine and thread count; the rounding absorbs
    last-bit float differences). ``on_result(config, result)`` sees every lr_find result
    (e.g. to ``Store.add_probe`` it). ``known``: suggestions already measured, by
    ``auto_lr_key`` (a re-run of a sweep reuses them, so its run ids cannot drift).
    ``range_kwargs`` go to ``lr_find`` (``inputs=``: the Python API's objects). A strategy
    that finds no LR (a curve rule on a shallow curve) falls back to ``horizon``, which
    always answers: ``lr = "auto"`` never aborts a sweep for want of a suggestion.
    ``measure=False`` trains nothing: a run whose LR ``known`` lacks keeps ``lr = "auto"``
    (``batchlab sweep --dry-run``, which shows what a sweep would do without doing it).
    """
    found: dict[str, float] = dict(known or {})
    datasets: dict[str, LoadedData] = {}
    out: list[RunSpec] = []
    seen: set[str] = set()
    for run in runs:
        t = run.config.train
        if t.lr != "auto" or (not measure and auto_lr_key(run.config) not in found):
            resolved = run
        else:
            key = auto_lr_key(run.config)
            if key not in found:
                probe_cfg = run.config.model_copy(update={"train": t.model_copy(update={"seed": 0})})
                data_key = probe_cfg.data.model_dump_json()
                if data_key not in datasets:
                    datasets[data_key] = load_probe_data(probe_cfg, range_kwargs.get("inputs"))
                result = lr_find(probe_cfg, repeats=repeats, strategy=strategy,
                                 data=datasets[data_key], **range_kwargs)
                if result.suggested_lr is None:  # a curve rule found nothing: horizon always answers
                    result = lr_find(probe_cfg, strategy=HORIZON, data=datasets[data_key],
                                     **range_kwargs)
                if on_result is not None:
                    on_result(probe_cfg, result)
                found[key] = result.suggested_lr
            lr = float(f"{found[key] / scaled_lr(1.0, t.batch_size, t.scale_lr, t.base_batch_size):.3g}")
            config = RunConfig.model_validate(
                {**run.config.model_dump(), "train": {**t.model_dump(), "lr": lr}})
            resolved = RunSpec(config.run_id(), config, run.point)
        if resolved.run_id not in seen:  # two points can resolve to the same run: train it once
            seen.add(resolved.run_id)
            out.append(resolved)
    return out

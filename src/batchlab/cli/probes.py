"""Commands that measure instead of sweep: lr-find, max-batch, throughput, noise-scale,
recommend. Each runs on a fresh copy of the spec's model, stores its result in the store (so the
report shows it) and draws its figure beside the store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from batchlab.cli.common import (
    DEFAULT_STORE,
    NewStoreOpt,
    SetOpt,
    app,
    console,
    fmt,
    import_torch,
    load_cli_spec,
    on_ctrl_c,
)
from batchlab.errors import BatchlabError
from batchlab.paths import safe_name
from batchlab.store import Store

if TYPE_CHECKING:  # pydantic is imported by the commands that run, not by --help (cli.common)
    from batchlab.probes.lr_search import BatchFind
    from batchlab.spec import RunConfig, Spec

SpecArg = Annotated[Path, typer.Argument(help="TOML spec (its base config is probed).")]


def probe_config(spec_file: Path, sets: list[str] | None, store: Path) -> tuple[Spec, RunConfig]:
    """The spec's run, read and checked before torch is imported (under a spinner saying so):
    a bad spec or --set is refused in well under a second, as by ``sweep``, not after the
    seconds of importing torch. So is a ``store`` file that is no batchlab store, or one this
    process cannot write: the probe stores its result only once it has ended, after minutes
    of measuring (a missing store is made then, not now)."""
    from batchlab.spec import RunConfig
    from batchlab.store.files import store_exists

    spec = load_cli_spec(spec_file, sets)
    config = RunConfig(data=spec.data, model=spec.model, train=spec.train)
    if store_exists(store):
        with Store(store):
            pass
    import_torch()
    return spec, config


def int_list(text: str | None, option: str) -> list[int] | None:
    """The comma-separated batch sizes of ``option``; None when the option was not given (the
    probe's default sizes). Given but empty ("", " , ") is an error, not the default: an
    unset shell variable must not measure something else without a word."""
    if text is None:
        return None
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise BatchlabError(f"{option} {text!r} must be whole numbers separated by commas, "
                            "e.g. 32,128,512.") from None
    if not values:
        raise BatchlabError(f"{option} is empty: give batch sizes such as 32,128,512, or leave "
                            "the option out for the probe's default sizes.")
    if min(values) < 1:
        raise BatchlabError(f"{option} needs positive batch sizes, e.g. 32,128,512.")
    return values


def measure(what: str, run: Callable[[], Any], config: RunConfig) -> Any:
    """Run a probe under a spinner, with the spec's ``train.threads`` when it sets them.
    Ctrl-C: one line saying nothing of the probe was stored, exit 130."""
    import torch

    before = torch.get_num_threads()
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    try:
        # a probe stores its result only once it has ended: a cut-off one leaves nothing behind
        with on_ctrl_c("the probe was cut short and nothing of it was stored; run the same "
                       "command again to measure from the start."), console.status(f"{what} ..."):
            return run()
    finally:
        torch.set_num_threads(before)


def keep(store: Path, spec: Spec, kind: str, config: RunConfig, result: dict[str, Any]) -> None:
    """Store the probe under the spec's experiment name and draw its figure beside the store:
    the same figure, from the same stored result, as the report's Probes section."""
    from batchlab.report.probefigs import write_probe_figure

    with Store(store) as st:
        probe_id = st.add_probe(spec.name, kind, config.model_dump(mode="json"), result)
        record = next(p for p in st.probes(spec.name, kind) if p.id == probe_id)
    msg = escape(f"stored as a '{kind}' probe of experiment '{spec.name}' in {store}")
    # named as the report and the exports are: 'a/b' or '../x' must not make or leave folders
    path = write_probe_figure(record, store.parent / f"{safe_name(spec.name)}-{kind}.png")
    if path is not None:
        msg += escape(f"; figure: {path}")
    console.print(msg)


@app.command("lr-find")
def lr_find_cmd(
    spec_file: SpecArg,
    batch_sizes: Annotated[str | None, typer.Option(
        metavar="B1,B2,...", help="e.g. 32,128,512 (default: the spec's).")] = None,
    repeats: Annotated[int | None, typer.Option(
        min=0, help="Range tests (seeds) per batch size (default: none for horizon, which only "
        "shows them; 1 for trial, 3 for curve rules).")] = None,
    strategy: Annotated[str, typer.Option(
        metavar="NAME",
        help="horizon (default: miniatures of your run compared by successive halving), trial, "
        "valley, steepest or minimum_div_10.")] = "horizon",
    start_lr: Annotated[float, typer.Option(min=0, help="Range test: first LR.")] = 1e-7,
    end_lr: Annotated[float, typer.Option(min=0, help="Range test: last LR.")] = 10.0,
    range_steps: Annotated[int | None, typer.Option(
        min=10, help="Range test: steps (default: 100; horizon: a twentieth of the run, 20-100).")] = None,
    budget: Annotated[float | None, typer.Option(
        metavar="SHARE", help="horizon: the probe's share of the run's steps, above 0 and at most 1 "
        "(default 0.5; 0.9 buys longer miniatures and a surer answer).")] = None,
    store: NewStoreOpt = DEFAULT_STORE,
    set_: SetOpt = None,
) -> None:
    """LR suggestion for the spec's run, and the exponent alpha of lr* ~ B^alpha across batch sizes.

    By default, miniatures of the run (its schedule squeezed into a twentieth, then a tenth of
    its steps) at LRs a decade apart are compared by successive halving; the other strategies
    read a range test (exponential LR ramp, smoothed loss)."""
    sizes = int_list(batch_sizes, "--batch-sizes")
    spec, config = probe_config(spec_file, set_, store)
    from batchlab.analysis.scaling import alpha_line
    from batchlab.probes.lr_search import lr_find

    what = "miniatures of the run" if strategy == "horizon" else "LR range test"
    result = measure(what, lambda: lr_find(
        config, batch_sizes=sizes, repeats=repeats, strategy=strategy, start_lr=start_lr,
        end_lr=end_lr, steps=range_steps, budget=budget), config)
    confirmed = result.strategy in ("trial", "horizon")
    table = Table(title=f"LR suggestion ({result.strategy})")
    spread_label = "LRs that trained" if confirmed else "min-max over seeds"
    columns = ["batch", "suggested lr", spread_label]
    columns += ["confidence"] if result.strategy == "horizon" else ["by strategy"]
    for col in (*columns, "cost (epochs)", "note"):
        table.add_column(col)
    for b in result.per_batch:
        untried = b.lr is None or (confirmed and not b.trials)  # e.g. a run too short to compare
        spread = "-" if untried else f"{fmt(b.lr_min, 3)}-{fmt(b.lr_max, 3)}"
        strategies = ", ".join(f"{k} {fmt(v, 3)}" for k, v in b.by_strategy.items())
        # the curve rules' disagreement is what the trials settle, so it is news only without them
        note = b.reason if b.lr is None else (
            "strategies disagree >3x" if b.disagreement and not confirmed else "")
        middle = b.confidence or "-" if result.strategy == "horizon" else strategies
        table.add_row(str(b.batch_size), fmt(b.lr, 3), spread, middle, f"{b.cost_epochs:.1f}", note)
    console.print(table)
    for b in result.per_batch:
        if b.lr is not None:
            console.print(f"batch {b.batch_size}: {b.reason}")
        for line in b.tried:
            console.print(f"  also: {line}")
    if result.strategy == "horizon":  # a range test asked for (--repeats) is shown, not used
        for b in result.per_batch:
            if (line := range_test_line(b)) is not None:
                console.print(line)
    console.print(f"cost: {result.cost_epochs:.1f} epochs of training in all")
    if result.alpha is not None:
        console.print(alpha_line(result.alpha))
    elif len(result.per_batch) > 1:
        console.print(f"no exponent: {result.alpha_reason}")
    keep(store, spec, "lr_range", config, result.to_dict())


def range_test_line(b: BatchFind) -> str | None:
    """The range tests ``horizon`` ran beside its answer at one batch size (``--repeats``),
    with what they cost and what each curve rule reads off them; None when it ran none. They
    are paid from the probe's budget and drawn in its figure, so the text names them too."""
    if not b.tests:
        return None
    steps = sum(len(t.lrs) for t in b.tests)
    # the batch's steps and epochs are in proportion: its epochs per step convert the tests'
    epochs = steps * b.cost_epochs / b.cost_steps if b.cost_steps else 0.0
    rules = ", ".join(f"{k} {fmt(v, 3)}" for k, v in b.by_strategy.items() if k != "horizon")
    n = len(b.tests)
    return (f"batch {b.batch_size}: range test ({n} seed{'s' if n > 1 else ''}, {steps} steps, "
            f"{epochs:.2f} of this batch's {b.cost_epochs:.2f} epochs), shown beside the answer, "
            f"not used for it: {rules}")


@app.command("max-batch")
def max_batch_cmd(
    spec_file: SpecArg,
    memory_limit: Annotated[str | None, typer.Option(
        metavar="SIZE", help="e.g. 4GiB (default: the device).")] = None,
    margin: Annotated[float, typer.Option(min=0, max=0.9, help="Fraction kept free.")] = 0.1,
    max_: Annotated[int | None, typer.Option("--max", min=1, help="Largest batch to try.")] = None,
    start: Annotated[int, typer.Option(
        min=1, help="First batch to try (2 at least on a model with BatchNorm layers).")] = 1,
    want: Annotated[int | None, typer.Option(
        min=1, help="The batch you want to train at (default: the spec's train.batch_size).")] = None,
    store: NewStoreOpt = DEFAULT_STORE,
    set_: SetOpt = None,
) -> None:
    """The largest batch that fits: doubling then binary search, one full training step per
    trial, with a safety margin; the peak memory of every size tried; and how to reach the
    batch you want by gradient accumulation when it does not fit in one step."""
    spec, config = probe_config(spec_file, set_, store)
    from batchlab.probes.batch_advice import fit_line
    from batchlab.probes.max_batch import max_batch
    from batchlab.probes.memory import format_size, parse_size

    limit = parse_size(memory_limit) if memory_limit else None
    r = measure("largest batch", lambda: max_batch(config, memory_limit=limit, margin=margin,
                                                   max_batch=max_, start=start, want=want),
                config)
    per = f", per device of {r.devices}" if r.devices > 1 else ""
    table = Table(title=f"batch sizes tried ({r.device}, {r.method}{per})")
    for col in ("batch", "peak memory", "fits", "why not"):
        table.add_column(col)
    for t in r.trials:
        table.add_row(str(t.batch_size), format_size(t.peak_bytes), "yes" if t.fits else "no",
                      t.reason or "")
    console.print(table)
    console.print(fit_line(r, margin))  # per device and global over train.devices processes
    console.print(r.advice)
    for note in r.notes:
        console.print(f"  note: {note}")
    keep(store, spec, "max_batch", config, r.to_dict())


@app.command()
def throughput(
    spec_file: SpecArg,
    batch_sizes: Annotated[str | None, typer.Option(
        metavar="B1,B2,...", help="e.g. 8,16,...,2048 (default: powers of 2).")] = None,
    workers: Annotated[int, typer.Option(
        "--workers", "-w", min=1,
        help="The --workers of the sweep you plan: measure with the threads its runs get.")] = 1,
    options: Annotated[bool, typer.Option(
        "--options", help="Also time bf16 / channels_last at train.batch_size (3-20 s more: "
        "repeated until each ratio is known within 5%).")] = False,
    store: NewStoreOpt = DEFAULT_STORE,
    set_: SetOpt = None,
) -> None:
    """Training samples/s and peak memory per batch size (warm-up excluded, median of timed
    windows), and the knee beyond which doubling the batch gains less than 10%. Windows that
    disagree are measured again; a curve that stays noisy is reported unreliable, with no knee.
    With --options, what train.precision / train.channels_last would buy at the spec's batch."""
    sizes = int_list(batch_sizes, "--batch-sizes")
    spec, config = probe_config(spec_file, set_, store)
    from batchlab.probes.memory import format_size
    from batchlab.probes.throughput import throughput_curve

    r = measure("throughput curve",
                lambda: throughput_curve(config, batch_sizes=sizes, workers=workers), config)
    table = Table(title=f"throughput ({r.device}, {r.threads} thread(s): {r.threads_reason})")
    for col in ("batch", "samples/s", "window spread", "peak memory"):
        table.add_column(col, justify="right")
    for b, v, spread, m in zip(r.batch_sizes, r.samples_per_s, r.window_spread, r.peak_bytes,
                               strict=True):
        table.add_row(str(b), f"{v:,.0f}", f"{spread:.0%}", format_size(m))
    console.print(table)
    if not r.reliable:
        console.print("[bold yellow]unreliable:[/] the timings were too noisy to trust (see below)")
    knee = f"knee at batch {r.knee}" if r.knee is not None else "no knee"
    console.print(f"{knee} ({r.knee_reason}); measured in {r.wall_time:.1f} s")
    for note in r.notes:
        console.print(f"  note: {note}")
    result = r.to_dict()
    if options:
        result["options"] = print_options(config, config.train.batch_size)
    keep(store, spec, "throughput", config, result)


def print_options(config: RunConfig, batch_size: int) -> dict[str, Any]:
    """Time the precision / memory-format variants at ``batch_size``, print one line each
    ("bf16 autocast: 1.84x samples/s ..."), and return the stored form."""
    from batchlab.probes.options import option_speedups

    o = measure("precision and memory format", lambda: option_speedups(config, batch_size=batch_size),
                config)
    console.print(f"what each option would buy (vs fp32, {o.device}, {o.rounds} rounds timed in "
                  f"{o.settings['clock']}, measured in {o.wall_time:.1f} s):")
    for line in o.lines():
        console.print(f"  {line}")
    return o.to_dict()


@app.command("noise-scale")
def noise_scale_cmd(
    spec_file: SpecArg,
    steps: Annotated[int, typer.Option(min=10, help="Training steps to measure over.")] = 200,
    store: NewStoreOpt = DEFAULT_STORE,
    set_: SetOpt = None,
) -> None:
    """Gradient noise scale B_simple = tr(Sigma)/|G|^2 (McCandlish et al. 2018) from micro-batch
    and batch gradients, with a bootstrap confidence interval and its trace over training."""
    spec, config = probe_config(spec_file, set_, store)
    from batchlab.plan import RunSpec
    from batchlab.probes.auto_lr import resolve_auto_lr
    from batchlab.probes.noise_scale import measure_noise_scale

    if config.train.lr == "auto":  # under a spinner too: this range test takes seconds
        config = measure("finding an LR for lr = 'auto'",
                         lambda: resolve_auto_lr([RunSpec(config.run_id(), config)])[0].config, config)
    r = measure("gradient noise scale", lambda: measure_noise_scale(config, steps=steps), config)
    console.print(f"B_simple = {fmt(r.b_simple, 4)} (95% CI {fmt(r.ci_low, 4)}-{fmt(r.ci_high, 4)}; "
                  f"EMA at the end {fmt(r.b_simple_ema, 4)}) at batch {r.batch_size}, "
                  f"{r.micro_batches} micro-batches, {steps} steps")
    if r.reason:
        console.print(f"  note: {r.reason}")
    keep(store, spec, "noise_scale", config, r.to_dict())


@app.command()
def recommend(
    spec_file: SpecArg,
    batch_sizes: Annotated[str | None, typer.Option(
        metavar="B1,B2,...", help="Candidates (default: powers of 2).")] = None,
    memory_limit: Annotated[str | None, typer.Option(
        metavar="SIZE", help="e.g. 4GiB (default: the device).")] = None,
    noise_steps: Annotated[int, typer.Option(min=10, help="Steps of the noise-scale probe.")] = 200,
    validate: Annotated[bool, typer.Option(help="Train around the choice and compare.")] = False,
    options: Annotated[bool, typer.Option(
        "--options", help="Also time bf16 / channels_last at the recommended batch (3-20 s: "
        "repeated until each ratio is known within 5%).")] = False,
    store: NewStoreOpt = DEFAULT_STORE,
    set_: SetOpt = None,
) -> None:
    """Batch size, LR and warm-up from the probes: throughput, memory, noise scale and the LR
    suggestion (miniatures of the run), with the numbers behind each choice and a figure of
    predicted time vs batch."""
    sizes = int_list(batch_sizes, "--batch-sizes")
    spec, config = probe_config(spec_file, set_, store)
    from batchlab.probes.memory import parse_size
    from batchlab.probes.recommend import recommend as recommend_fn

    limit = parse_size(memory_limit) if memory_limit else None
    rec = measure("probing (throughput, memory, noise scale, LR suggestion)",
                  lambda: recommend_fn(config, batch_sizes=sizes, memory_limit=limit,
                                       noise_steps=noise_steps), config)
    over = (f" (global: {rec.batch_size // rec.devices:,} per device over {rec.devices} "
            "processes)" if rec.devices > 1 else "")
    console.print(f"[bold]recommended: batch {rec.batch_size}{over}, lr {rec.lr:.3g}"
                  + (f", warm-up {rec.warmup_steps} steps" if rec.warmup_steps else "") + "[/]")
    for line in rec.explanation:
        console.print(f"  - {line}")
    result = rec.to_dict()
    if options:
        result["options"] = print_options(config, rec.batch_size)
    keep(store, spec, "recommend", config, result)
    if validate:
        from batchlab.cli.runs import results_table
        from batchlab.probes.validate import validate_recommendation
        from batchlab.progress import SweepProgress

        # the recommendation is stored above; the validation runs are stored as they end and a
        # cut-off one resumes from its checkpoint when the command is run again
        with on_ctrl_c("the recommendation is stored, and every validation run that finished; "
                       "run the same command again to probe anew and train the rest."), \
                SweepProgress(console) as progress:
            v = validate_recommendation(spec, rec, store, on_event=progress.on_event,
                                        on_plan=progress.on_plan, on_notice=progress.notice)
        console.print(results_table(v.rows, f"validation sweep '{v.experiment}'"))
        for line in v.explanation[:-1]:
            console.print(f"  - {line}")
        # the comparison with the user's own configuration is the line that must not be missed
        console.print(f"[bold red]{v.explanation[-1]}[/]" if v.base_better else v.explanation[-1])

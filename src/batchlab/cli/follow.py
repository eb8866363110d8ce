"""The command that turns a diagnosis into the next experiment: next."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from batchlab.cli.common import DEFAULT_STORE, StoreOpt, app, console, output_file


@app.command("next")
def next_experiment(
    experiment: Annotated[str, typer.Argument(help="Experiment name.")],
    output: Annotated[str | None, typer.Option(
        "--output", "-o", metavar="PATH",
        help="Spec file to write (default: EXPERIMENT-next.toml beside the store).")] = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Write the follow-up sweep the diagnosis calls for, as a spec with a comment per change:
    a finer LR grid around the best (beyond an edge, without the LRs that diverged), a
    regularisation sweep when the best run overfits, a longer run or a larger model when it
    underfits. `batchlab sweep FILE` adds its runs to the same experiment and report."""
    from batchlab.nextspec import default_path, sweep_command, unrunnable_note, write_next

    plan = write_next(store, experiment, output_file(output, default_path(store, experiment)))
    if plan.unfinished:
        console.print(f"note: {escape(plan.unfinished)}", soft_wrap=True)
    if plan.path is None:
        console.print(f"nothing to follow up in '{escape(experiment)}': no LR grid to refine (already "
                      "fine around the best, or nothing finished yet) and no best run that overfits or "
                      "underfits; no file written.")
        for kept in plan.kept:
            console.print(f"  - not changed: {escape(kept)}", soft_wrap=True)
        return
    console.print(f"wrote {escape(str(plan.path))}: the follow-up of '{escape(experiment)}'")
    for change in plan.changes:
        console.print(f"  - {escape(change)}", soft_wrap=True)
    for kept in plan.kept:
        console.print(f"  - not changed: {escape(kept)}", soft_wrap=True)
    note = unrunnable_note(plan.raw)
    console.print(escape(" ".join(note.split())) if note else
                  f"run it: {escape(sweep_command(plan.path, store))}",
                  soft_wrap=True)

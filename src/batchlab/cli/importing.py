"""``batchlab import``: runs other tools logged (TensorBoard folders, Keras CSVLogger files)
become runs of an experiment, with the report, the diagnosis and the exports of any run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from batchlab.cli.common import (
    DEFAULT_STORE,
    NewStoreOpt,
    app,
    console,
    fmt,
    import_torch,
    on_ctrl_c,
    readable_app,
)
from batchlab.errors import SpecError
from batchlab.integrations.logpaths import check_csvlog_path, check_logdir
from batchlab.store import Store

# readable like the program's own commands: "--map TAG=NAME", not "<list[str]>"
import_app = readable_app(help="Import runs logged by other tools (TensorBoard event folders, "
                          "Keras or Lightning CSVLogger files) into the store.")
app.add_typer(import_app, name="import")

MapOpt = Annotated[list[str] | None, typer.Option(
    "--map", metavar="TAG=NAME",
    help="Tag or column to metric: 'Loss/train=train_loss' (empty name drops the tag).")]

# not the spec's --set: an imported run has no spec, and its config keys are plain
# (batch_size, lr, n_train), as batchlab.integrations.importing reads them
ImportSetOpt = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY=VALUE",
    help="A config value of every imported run, e.g. batch_size=16 or n_train=60000; it wins over "
         "the file or folder name and the hparams (repeatable).")]


# each run is stored whole or marked interrupted, and an import of the same file or folder
# replaces an earlier one: running the command again completes a cut-off import
IMPORT_CUT = ("the runs imported so far are stored; run the same command again to import "
              "every file, replacing those.")


def _print_runs(store: Store, run_ids: list[str], experiment: str) -> None:
    table = Table(title=escape(f"imported into experiment '{experiment}' ({store.path})"))
    for header in ("run", "name", "batch", "lr", "steps", "metrics", "status"):
        table.add_column(header)
    for rid in run_ids:
        rec = store.run(rid)
        train = rec.config.get("train", {})
        table.add_row(rid, escape(str(rec.environment.get("name", "")).split(":", 1)[-1]),
                      fmt(train.get("batch_size")), fmt(train.get("lr")), fmt(rec.steps),
                      escape(", ".join(store.metric_names(rid))), rec.status)
    console.print(table)


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        console.print(f"note: {note}", markup=False, highlight=False)


@import_app.command("tensorboard")
def tensorboard_cmd(
    logdir: Annotated[Path, typer.Argument(help="TensorBoard log folder (one run per run folder).")],
    experiment: Annotated[str | None, typer.Option("--experiment", "-e",
                                                   help="Experiment name (default: the folder's).")] = None,
    mapping: MapOpt = None,
    overrides: ImportSetOpt = None,
    step_unit: Annotated[str, typer.Option(
        "--step-unit", metavar="auto|step|epoch",
        help="What a logged step counts: step, epoch, or auto (epoch for Keras's epoch_* tags).")] = "auto",
    store: NewStoreOpt = DEFAULT_STORE,
) -> None:
    """Import a TensorBoard log folder: scalars, hparams, batch size and LR from folder names."""
    if step_unit not in ("auto", "step", "epoch"):
        raise SpecError(f"--step-unit {step_unit!r} is not known; use step, epoch or auto.")
    check_logdir(logdir)  # a wrong path is refused before the seconds of importing torch
    import_torch()  # batchlab.track stores the runs: the first seconds say what they are spent on
    from batchlab.integrations.importing import parse_pairs, settings
    from batchlab.integrations.tensorboard import import_tensorboard

    maps, sets = parse_pairs(mapping or [], "--map"), settings(overrides or [])
    name = experiment or logdir.resolve().name
    notes: list[str] = []
    # the path, not an open Store: a refused import must not create the file
    with on_ctrl_c(IMPORT_CUT), console.status(escape(f"reading and storing the runs in {logdir} ...")):
        runs = import_tensorboard(store, logdir, name, mapping=maps, overrides=sets,
                                  unit=step_unit, notes=notes)
    with Store(store) as st:
        _print_runs(st, [r.id for r in runs], name)
    _print_notes(notes)


@import_app.command("csv")
def csv_cmd(
    files: Annotated[list[Path], typer.Argument(
        help="Keras CSVLogger files or Lightning metrics.csv (one run each).")],
    experiment: Annotated[str, typer.Option("--experiment", "-e", help="Experiment name.")] = "imported",
    mapping: MapOpt = None,
    overrides: ImportSetOpt = None,
    store: NewStoreOpt = DEFAULT_STORE,
) -> None:
    """Import Keras or Lightning CSVLogger files (epoch/step, loss, accuracy, val_loss, ..., lr)."""
    for path in files:  # a wrong path is refused before the seconds of importing torch
        check_csvlog_path(path)
    import_torch()  # batchlab.track stores the runs: the first seconds say what they are spent on
    from batchlab.integrations.csvlog import import_csvlogs
    from batchlab.integrations.importing import parse_pairs, settings

    maps, sets = parse_pairs(mapping or [], "--map"), settings(overrides or [])
    notes: list[str] = []
    # the path, not an open Store: a refused import must not create the file
    with on_ctrl_c(IMPORT_CUT), console.status(f"reading and storing {len(files)} file(s) ..."):
        runs = import_csvlogs(store, files, experiment, mapping=maps, overrides=sets, notes=notes)
    with Store(store) as st:
        _print_runs(st, [r.id for r in runs], experiment)
    _print_notes(notes)

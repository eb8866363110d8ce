"""Ctrl-C in the commands that take seconds: exit 130 with one line saying what was kept and
how to go on (typer alone ends silently with 130), the store intact; and the seconds before
the first progress line say what they are spent on.

Ctrl-C is simulated in-process by a KeyboardInterrupt from the step it would cut short: the
same exception Python raises on SIGINT, at a known point (the signal itself is covered by
tests/test_cli_faults.py and tests/execute/test_executors.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cli_helpers import as_module, env
from tiny_spec import TINY
from typer.testing import CliRunner

from batchlab.cli import app
from batchlab.store import Store


def ctrl_c(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def interrupted(*args: object, says: str) -> None:
    """``batchlab ARGS`` cut short by Ctrl-C: exit 130 and the line ``interrupted: SAYS``."""
    res = invoke(*args)
    assert res.exit_code == 130, res.output
    assert f"interrupted: {says}" in res.stderr


def statuses(db, experiment: str) -> list[str]:
    with Store(db, create=False) as st:
        return [r.status for r in st.runs(experiment)]


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "cc.toml"
    path.write_text('name = "cc"\n' + TINY)
    return path


def test_ctrl_c_in_a_probe_says_nothing_of_it_was_stored(tmp_path, spec, monkeypatch):
    import batchlab.probes.noise_scale as noise_scale

    db = tmp_path / "s.db"
    Store(db).close()  # an existing store: the probe must add nothing to it
    monkeypatch.setattr(noise_scale, "measure_noise_scale", ctrl_c)
    interrupted("noise-scale", spec, "--store", db,
                says="the probe was cut short and nothing of it was stored; run the same command "
                "again to measure from the start.")
    with Store(db, create=False) as st:
        assert st.probes("cc") == []


def test_ctrl_c_in_a_recommendation_s_validation_keeps_the_recommendation(tmp_path, spec,
                                                                         monkeypatch):
    import batchlab.probes.validate as validate

    db = tmp_path / "s.db"
    monkeypatch.setattr(validate, "validate_recommendation", ctrl_c)  # while training its runs
    interrupted("recommend", spec, "--validate", "--store", db,
                says="the recommendation is stored, and every validation run that finished; run "
                "the same command again to probe anew and train the rest.")
    with Store(db, create=False) as st:
        assert [p.kind for p in st.probes("cc")] == ["recommend"]


def test_ctrl_c_while_a_sweep_checks_its_runs_leaves_no_store(tmp_path, spec, monkeypatch):
    import batchlab.execute.sweep as sweep

    monkeypatch.setattr(sweep, "prepare_sweep", ctrl_c)  # loading data, lr = "auto", ...
    interrupted("sweep", spec, "--store", tmp_path / "s.db",
                says="nothing was stored yet (the store is untouched)")
    assert not (tmp_path / "s.db").exists()


def test_ctrl_c_while_writing_a_report_keeps_the_runs(tmp_path, spec, monkeypatch):
    import batchlab.report as report

    db = tmp_path / "s.db"
    assert invoke("sweep", spec, "--store", db).exit_code == 0
    write_report = report.write_report
    monkeypatch.setattr(report, "write_report", ctrl_c)
    interrupted("report", "cc", "--store", db, says="the report was not finished; the store is "
                "unchanged. Run the same command again to write it.")
    assert statuses(db, "cc") == ["completed"]
    monkeypatch.setattr(report, "write_report", write_report)
    again = invoke("report", "cc", "--store", db)
    assert again.exit_code == 0, again.stderr
    assert (tmp_path / "cc-report.html").stat().st_size > 0


def test_the_first_seconds_of_a_sweep_say_torch_is_being_imported(tmp_path, spec):
    # a terminal as rich sees one (spinners drawn) on a pipe: TTY_INTERACTIVE and FORCE_COLOR
    res = subprocess.run(
        [sys.executable, "-m", "batchlab", "sweep", str(spec), "--store", str(tmp_path / "s.db")],
        capture_output=True, text=True, timeout=300,
        env={**env(), "TTY_INTERACTIVE": "1", "FORCE_COLOR": "1"})
    assert res.returncode == 0, res.stderr
    first = res.stdout.index("starting: importing torch")
    assert first < res.stdout.index("loading data, building each model")


@pytest.fixture
def keras_logs(tmp_path):
    """Two Keras CSVLogger files: two runs to import."""
    files = []
    for b in (16, 64):
        path = tmp_path / f"bs{b}.csv"
        path.write_text("epoch,accuracy,loss,val_accuracy,val_loss\n"
                        + "".join(f"{e},0.{e + 1},1.{e},0.{e + 1},1.{e}\n" for e in range(3)))
        files.append(path)
    return files


def test_ctrl_c_in_an_import_keeps_the_runs_imported_and_the_next_completes_it(
        tmp_path, keras_logs, monkeypatch):
    import batchlab.integrations.importing as importing

    write_run = importing.write_run
    calls = []

    def first_then_ctrl_c(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return write_run(*args, **kwargs)

    db = tmp_path / "s.db"
    monkeypatch.setattr(importing, "write_run", first_then_ctrl_c)
    interrupted("import", "csv", *keras_logs, "-e", "imp", "--store", db,
                says="the runs imported so far are stored; run the same command again to import "
                "every file, replacing those.")
    assert statuses(db, "imp") == ["completed"]
    monkeypatch.setattr(importing, "write_run", write_run)
    assert invoke("import", "csv", *keras_logs, "-e", "imp", "--store", db).exit_code == 0
    assert statuses(db, "imp") == ["completed", "completed"]


def test_ctrl_c_in_an_export_says_it_is_unfinished(tmp_path, keras_logs, monkeypatch):
    import batchlab.export as export

    db = tmp_path / "s.db"
    assert invoke("import", "csv", *keras_logs, "-e", "imp", "--store", db).exit_code == 0
    monkeypatch.setattr(export, "export_experiment", ctrl_c)
    interrupted("export", "imp", "--store", db, says="the export was not finished (the store is "
                "unchanged); run the same command again to write it whole.")


def test_ctrl_c_while_finding_lrs_for_auto_keeps_those_found(tmp_path, second_auto_lr_cut):
    """Each LR for lr = "auto" costs about half a run: one found before Ctrl-C is stored, and
    the sweep run again reuses it instead of measuring it again."""
    calls = second_auto_lr_cut  # Ctrl-C while batch 16's LR is measured
    path = tmp_path / "cc.toml"
    path.write_text('name = "cc"\n' + TINY.replace("steps = 2", 'steps = 2\nlr = "auto"')
                    + '[sweep.grid]\n"train.batch_size" = [8, 16]\n')
    db = tmp_path / "s.db"
    interrupted("sweep", path, "--store", db,
                says="the LR found for lr = 'auto' so far (1 probe) is stored and nothing else "
                "was; run the same sweep again to find the rest and train (it reuses them).")
    with Store(db, create=False) as st:
        (probe,) = st.probes("cc", "lr_range")
        assert probe.config["train"]["batch_size"] == 8 and st.runs("cc") == []
    calls.append("again")
    res = invoke("sweep", path, "--store", db)
    assert res.exit_code == 0, res.output
    assert calls == [8, 16, "again", 16] and statuses(db, "cc") == ["completed", "completed"]


CUT_INSIDE_EXEC = """
import sys
import batchlab.execute.sweep as sweep
from batchlab.cli import main

def cut(*args, **kwargs):
    from batchlab.cli.common import err_console
    err_console.print("training ...")  # as the progress does: what prints it is loaded now
    exec("raise KeyboardInterrupt")  # Ctrl-C inside code run by exec (as making a dataclass is)

sweep.run_sweep = cut
main()
"""


def test_a_handled_ctrl_c_inside_exec_d_code_still_exits_130(tmp_path, spec):
    """CPython 3.11-3.13 end ``python -m batchlab`` by SIGINT then (-2 to its caller), unless
    told the interrupt was handled (cli._forget_handled_interrupt). Run as ``-m``, as the
    suite's end-to-end tests run the command line: its exit status is the one affected."""
    argv, environ = as_module(tmp_path, "cutmain", CUT_INSIDE_EXEC)
    res = subprocess.run([*argv, "sweep", spec, "--store", tmp_path / "s.db"], capture_output=True,
                         text=True, env=environ, timeout=120)
    assert res.returncode == 130, res.stderr
    assert "interrupted: finished runs are stored" in res.stderr and "Traceback" not in res.stderr


UNHANDLED_CUT = """
import batchlab.cli.probes as probes
from batchlab.cli import main

def cut(*args, **kwargs):  # a Ctrl-C where the command has no handler of its own
    raise KeyboardInterrupt

probes.probe_config = cut
main()
"""


def test_a_ctrl_c_no_command_handles_still_says_one_line(tmp_path, spec):
    """typer alone ends such a Ctrl-C silently with 130; the user is told what was kept."""
    argv, environ = as_module(tmp_path, "unhandled", UNHANDLED_CUT)
    res = subprocess.run([*argv, "lr-find", spec, "--store", tmp_path / "s.db"], capture_output=True,
                         text=True, env=environ, timeout=120)
    assert res.returncode == 130, res.stderr
    assert res.stderr.strip() == ("interrupted: what had finished before Ctrl-C is stored; run the "
                                  "same command again to go on.")

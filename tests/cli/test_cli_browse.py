"""ls, show, rm, --version and --help (issue 9, CLI section and item 2's rm)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from functools import partial

import pytest
from cli_helpers import batchlab_cli, cli_without_torch, env, ls_overview

from batchlab.events import MetricRows, RunEnded, RunStarted
from batchlab.plan import plan_runs
from batchlab.spec import spec_from_dict
from batchlab.store import Store
from batchlab.store.lifecycle import checkpoint_file


@pytest.fixture
def db(tmp_path):
    """A store with one completed, one interrupted and one pending run (no training needed)."""
    path = tmp_path / "s.db"
    spec = spec_from_dict({"name": "exp", "model": {"name": "mymodels:make"},
                           "sweep": {"grid": {"train.batch_size": [16, 32, 64]}}})
    runs = plan_runs(spec)
    with Store(path) as st:
        st.add_experiment("exp", spec.model_dump(mode="json"), runs)
        done, cut = runs[0].run_id, runs[1].run_id
        for rid, steps in ((done, 5), (cut, 2)):
            st.record(RunStarted(rid, 5, 0))
            st.record(MetricRows(rid, [("train_loss", s, 1.0, s / 5, s * 16, 0.1) for s in
                                       range(1, steps + 1)], steps))
        st.record(RunEnded(done, "completed", 5, 1.5, {"final_val_acc": 0.8}))
        st.record(RunEnded(cut, "interrupted", 2, 0.5, {}))
    return path


def test_ls_tells_interrupted_from_pending(db):
    header, counts = ls_overview(db, "exp")
    assert re.search(r"completed.*diverged.*pruned.*failed.*interrupted.*running.*pending", header)
    assert counts == ["3", "1", "0", "0", "0", "1", "0", "1"]
    res = batchlab_cli("ls", "exp", "--store", db)
    assert "interrupted at step 2 of 5" in res.stdout and "pending" in res.stdout


def test_show_prints_only_fields_that_apply_and_plain_progress(db):
    with Store(db) as st:
        pending, done = st.runs("exp")[2], st.runs("exp")[0]
    res = batchlab_cli("show", pending.id, "--store", db)
    assert res.returncode == 0, res.stderr
    assert "status: pending" in res.stdout and "None" not in res.stdout
    assert '"hidden"' not in res.stdout  # the mlp's widths mean nothing for a user factory
    assert '"kwargs"' in res.stdout and '"gamma"' not in res.stdout  # constant schedule
    assert "no metrics stored yet" in res.stdout
    res = batchlab_cli("show", done.id[:8], "--store", db)
    assert "steps: 5 of 5" in res.stdout and "wall time: 1.5 s" in res.stdout


def test_rm_asks_and_removes_runs_metrics_and_checkpoints(db):
    with Store(db) as st:
        ids = [r.id for r in st.runs("exp")]
    ckpt = checkpoint_file(db, ids[1])
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"state")
    res = batchlab_cli("rm", "exp", "--store", db, stdin="n\n")
    assert res.returncode == 1 and "nothing removed" in res.stderr
    assert "experiment 'exp': 3 runs, 7 metric rows" in res.stderr
    res = batchlab_cli("rm", "exp", "--store", db, stdin="")  # no terminal, no --yes: no
    assert res.returncode == 1 and "nothing removed: no answer" in res.stderr
    assert "pass --yes to remove without asking" in res.stderr and "Aborted" not in res.stderr
    with Store(db) as st:
        assert len(st.runs("exp")) == 3 and ckpt.exists()
    res = batchlab_cli("rm", "exp", "--store", db, stdin="y\n")
    assert res.returncode == 0, res.stderr
    with Store(db) as st:
        assert st.experiments() == [] and st.runs() == []
        assert sum(st.count_metric_rows(i) for i in ids) == 0
    assert not ckpt.exists()


def test_in_a_pipe_a_line_of_text_stays_one_line_whatever_its_length(db, tmp_path):
    # a log (cron, CI, `| tee`) has no terminal width: rich cut stderr's lines at 80 columns
    # ("pass --yes to remove\nwithout asking.") and stdout's at 180
    bare = {k: v for k, v in env().items() if k != "COLUMNS"}
    run = partial(subprocess.run, capture_output=True, text=True, env=bare, timeout=300)
    res = run([sys.executable, "-m", "batchlab", "rm", "exp", "--store", str(db)], input="")
    assert res.returncode == 1
    assert ("nothing removed: no answer (no terminal, or Ctrl-C); pass --yes to remove without "
            "asking.") in res.stderr.splitlines()
    name = "a-long-experiment-name-" * 8
    with Store(db) as st:
        st.add_probe(name, "throughput", {}, {})
    res = run([sys.executable, "-m", "batchlab", "ls", "--store", str(db)])
    assert res.returncode == 0, res.stderr
    assert any(line.startswith(f"'{name}' holds 1 probe result(s)") and line.endswith("shows them.")
               for line in res.stdout.splitlines())


def test_rm_yes_removes_one_run_by_prefix_and_unknown_targets_exit_2(db):
    with Store(db) as st:
        victim = st.runs("exp")[0].id
    res = batchlab_cli("rm", victim[:7], "--yes", "--store", db)
    assert res.returncode == 0 and f"run {victim}" in res.stdout
    with Store(db) as st:
        assert victim not in [r.id for r in st.runs("exp")] and len(st.runs("exp")) == 2
    res = batchlab_cli("rm", "nope", "--yes", "--store", db)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "no experiment or run matches 'nope'" in res.stderr


def test_version():
    res = batchlab_cli("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"batchlab {__import__('batchlab').__version__}"


COMMANDS = ["demo", "sweep", "run", "ls", "show", "export", "rm", "report", "compare", "next", "lr-find",
            "max-batch", "throughput", "noise-scale", "recommend"]


def test_help_reads_like_help():
    res = batchlab_cli("--help")
    assert res.returncode == 0
    # each summary on one line of a wide terminal: no hard line breaks from the docstrings
    lines = {line.split()[1]: line for line in res.stdout.splitlines()
             if line.startswith("│ ") and len(line.split()) > 2}
    assert set(COMMANDS) <= set(lines)
    assert lines["demo"].rstrip(" │").endswith("then its report.")
    assert lines["lr-find"].rstrip(" │").endswith("across batch sizes.")
    for command in [*COMMANDS, "import tensorboard", "import csv"]:
        text = batchlab_cli(*command.split(), "--help").stdout
        for program_word in ("<bool>", "<list[str]>", "<int range>", "<str>", "<path>", "{"):
            assert program_word not in text, (command, program_word)
        # help is markdown, never %-formatted: "5%%" would print as typed
        assert "%%" not in text, command
    # markdown drops "<experiment>" as an HTML tag, leaving "default: -next.toml"
    assert "(default: EXPERIMENT-next.toml beside the store)" in batchlab_cli("next", "--help").stdout
    assert re.search(r"--workers\s+-w\s+N\b", batchlab_cli("sweep", "--help").stdout)
    csv_help = batchlab_cli("import", "csv", "--help").stdout
    assert "import csv [OPTIONS] FILES..." in csv_help and re.search(r"--map\s+TAG=NAME", csv_help)
    # an imported run has no spec: its --set takes plain config keys, not spec fields
    assert "n_train=60000" in csv_help and "sweep.grid" not in csv_help


@pytest.mark.parametrize("args", [["--help"], ["ls"], ["ls", "exp"], ["show", "RUN"], ["--version"],
                                  ["rm", "--help"], ["dashboard", "--help"], ["rm", "RUN", "--yes"],
                                  ["export", "exp", "--format", "csv", "-o", "OUT"],
                                  ["export", "exp", "--format", "json", "-o", "OUT"]])
def test_browsing_commands_never_import_torch(db, tmp_path, args):
    with Store(db) as st:
        run_id = st.runs("exp")[0].id
    args = [{"RUN": run_id, "OUT": str(tmp_path / "out")}.get(a, a) for a in args]
    if args[0] in ("ls", "show", "rm", "export") and "--help" not in args:
        args += ["--store", str(db)]
    last, res = cli_without_torch(*args)
    assert last.endswith("NO-TORCH"), res.stdout + res.stderr
    if args[0] in ("rm", "export") and "--help" not in args:  # the command did its work
        with Store(db) as st:
            assert (run_id in {r.id for r in st.runs("exp")}) == (args[0] == "export")
        assert (tmp_path / "out").exists() == (args[0] == "export")


def test_rm_refuses_a_run_another_sweep_is_training(db):
    with Store(db) as st:
        rid = st.runs("exp")[2].id
        st.conn.execute("UPDATE runs SET status='running', owner=?, heartbeat=? WHERE id=?",
                        (f"{socket.gethostname()}:{os.getpid()}:test", time.time(), rid))
    res = batchlab_cli("rm", "exp", "--yes", "--store", db)
    assert res.returncode == 2 and "being trained right now" in res.stderr
    with Store(db) as st:
        assert len(st.runs("exp")) == 3


@pytest.mark.parametrize("fmt", ["csv", "tensorboard"])
def test_export_refuses_a_file_where_its_folder_goes_and_keeps_the_file(db, tmp_path, fmt):
    data = tmp_path / "mydata.npz"
    data.write_bytes(b"the user's data")
    res = batchlab_cli("export", "exp", "--format", fmt, "-o", data, "--store", db)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    text = " ".join(res.stderr.split())
    assert f"cannot export to '{data}': it is a file" in text and "nothing was written" in text
    assert f"--output exp-{'export' if fmt == 'csv' else 'tensorboard'}" in text
    assert data.read_bytes() == b"the user's data"
    res = batchlab_cli("export", "exp", "--format", fmt, "-o", data / "sub", "--store", db)
    assert res.returncode == 2 and "on its way is a file" in res.stderr


def test_export_makes_missing_folders_and_refuses_a_folder_for_json(db, tmp_path):
    out = tmp_path / "nodir" / "deeper" / "x.json"
    res = batchlab_cli("export", "exp", "--format", "json", "-o", out, "--store", db)
    assert res.returncode == 0, res.stderr
    assert len(json.loads(out.read_text())["runs"]) == 3
    res = batchlab_cli("export", "exp", "--format", "csv", "-o", tmp_path / "a" / "b", "--store", db)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "a" / "b" / "runs.csv").read_text().count("\n") == 4  # header + 3 runs
    res = batchlab_cli("export", "exp", "--format", "json", "-o", tmp_path / "nodir", "--store", db)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert (f"--output '{tmp_path / 'nodir'}' is a folder, and this command writes one file; "
            f"give the path of a file, e.g. --output {tmp_path / 'nodir' / 'exp.json'}."
            ) in " ".join(res.stderr.split())


@pytest.mark.parametrize("args, name", [(["report", "exp"], "exp-report.html"),
                                        (["compare", "exp", "exp"], "exp-vs-exp.html"),
                                        (["next", "exp"], "exp-next.toml"),
                                        (["export", "exp", "-f", "json"], "exp.json")])
@pytest.mark.parametrize("where", [".", "out/"])
def test_a_one_file_output_that_names_a_folder_exits_2_and_writes_nothing(db, tmp_path, args, name,
                                                                          where):
    # '.' made the report fail with a traceback; 'out/' wrote a file named 'out'
    work = tmp_path / "work"
    work.mkdir()
    res = batchlab_cli(*args, "-o", where, "--store", db, cwd=work)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    text = " ".join(res.stderr.split())
    example = f"{where}{name}" if where.endswith("/") else name
    assert (f"--output '{where}' is a folder, and this command writes one file; give the path "
            f"of a file, e.g. --output {example}.") in text
    assert list(work.iterdir()) == []


def test_ls_of_probes_only_names_a_report_command_that_pastes_as_it_is(tmp_path):
    store = tmp_path / "my runs.db"
    with Store(store) as st:
        st.add_probe("my probes", "throughput", {}, {})
    res = batchlab_cli("ls", "--store", store)
    assert res.returncode == 0, res.stderr
    text = " ".join(res.stdout.split())
    assert f"`batchlab report 'my probes' --store '{store}'` shows them." in text


@pytest.mark.parametrize("name", ["sweep[bs]", "a[/]"])
def test_an_experiment_name_with_brackets_is_printed_as_it_is(tmp_path, name):
    # rich read it as markup: 'sweep[bs]' showed as 'sweep', 'a[/]' raised MarkupError
    db = tmp_path / "s.db"
    spec = spec_from_dict({"name": name, "model": {"name": "mymodels:make"}})
    with Store(db) as st:
        st.add_experiment(name, spec.model_dump(mode="json"), plan_runs(spec))
    for args, says in ((["ls"], f"│ {name} "), (["ls", name], f"runs of '{name}'"),
                       (["export", name, "-f", "json", "-o", tmp_path / "x.json"],
                        f"exported 1 run of '{name}' to"),
                       (["rm", name, "--yes"], f"removed experiment '{name}'")):
        res = batchlab_cli(*args, "--store", db)
        assert res.returncode == 0 and "Traceback" not in res.stderr, (args, res.stderr)
        assert says in res.stdout, (args, res.stdout)


def test_ls_shows_the_fields_runs_differ_in_beyond_batch_lr_schedule_and_seed(tmp_path):
    # a first sweep, then the same spec again with other weight decay and data.limit (as
    # --set or batchlab next does): the runs must not read the same
    path = tmp_path / "s.db"
    raw = {"name": "exp", "model": {"name": "mymodels:make"},
           "sweep": {"grid": {"train.batch_size": [16, 32]}}}
    first = plan_runs(spec_from_dict(raw))
    again = spec_from_dict({**raw, "train": {"weight_decay": 0.01}, "data": {"limit": 100}})
    with Store(path) as st:
        st.add_experiment("exp", spec_from_dict(raw).model_dump(mode="json"), first)
        st.add_experiment("exp", again.model_dump(mode="json"), plan_runs(again))
    res = batchlab_cli("ls", "exp", "--store", path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    header = next(line for line in lines if "run id" in line)
    assert re.search(r"seed\s*┃\s*data\.limit\s*┃\s*train\.weight_decay\s*┃\s*val acc", header)
    cells = {tuple(re.split(r"\s*│\s*", line.strip("│ "))[i] for i in (0, 2, 6, 7))
             for line in lines if re.match(r"│ [0-9a-f]{12} ", line)}
    ids = {r.run_id: r for r in first}
    assert {c[1:] for c in cells if c[0] in ids} == {("16", "-", "0"), ("32", "-", "0")}
    assert {c[1:] for c in cells if c[0] not in ids} == {("16", "100", "0.01"), ("32", "100", "0.01")}

"""The probe commands (lr-find, max-batch, throughput, noise-scale, recommend), run as a user
runs them: exit codes, output, figures beside the store, probe rows in the store, the report.

The commands run once, two at a time, in a module fixture (the probes into one store, each
bad-input command into a store of its own); each test checks one command's result."""

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from cli_helpers import cli_without_torch

from batchlab.paths import safe_name
from batchlab.store import Store

NAME = "cliprobe"
SPEC = f"""
name = "{NAME}"
[data]
name = "synthetic"
shape = [10]
classes = 3
size = 300
[model]
name = "mlp"
hidden = [16]
[train]
epochs = 2
lr = 0.1
batch_size = 16
threads = 1
"""
PNG = b"\x89PNG\r\n\x1a\n"
JOBS = 2  # commands at a time (a 2-core box)
# One torch thread per process: the box is shared, and lr-find / noise-scale (which, unlike
# throughput, do not apply train.threads) spend most of their time in thread hand-offs otherwise.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def command(*args):
    return [sys.executable, "-m", "batchlab", *map(str, args)]


def batchlab(*args):
    return subprocess.run(command(*args), capture_output=True, text=True, timeout=300, env=ENV)


def run_all(jobs):
    """{key: argv} -> {key: CompletedProcess}, JOBS at a time (most of each is start-up)."""
    with ThreadPoolExecutor(JOBS) as pool:
        futures = {key: pool.submit(batchlab, *args) for key, args in jobs.items()}
        return {key: f.result() for key, f in futures.items()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every probe command on one spec into one store, and every bad-input command into a store
    of its own: (folder, store, {key: result}, {bad case: its store})."""
    folder = tmp_path_factory.mktemp("probes")
    spec = folder / "probe.toml"
    spec.write_text(SPEC)
    db = folder / "p.db"
    Store(db).close()  # created once here: the probe commands below write to it side by side
    jobs = {  # the longest first
        "recommend": ("recommend", spec, "--batch-sizes", "8,16,32,64", "--validate", "--store", db),
        "throughput": ("throughput", spec, "--batch-sizes", "8,16,32,512", "--options", "--store", db),
        # 24 epochs: at batch 64 (96 steps) room for the miniatures beside two 20-step range tests
        "lr-find": ("lr-find", spec, "--batch-sizes", "16,64", "--repeats", "2",
                    "--set", "train.epochs=24", "--store", db),
        "max-batch": ("max-batch", spec, "--memory-limit", "2MiB", "--store", db),
        "noise-scale": ("noise-scale", spec, "--steps", "30", "--store", db),
    }
    bad_dbs = {}
    for case, (args, _) in BAD.items():
        bad_dbs[case] = folder / f"bad-{len(bad_dbs)}.db"
        jobs[case] = (*(a.format(spec=spec) for a in args), "--store", bad_dbs[case])
    return folder, db, run_all(jobs), bad_dbs


@pytest.fixture(scope="module")
def probed(runs):
    folder, db, out, _ = runs
    return folder, db, out


def ok(res):
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    return res.stdout


def probe(db, kind):
    with Store(db) as st:
        (p,) = st.probes(NAME, kind)
    assert p.experiment == NAME and p.kind == kind
    assert p.config["model"]["hidden"] == [16]  # the spec's base config is what was probed
    return p.result


def test_lr_find(probed):
    folder, db, out = probed
    text = ok(out["lr-find"])
    assert "LR suggestion (horizon)" in text and "suggested lr" in text
    rows = [line for line in text.splitlines() if re.match(r"^\W*(16|64)\W", line)]
    assert len(rows) == 2
    r = probe(db, "lr_range")
    assert r["batch_sizes"] == [16, 64]
    assert [len(b["repeats"]) for b in r["per_batch"]] == [2, 2]
    assert all(b["suggested_lr"] > 0 for b in r["per_batch"])
    # the default strategy trains miniatures of the run (5 at rung 0), says how sure it is,
    # and the cost is printed in epochs
    assert r["strategy"] == "horizon" and all(len(b["trials"]) >= 5 for b in r["per_batch"])
    assert all(b["confidence"] in ("high", "medium", "low") for b in r["per_batch"])
    assert "confidence" in text
    m = re.search(r"cost: (\d+\.\d) epochs of training in all", text)
    assert m and float(m.group(1)) == pytest.approx(r["cost_epochs"], abs=0.05) and r["cost_epochs"] > 0
    flat = " ".join(text.split())
    m = re.search(r"best LR scales as B\^(-?\d+\.\d\d) \((grows with|falls as|does not change "
                  r"with) the batch[^;]*; linear rule: 1, square-root rule: 0\.5\)", flat)
    assert m, text
    assert float(m.group(1)) == pytest.approx(r["alpha"], abs=0.006)
    assert m.group(2) == ("grows with" if r["alpha"] >= 0.005 else "falls as"
                          if r["alpha"] <= -0.005 else "does not change with")
    # --repeats 2: the range tests ran beside the miniatures, and the text says so, with cost
    for b in r["per_batch"]:
        steps = sum(len(t["lrs"]) for t in b["repeats"])
        assert f"batch {b['batch_size']}: range test (2 seeds, {steps} steps, " in flat, text
    assert f"stored as a 'lr_range' probe of experiment '{NAME}'" in text
    png = folder / f"{NAME}-lr_range.png"
    assert png.read_bytes()[:8] == PNG and str(png) in text.replace("\n", "")


def test_max_batch(probed):
    folder, db, out = probed
    text = ok(out["max-batch"])
    r = probe(db, "max_batch")
    assert r["memory_limit"] == 2 * 2**20 and r["margin"] == 0.1
    assert r["trials"] and all(str(t["batch_size"]) in text for t in r["trials"])
    assert "batch sizes tried" in text and "peak memory" in text
    assert f"largest that fits: {r['largest']}" in text
    assert f"recommended with a 10% margin: {r['recommended']}" in text
    assert r["recommended"] <= r["largest"] <= r["n_train"]
    fitting = [t for t in r["trials"] if t["fits"]]
    assert max(t["batch_size"] for t in fitting) == r["largest"]
    assert all(t["peak_bytes"] <= r["limit_bytes"] for t in fitting)
    # the spec's batch (16) is what the accumulation advice is about
    assert r["want"] == 16 and r["advice"] and " ".join(r["advice"].split()) in " ".join(text.split())
    png = folder / f"{NAME}-max_batch.png"  # every probe draws its figure (issue 9)
    assert png.read_bytes()[:8] == PNG and str(png) in text.replace("\n", "")


def test_throughput(probed):
    folder, db, out = probed
    text = ok(out["throughput"])
    r = probe(db, "throughput")
    assert r["batch_sizes"] == [8, 16, 32]
    assert len(r["samples_per_s"]) == len(r["peak_bytes"]) == 3
    # 512 is skipped, and the note says why (as the stored result does)
    assert r["skipped"] == [{"batch_size": 512, "reason": "larger than the 240 training examples"}]
    assert "note: skipped batch sizes [512]: larger than the 240 training examples" in " ".join(
        text.split())
    assert all(v > 0 for v in r["samples_per_s"])
    assert r["threads"] == 1 and r["threads_reason"] == "train.threads"  # the spec's train.threads
    assert len(r["window_spread"]) == len(r["rounds"]) == 3 and "window spread" in text
    assert "samples/s" in text and ("knee at batch " in text or "no knee (" in text)
    assert "knee: None" not in text
    for b, v in zip(r["batch_sizes"], r["samples_per_s"], strict=True):
        assert re.search(rf"\b{b}\s*│\s*{v:,.0f}\b", text), (b, v, text)
    assert (folder / f"{NAME}-throughput.png").read_bytes()[:8] == PNG
    # --options: what bf16 / channels_last would buy at the spec's batch (16), one line each
    o = r["options"]
    assert o["batch_size"] == 16 and o["labels"][0] == "fp32" and o["samples_per_s"][0] > 0
    flat = " ".join(text.split())
    assert (f"bf16 autocast: {o['ratio'][2]:.2f}x samples/s at batch 16 (median of "
            f"{o['rounds']} rounds") in flat
    assert "channels_last: not measured (train.channels_last = true needs image inputs" in flat


def test_noise_scale(probed):
    folder, db, out = probed
    text = ok(out["noise-scale"])
    r = probe(db, "noise_scale")
    assert r["steps"] == list(range(1, 31)) and len(r["trace_loss"]) == 30
    assert r["batch_size"] == 16 and r["micro_batches"] == 4
    assert r["b_simple"] > 0 and r["ci_low"] <= r["b_simple"] <= r["ci_high"]
    m = re.search(r"B_simple = (\S+) \(95% CI", text)
    assert m and float(m.group(1)) == pytest.approx(r["b_simple"], rel=1e-3)
    assert "at batch 16, 4 micro-batches, 30 steps" in text
    png = folder / f"{NAME}-noise_scale.png"  # every probe draws its figure (issue 9)
    assert png.read_bytes()[:8] == PNG and str(png) in text.replace("\n", "")


def test_recommend_and_validate(probed):
    folder, db, out = probed
    text = ok(out["recommend"])
    r = probe(db, "recommend")
    assert r["batch_sizes"] == [8, 16, 32, 64]
    b = r["batch_size"]
    assert b in r["batch_sizes"] and r["lr"] > 0
    assert re.search(rf"recommended: batch {b}, lr {r['lr']:.3g}", text)
    assert "Gradient noise scale B_noise" in text and "Predicted time to target" in text
    assert set(r["probes"]) == {"throughput", "max_batch", "noise_scale", "lr_range"}
    assert min(r["relative_time"]) == 1.0
    # the fastest of the batch sizes that reach the target within the spec's epochs
    eligible = [p for p in r["predictions"] if p["fits"] and p["examples_factor"] <= r["examples_slack"]]
    assert r["relative_time"][r["batch_sizes"].index(b)] == min(p["relative_time"] for p in eligible)
    assert next(p for p in r["predictions"] if p["batch_size"] == 16)["examples_factor"] == 1.0
    assert (folder / f"{NAME}-recommend.png").read_bytes()[:8] == PNG
    # --validate: the sweep around the choice, its table and one line per batch size
    assert f"validation sweep '{NAME}-validate'" in text
    fitting = {p["batch_size"] for p in r["predictions"] if p["fits"]}
    expected = sorted(x for x in (b // 2, b, 2 * b) if x in fitting)
    flat = " ".join(text.split())
    for x in expected:
        assert re.search(rf"batch {x} \(lr [\d.e-]+\): predicted x\d+\.\d\d", flat), (x, text)
    # the base's own time to the target is printed (the verdict may compare with it)
    assert re.search(r"your base configuration \(batch 16, lr 0\.1\): (measured x\d+\.\d\d|"
                     r"did not reach|reached the target)", flat), text
    assert "compare their times to the target above" not in flat
    assert "the fastest to the target" in text or "No run reached the target" in text
    with Store(db) as st:
        runs = st.runs(f"{NAME}-validate")
        # the probes' own commands never train runs: their experiment holds probe results only
        assert [e.name for e in st.experiments()] == [NAME, f"{NAME}-validate"]
        assert st.runs(NAME) == [] and st.probes(NAME)
    # the user's base configuration is trained beside the neighbours and compared plainly
    base = [run for run in runs if not run.point]
    assert len(base) == 1 and base[0].config["train"]["batch_size"] == 16
    assert base[0].config["train"]["lr"] == 0.1
    assert sorted(run.config["train"]["batch_size"] for run in runs if run not in base) == expected
    assert {run.status for run in runs} == {"completed"}
    assert re.search(r"your base configuration \(batch 16, lr [\d.]+\)", text.lower().replace("\n", " "))
    rec_run = next(run for run in runs if run.config["train"]["batch_size"] == b and run not in base)
    assert rec_run.config["train"]["lr"] == float(f"{r['lr']:.3g}")
    assert rec_run.config["train"]["scale_lr"] == "none"


def test_report_shows_the_probes(probed):
    folder, db, _ = probed
    res = batchlab("report", NAME, "--store", db)
    ok(res)
    html = (folder / f"{NAME}-report.html").read_text()
    assert "<h2>Probes</h2>" in html and 'id="probes"' in html
    # one row of the probe table per stored probe, by kind, and a figure for each
    titles = re.findall(r'<tr><td>\d+</td><td class="l">([^<]+)</td>', html)
    assert titles == ["LR suggestion", "Largest batch that fits", "Throughput",
                      "Gradient noise scale", "Recommendation"]
    figures = sorted((folder / f"{NAME}-report_files").glob("probe-*.png"))
    assert len(figures) == 5 and all(f.read_bytes()[:8] == PNG for f in figures)


# ------------------------------------------------------------------------- bad input

BAD = {
    "batch sizes not numbers": (
        ("lr-find", "{spec}", "--batch-sizes", "8,x"), "whole numbers separated by commas"),
    "batch sizes empty": (  # an unset shell variable: not the default sizes without a word
        ("throughput", "{spec}", "--batch-sizes", ""), "--batch-sizes is empty: give batch sizes"),
    "memory limit garbage": (
        ("max-batch", "{spec}", "--memory-limit", "10 bytes-ish"), "cannot read the memory size"),
    "memory limit below one sample": (
        ("max-batch", "{spec}", "--memory-limit", "1KiB"), "not even batch size 1 fits"),
    "budget above one run": (
        ("lr-find", "{spec}", "--budget", "1.5"), "budget must be a share of the run's steps"),
    "budget with a curve rule": (
        ("lr-find", "{spec}", "--strategy", "valley", "--budget", "0.9"),
        "a budget applies to the 'horizon' strategy only"),
    "batch larger than the data": (
        ("lr-find", "{spec}", "--repeats", "1", "--set", "train.batch_size=512"),
        "batch size 512 is larger than the 240 training examples"),
}


@pytest.fixture(scope="module")
def bad_runs(runs):
    """{case: (result, the store it was given)}."""
    _, _, out, dbs = runs
    return {case: (out[case], db) for case, db in dbs.items()}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_exits_2_with_one_paragraph(bad_runs, case):
    res, db = bad_runs[case]
    assert res.returncode == 2, res.stdout + res.stderr
    err = res.stderr.strip()
    assert err.startswith("error:") and "\n\n" not in err
    assert BAD[case][1].lower() in " ".join(err.split()).lower()
    assert "Traceback" not in res.stdout + res.stderr
    assert not db.exists()  # nothing stored


def test_memory_limit_below_one_sample_says_what_to_try(bad_runs):
    res, _ = bad_runs["memory limit below one sample"]
    err = " ".join(res.stderr.split())
    assert "over the memory limit of 1.0 KiB" in err
    assert "Try a smaller model" in err and "a larger memory limit" in err


def test_garbage_memory_limit_lists_the_accepted_forms(bad_runs):
    err = " ".join(bad_runs["memory limit garbage"][0].stderr.split())
    assert "'10 bytes-ish'" in err and "e.g. 4GiB" in err


def test_a_store_that_is_no_batchlab_store_is_refused_before_the_probe_measures(tmp_path):
    # it was refused only when the result was stored, after every miniature had trained
    spec = tmp_path / "probe.toml"
    spec.write_text(SPEC)
    foreign = tmp_path / "other.db"
    foreign.write_bytes(b"a file of another program")
    for args in (["lr-find", spec], ["max-batch", spec], ["throughput", spec],
                 ["noise-scale", spec], ["recommend", spec]):
        last, res = cli_without_torch(*args, "--store", foreign)
        assert last == "EXIT 2 NO-TORCH", (args, res.stdout, res.stderr)
        assert f"'{foreign}' is not a batchlab store" in " ".join(res.stderr.split())
    assert foreign.read_bytes() == b"a file of another program"


def test_the_figure_is_named_as_the_report_is_whatever_the_experiment_name(tmp_path):
    # 'a/b' made a folder 'a' beside the store for 'b-noise_scale.png' ('../x' left the folder)
    spec = tmp_path / "probe.toml"
    spec.write_text(SPEC)
    folder = tmp_path / "work"
    folder.mkdir()
    res = batchlab("noise-scale", spec, "--steps", "10", "--set", "name=a/b", "--store",
                   folder / "p.db")
    figure = folder / f"{safe_name('a/b')}-noise_scale.png"
    assert f"figure: {figure}" in ok(res)
    assert sorted(p.name for p in folder.iterdir()) == sorted(["p.db", figure.name])
    assert figure.read_bytes().startswith(PNG)

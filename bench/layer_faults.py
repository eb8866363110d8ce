"""The per-layer diagnosis against cases built to have each fault, and healthy runs.

Every case trains through batchlab (``bl.sweep`` on a tiny model and tensors, or a spec
sweep), with ``train.watch`` on (the default), and the stored runs are analysed as any
experiment is (``analyze_experiment``). A fault case passes when one of its runs carries the
expected label and no run carries a per-layer label it should not; a healthy case passes when
no run that trained without failing carries any per-layer label: on a run that diverged,
collapsed, exploded or swung (its own labels say so) a per-layer label explains the failure and
is listed in brackets, not counted as a false alarm.

    python bench/layer_faults.py            # every case (~2-4 min on one core)
    python bench/layer_faults.py --quick    # shorter healthy runs
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from _common import load_line, print_table
from torch import nn

import batchlab as bl
from batchlab.analysis import analyze_experiment
from batchlab.analysis.kinds import FAILED_KINDS
from batchlab.analysis.layers import LAYER_KINDS
from batchlab.data import load_dataset
from batchlab.demo import demo_spec
from batchlab.execute.inline import InlineExecutor
from batchlab.execute.sweep import run_sweep
from batchlab.spec import DataSpec, spec_from_dict
from batchlab.store import Store

ALARMS = (*LAYER_KINDS, "model_too_small")
# a run already labelled with one of these failed: a per-layer label on it explains the failure
# (the dying ReLUs of a collapse at too large an LR), it is no false alarm on a healthy run
FAILED = FAILED_KINDS
DIM, CLASSES = 20, 4


def teacher_data(n: int, seed: int = 0) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """A 4-class problem a small MLP learns well: labels from a random 2-layer teacher."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, DIM, generator=g)
    w1, w2 = torch.randn(DIM, 32, generator=g), torch.randn(32, CLASSES, generator=g)
    y = (torch.tanh(x @ w1) @ w2).argmax(1)
    cut = int(0.8 * n)
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


class Detached(nn.Module):
    """An MLP whose forward cuts the graph after the first layer: ``fc1`` never learns."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(DIM, 64), nn.Linear(64, 64), nn.Linear(64, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x)).detach()  # the fault
        return self.fc3(torch.relu(self.fc2(h)))


def mlp(width: int = 64, depth: int = 2, act: Callable[[], nn.Module] = nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    d = DIM
    for _ in range(depth):
        layers += [nn.Linear(d, width), act()]
        d = width
    return nn.Sequential(*layers, nn.Linear(d, CLASSES))


def frozen() -> nn.Module:
    m = mlp()
    m[0].requires_grad_(False)  # the fault: frozen by hand, not by the spec
    return m


def dead() -> nn.Module:
    m = mlp(width=64)
    with torch.no_grad():
        m[0].bias[:52] = -10.0  # the fault: 52 of 64 units never fire (|w.x| stays far below 10)
    return m


def digits_bottleneck() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 2), nn.Linear(2, 10))  # 10 classes through 2 numbers


@dataclass
class Case:
    name: str
    expected: str | None  # None: healthy
    run: Callable[[Path], str]  # trains into the store, returns the experiment name
    forbidden: tuple[str, ...] = field(default=ALARMS)


def objects_case(name: str, model: Callable[[], nn.Module], data: Any, **kw: Any) -> Callable[[Path], str]:
    def run(store: Path) -> str:
        train, val = data
        grid = kw.pop("grid", {"lr": [0.05]})
        bl.sweep(name, model=model, train=train, val=val, grid=grid, store=store, verbose=False,
                 threads=1, prune="off", **kw)
        return name
    return run


def spec_case(name: str, spec: Any) -> Callable[[Path], str]:
    def run(store: Path) -> str:
        with Store(store) as st:
            run_sweep(spec, st, InlineExecutor())
        return spec.name
    return run


def digits() -> Any:
    d = load_dataset(DataSpec(name="digits", val_fraction=0.2))
    return (d.train_x.flatten(1), d.train_y), (d.val_x.flatten(1), d.val_y)


def cases(quick: bool) -> list[Case]:
    teach = teacher_data(2000)
    n = 4 if quick else 8
    healthy_spec = spec_from_dict({
        "name": "healthy-mnist1d-cnn", "data": {"name": "mnist1d", "size": 2000},
        "model": {"name": "cnn1d"}, "train": {"epochs": n, "batch_size": 64, "threads": 1},
        "sweep": {"grid": {"train.lr": [0.01, 0.05]}}})
    return [
        Case("detach in forward", "no_gradient", objects_case("detach", Detached, teach, epochs=10)),
        Case("frozen layer", "no_gradient", objects_case("frozen", frozen, teach, epochs=10)),
        Case("deep sigmoid net", "vanishing_gradients", objects_case(
            "sigmoid", lambda: mlp(32, 10, nn.Sigmoid), teach, epochs=10, grid={"lr": [0.1]})),
        Case("dead ReLUs (bias -10)", "dead_units", objects_case("dead", dead, teach, epochs=10)),
        Case("model far too small", "model_too_small", objects_case(
            "small", digits_bottleneck, digits(), epochs=40, grid={"lr": [0.01, 0.05, 0.2]})),
        Case("LR growing to divergence", "exploding_gradients", objects_case(
            "explode", lambda: mlp(act=nn.Tanh), teach, epochs=30, eval_every=10,
            grid={"lr": [0.05]}, schedule={"name": "exponential", "gamma": 2.0, "unit": "epoch"})),
        Case("healthy MLP (teacher)", None, objects_case("healthy-mlp", mlp, teach, epochs=n,
                                                         grid={"lr": [0.01, 0.05, 0.2]})),
        Case("healthy CNN (mnist1d)", None, spec_case("healthy-mnist1d-cnn", healthy_spec)),
        Case("demo spec (LeNet-5, digits)", None, spec_case("demo", demo_spec(epochs=n))),
    ]


def judge(case: Case, store: Path) -> tuple[list[str], str, str]:
    """(labels raised per run, verdict, the sentence of the expected label)."""
    name = case.run(store)
    with Store(store) as st:
        analysis = analyze_experiment(st, name)
    raised, sentence, ok_expected, false_alarm = [], "", case.expected is None, False
    for r in analysis.runs:
        kinds = [f.kind for f in r.findings if f.kind in ALARMS]
        failed = any(f.kind in FAILED for f in r.findings)
        raised.append(",".join(f"({k})" if failed else k for k in kinds) or "-")
        for f in r.findings:
            if f.kind == case.expected:
                ok_expected, sentence = True, sentence or f.message
        false_alarm |= not failed and any(k != case.expected for k in kinds)
    return raised, "PASS" if ok_expected and not false_alarm else "FAIL", sentence


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows, sentences = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(cases(args.quick)):
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                raised, verdict, sentence = judge(case, Path(tmp) / f"case{i}.db")
            rows.append([case.name, case.expected or "(none)", " | ".join(sorted(set(raised))),
                         verdict, time.perf_counter() - t0])
            if sentence:
                sentences.append(f"{case.name}: {sentence}")
    print(load_line())
    print_table(["case", "expected", "labels raised (per-layer, capacity)", "verdict", "s"], rows)
    print(f"\n{sum(r[3] == 'PASS' for r in rows)}/{len(rows)} PASS\n")
    print("\n".join(sentences))


if __name__ == "__main__":
    main()

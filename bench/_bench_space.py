"""The declared design space of the judgement bench and the cases drawn from it.

Cases are *drawn*, not hand-picked: ``draw(n, seed)`` samples model family, task, data,
optimizer, batch size, run length and schedule from the space below with a fixed seed, so
nobody chose a case to suit a rule. Each case then belongs to ``dev`` or ``held-out`` by a
hash of its name (:func:`half`), fixed before any rule was changed: rules are developed on
``dev`` only, and the held-out half is the one that counts. Never move a case between halves;
a new case (a larger ``n``) keeps every earlier case's name and half.

Not part of batchlab and not a test module.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass

import numpy as np
from _bench_data import SOURCES
from _bench_models import TAKES

CASES = 144
SEED = 2026
#: cases from this index on were added (CASES 128 -> 144) after all 128 earlier cases had been
#: measured with the design as it still is (the duel, lr_horizon step 4, included): their
#: held-out cases are the unseen measurement. Earlier batches: 48-63 (FRESH 48, first measured
#: at ed18717), 64-79 (FRESH 64, at 93858f0), 80-95 (FRESH 80, at 657f37e), 96-111 (FRESH 96,
#: at 24d8628) and 112-127 (FRESH 112, at 010bd08, drawn after the duel was committed). (The
#: draw can repeat a case: 60, in dev, is 57, held-out, again.)
FRESH = 128

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad")
FAMILIES = ("mlp", "cnn", "resnet_bn", "sequence", "transformer")  # sequence: gru or conv1d
TASKS = ("classification", "noisy", "imbalanced", "regression")
SCHEDULES = ("constant", "step", "cosine")
STEPS = (100, 5000)
BATCHES = (8, 1024)
#: the most one ground-truth run may cost on one CPU thread (seconds, by the cost model
#: below): long runs of the slower families are shortened to it, never below STEPS[0]
RUN_SECONDS = 3.0

#: the base LR a user would try first: the optimizer's usual default (torch's or Keras's)
BASE_LR = {"sgd": 0.01, "momentum": 0.01, "nesterov": 0.01, "adam": 1e-3, "adamw": 1e-3,
           "rmsprop": 1e-3, "adagrad": 0.01}


@dataclass(frozen=True)
class Case:
    name: str
    data: str
    variant: str  # clean | noisy | imbalanced
    family: str
    optimizer: str
    batch_size: int
    steps: int
    schedule: str

    @property
    def flat(self) -> bool:
        return self.family == "mlp"

    @property
    def base_lr(self) -> float:
        return BASE_LR[self.optimizer]

    @property
    def half(self) -> str:
        return half(self.name)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def half(name: str) -> str:
    """``dev`` or ``held-out``: the parity of the first byte of the name's SHA-256."""
    return "dev" if hashlib.sha256(name.encode()).digest()[0] % 2 == 0 else "held-out"


def step_ms(family: str, batch: int, pixels: int) -> float:
    """Rough cost of one step on one CPU thread (measured on this bench's models)."""
    scale = pixels / 64
    base, per = {"mlp": (0.8, 0.002), "cnn": (2.5, 0.03 * scale), "resnet_bn": (4.0, 0.04 * scale),
                 "conv1d": (3.0, 0.06), "gru": (7.0, 0.015), "transformer": (8.0, 0.04)}[family]
    return base + per * batch


def _data_for(family: str, task: str, rng: np.random.Generator) -> str | None:
    kinds = TAKES[family]
    regression = task == "regression"
    names = [n for n, (kind, t) in SOURCES.items()
             if kind in kinds and (t == "regression") == regression]
    return str(rng.choice(names)) if names else None


def draw(n: int = CASES, seed: int = SEED) -> list[Case]:
    """``n`` cases drawn from the space (deterministic for ``seed``; the first k of a larger
    draw are the k of a smaller one)."""
    from _bench_data import load

    rng = np.random.default_rng(seed)
    out: list[Case] = []
    while len(out) < n:
        family = str(rng.choice(FAMILIES))
        if family == "sequence":
            family = str(rng.choice(("gru", "conv1d")))
        task = str(rng.choice(TASKS))
        data = _data_for(family, task, rng)
        optimizer = str(rng.choice(OPTIMIZERS))
        schedule = str(rng.choice(SCHEDULES))
        log_b = rng.integers(int(math.log2(BATCHES[0])), int(math.log2(BATCHES[1])) + 1)
        steps = int(round(math.exp(rng.uniform(math.log(STEPS[0]), math.log(STEPS[1]))), -1))
        if data is None:  # e.g. a regression for an image family: draw again
            continue
        variant = task if task in ("noisy", "imbalanced") else "clean"
        d = load(data, variant, family == "mlp")
        n_train = len(d.y_train)
        batch = int(min(2 ** log_b, 2 ** int(math.log2(n_train // 8))))  # >= 8 steps per epoch
        pixels = int(np.prod(d.input_shape[1:])) if d.x_train.ndim == 4 else 64
        cap = int(RUN_SECONDS * 1000 / step_ms(family, batch, pixels))
        steps = max(STEPS[0], min(steps, cap))
        name = f"{len(out):02d}-{d.name}-{family}-{optimizer}-b{batch}-{steps}st-{schedule}"
        out.append(Case(name, data, variant, family, optimizer, batch, steps, schedule))
    return out


if __name__ == "__main__":
    cases = draw()
    for c in cases:
        print(f"{c.half:9} {c.name}")
    print(f"dev {sum(c.half == 'dev' for c in cases)}, held-out {sum(c.half == 'held-out' for c in cases)}")

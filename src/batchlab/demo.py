"""The classic batch-size study, on built-in data, as a ready spec."""

from __future__ import annotations

from batchlab.spec import Spec, spec_from_dict

DEMO_EPOCHS = 30


def demo_spec(epochs: int | None = None) -> Spec:
    """Batch 16/32/64/128 x LR 0.1/0.01/0.001 x {constant, step decay}: 24 runs of LeNet-5 on
    scikit-learn's 8x8 digits, SGD with momentum, evaluated every epoch."""
    n = epochs or DEMO_EPOCHS
    return spec_from_dict({
        "name": "demo",
        "data": {"name": "digits", "val_fraction": 0.2},
        "model": {"name": "lenet5"},
        "train": {
            "optimizer": "sgd", "momentum": 0.9, "epochs": n, "seed": 0,
            # step decay: x0.1 after two thirds of training
            "schedule": {"name": "constant", "step_size": max(1, (2 * n) // 3), "gamma": 0.1},
        },
        "sweep": {"grid": {
            "train.batch_size": [16, 32, 64, 128],
            "train.lr": [0.1, 0.01, 0.001],
            "train.schedule.name": ["constant", "step"],
        }},
    }, source="the demo spec")

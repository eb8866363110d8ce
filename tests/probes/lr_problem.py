"""The tiny synthetic problem the LR probe tests share: 400 examples, 12 features, 3 classes."""

from batchlab.spec import RunConfig, spec_from_dict

DATA = {"name": "synthetic", "shape": [12], "classes": 3, "size": 400}
QUICK = {"steps": 40}  # enough for a curve, fast enough for the suite


def config(**train) -> RunConfig:
    s = spec_from_dict({"data": DATA, "model": {"name": "mlp", "hidden": [16]},
                        "train": {"batch_size": 32, "lr": 0.05, "threads": 1, **train}})
    return RunConfig(data=s.data, model=s.model, train=s.train)

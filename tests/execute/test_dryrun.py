"""``execute.dryrun.dry_run`` checks what the sweep checks before training, including the
import check of an executor that is not built for a dry run (a Ray cluster's)."""

import pytest
from torch import nn

import __main__
from batchlab.errors import ModelError
from batchlab.execute.dryrun import dry_run
from batchlab.spec import spec_from_dict


def test_a_dry_run_for_workers_elsewhere_refuses_a_factory_they_cannot_import(monkeypatch):
    monkeypatch.setattr(__main__, "tiny_net", lambda input_shape, num_classes: nn.Sequential(
        nn.Flatten(), nn.Linear(input_shape[0], num_classes)), raising=False)
    spec = spec_from_dict({"name": "main", "model": {"name": "__main__:tiny_net"},
                           "data": {"name": "synthetic", "shape": [6], "classes": 3, "size": 60},
                           "train": {"steps": 2, "threads": 1}})
    assert dry_run(spec, None).count() == "1 run: 1 to train"  # in this process it would train
    with pytest.raises(ModelError, match="which worker processes cannot import"):
        dry_run(spec, None, out_of_process=True)

"""train.devices / strategy / sync_batchnorm: what a run over several processes accepts."""

import pytest

from batchlab.errors import SpecError
from batchlab.spec import RunConfig, spec_from_dict


def _run_id(raw):
    s = spec_from_dict(raw)
    return RunConfig(data=s.data, model=s.model, train=s.train).run_id()


def test_defaults_keep_the_ids_runs_had_before_devices():
    # the id of the default spec before train.devices/strategy/sync_batchnorm existed
    assert _run_id({"train": {"devices": 1, "strategy": "single", "sync_batchnorm": False}}) \
        == "6847e0e9e512"
    ddp = {"devices": 2, "strategy": "ddp"}
    assert len({_run_id({}), _run_id({"train": ddp}),
                _run_id({"train": {**ddp, "sync_batchnorm": True}})}) == 3


@pytest.mark.parametrize(
    ("train", "per_device", "micro"),
    [({"devices": 2, "strategy": "ddp", "batch_size": 64}, 32, 32),
     ({"devices": 4, "strategy": "ddp", "batch_size": 256, "accumulate": 2}, 64, 32),
     ({"devices": 2, "strategy": "ddp", "batch_size": 64, "micro_batch_size": 8}, 32, 8)],
)
def test_batch_size_is_global_and_accumulation_splits_each_process_share(train, per_device, micro):
    t = spec_from_dict({"train": train}).train
    assert (t.device_batch(), t.micro_batch()) == (per_device, micro)


@pytest.mark.parametrize(
    ("train", "needle"),
    [({"devices": 2}, "train.devices = 2 trains one run in 2 processes, which needs "
      "train.strategy = 'ddp'"),
     ({"devices": 4, "strategy": "ddp", "batch_size": 66},
      "train.batch_size = 66 is the global batch, which train.devices = 4 processes share "
      "equally, and 4 does not divide it; use a multiple of 4 (e.g. 64 or 68)"),
     ({"devices": 2, "strategy": "ddp", "batch_size": 64, "accumulate": 3},
      "train.accumulate = 3 does not divide the per-device batch (train.batch_size / "
      "train.devices = 64 / 2) = 32 into equal micro-batches"),
     ({"devices": 2, "strategy": "ddp", "measure_noise_scale": True},
      "train.measure_noise_scale is not measured in a run over train.devices = 2 processes"),
     ({"sync_batchnorm": True}, "train.sync_batchnorm = true synchronises BatchNorm across the "
      "processes of a DDP run; set train.strategy = 'ddp'"),
     ({"devices": 0, "strategy": "ddp"}, "'train.devices': Input should be greater than 0"),
     ({"strategy": "fsdp"}, "'train.strategy' = 'fsdp' is not allowed"),
     ],
)
def test_bad_device_settings_are_one_paragraph(train, needle):
    with pytest.raises(SpecError) as err:
        spec_from_dict({"train": train}, source="x.toml")
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_a_training_function_takes_no_devices():
    with pytest.raises(SpecError, match="train.devices = 2 applies to batchlab's own loop"):
        spec_from_dict({"train": {"function": "m:f", "devices": 2, "strategy": "ddp"}})

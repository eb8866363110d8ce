"""Which config fields ``batchlab show`` prints: those that have an effect on the run."""

from __future__ import annotations

from batchlab.applicable import applicable
from batchlab.spec import DataSpec, ModelSpec, RunConfig, ScheduleSpec, TrainSpec


def shown(**parts) -> dict:
    return applicable(RunConfig(**{"data": DataSpec(), "model": ModelSpec(), "train": TrainSpec(),
                                   **parts}).model_dump(mode="json"))


def test_user_factory_hides_zoo_fields_and_keeps_kwargs():
    c = shown(model=ModelSpec(name="mymodels:make", kwargs={"depth": 3}))
    assert c["model"] == {"name": "mymodels:make", "kwargs": {"depth": 3}}
    assert shown()["model"] == {"name": "mlp", "hidden": [256, 128]}


def test_a_factory_shows_the_zoo_fields_it_was_passed():
    # a factory that names hidden/width receives them when they are set (models/factory.py)
    c = shown(model=ModelSpec(name="mymodels:make", hidden=[64, 64], width=2.0))
    assert c["model"] == {"name": "mymodels:make", "hidden": [64, 64], "width": 2.0, "kwargs": {}}
    c = shown(model=ModelSpec(name="torchvision:resnet18", hidden=[64]))
    assert "hidden" not in c["model"]


def test_schedule_fields_follow_the_schedule():
    assert shown()["train"]["schedule"] == {"name": "constant", "warmup": 0}
    step = shown(train=TrainSpec(schedule=ScheduleSpec(name="step", step_size=5, warmup=3)))
    assert step["train"]["schedule"] == {"name": "step", "unit": "epoch", "step_size": 5,
                                         "gamma": 0.1, "warmup": 3, "warmup_unit": "step"}
    cosine = shown(train=TrainSpec(schedule=ScheduleSpec(name="cosine")))["train"]["schedule"]
    assert set(cosine) == {"name", "min_lr", "warmup"}


def test_data_and_optimizer_fields_follow_their_choices():
    c = shown()
    assert "shape" not in c["data"] and "path" not in c["data"] and "limit" not in c["data"]
    assert "crop_padding" not in c["data"] and c["data"]["val_fraction"] == 0.2
    assert "noise_scale_every" not in c["train"] and "base_batch_size" not in c["train"]
    assert c["train"]["momentum"] == 0.9 and "threads" not in c["train"]
    adam = shown(train=TrainSpec(optimizer="adam", scale_lr="sqrt"))["train"]
    assert "momentum" not in adam and "nesterov" not in adam and adam["base_batch_size"] == 32
    synthetic = shown(data=DataSpec(name="synthetic", augment=["crop"]))["data"]
    assert synthetic["shape"] == [1, 28, 28] and synthetic["crop_padding"] == 4


def test_training_options_show_only_when_set():
    plain = shown()["train"]
    assert not {"accumulate", "micro_batch_size", "precision", "channels_last"} & set(plain)
    c = shown(train=TrainSpec(batch_size=64, accumulate=4, precision="bf16", channels_last=True))
    t = c["train"]
    assert (t["accumulate"], t["precision"], t["channels_last"]) == (4, "bf16", True)
    assert shown(train=TrainSpec(micro_batch_size=8))["train"]["micro_batch_size"] == 8


def test_one_process_and_no_train_function_show_no_ddp_or_options_fields():
    plain = shown()["train"]
    assert not {"devices", "strategy", "sync_batchnorm", "options"} & set(plain)
    t = shown(train=TrainSpec(batch_size=64, devices=2, strategy="ddp", sync_batchnorm=True))["train"]
    assert (t["devices"], t["strategy"], t["sync_batchnorm"]) == (2, "ddp", True)
    fn = shown(train=TrainSpec(function="mytrain:train", options={"width": 64}))["train"]
    assert fn["options"] == {"width": 64}

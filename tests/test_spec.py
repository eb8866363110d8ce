import pytest

from batchlab.errors import SpecError
from batchlab.spec import (
    DataSpec,
    ModelSpec,
    RunConfig,
    Spec,
    TrainSpec,
    load_spec,
    spec_from_dict,
)


def test_defaults_validate_and_run_id_is_stable():
    s = spec_from_dict({})
    cfg = RunConfig(data=s.data, model=s.model, train=s.train)
    assert cfg.run_id() == RunConfig(data=s.data, model=s.model, train=s.train).run_id()
    other = spec_from_dict({"train": {"lr": 0.5}})
    assert RunConfig(data=other.data, model=other.model, train=other.train).run_id() != cfg.run_id()


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"train": {"bach_size": 3}}, "unknown field 'train.bach_size'"),
        ({"train": {"batch_size": -4}}, "'train.batch_size': Input should be greater than 0"),
        ({"train": {"batch_size": "big"}}, "'train.batch_size'"),
        ({"train": {"optimizer": "lbfgs"}}, "'train.optimizer' = 'lbfgs' is not allowed"),
        ({"data": {"name": "npz"}}, "data.path is required"),
        ({"train": {"epochs": 3, "steps": 10}}, "set train.epochs or train.steps, not both"),
        ({"sweep": {"random": {"count": 2, "params": {"train.lr": {}}}}}, "exactly one of"),
    ],
)
def test_bad_fields_are_named(raw, needle):
    with pytest.raises(SpecError) as err:
        spec_from_dict(raw, source="x.toml")
    assert needle in str(err.value)
    assert "x.toml" in str(err.value)


def test_steps_alone_replaces_default_epochs():
    s = spec_from_dict({"train": {"steps": 50}})
    assert s.train.steps == 50


def test_load_spec_file(tmp_path):
    p = tmp_path / "study.toml"
    p.write_text('[train]\nlr = 0.1\n[sweep.grid]\n"train.batch_size" = [16, 32]\n')
    s = load_spec(p, ["train.epochs=2"])
    assert isinstance(s, Spec) and s.name == "study" and s.train.epochs == 2
    assert s.sweep.grid == {"train.batch_size": [16, 32]}


def test_load_spec_errors(tmp_path):
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nlr=")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(bad)


def test_model_weights_and_freeze_keep_old_run_ids_at_their_defaults():
    # the id batchlab gave this config before model.weights / model.freeze existed
    base = RunConfig(data=DataSpec(), model=ModelSpec(name="lenet5"), train=TrainSpec())
    assert base.run_id() == "4f6934ccd9dd"
    frozen = RunConfig(data=DataSpec(), model=ModelSpec(name="lenet5", freeze="backbone"), train=TrainSpec())
    weighted = RunConfig(data=DataSpec(), model=ModelSpec(name="lenet5", weights="w.pth"), train=TrainSpec())
    assert len({base.run_id(), frozen.run_id(), weighted.run_id()}) == 3


def _run_id(raw):
    s = spec_from_dict(raw)
    return RunConfig(data=s.data, model=s.model, train=s.train).run_id()


def test_training_options_at_their_defaults_keep_the_ids_runs_had_before_them():
    # the ids of these specs before train.accumulate/micro_batch_size/precision/channels_last
    assert _run_id({}) == "6847e0e9e512"
    assert _run_id({"train": {"lr": 0.5, "batch_size": 128}, "model": {"name": "lenet5"}}) \
        == "4b2f07f1f803"
    assert _run_id({"train": {"accumulate": 1, "precision": "fp32", "channels_last": False}}) \
        == "6847e0e9e512"
    changed = [{"accumulate": 4}, {"micro_batch_size": 8}, {"precision": "bf16"},
               {"channels_last": True}]
    ids = {_run_id({"train": t}) for t in changed}
    assert len(ids) == 4 and "6847e0e9e512" not in ids


@pytest.mark.parametrize(
    ("train", "micro"),
    [({}, 32), ({"accumulate": 4, "batch_size": 128}, 32), ({"micro_batch_size": 16}, 16),
     ({"micro_batch_size": 64}, 32), ({"accumulate": 32}, 1)],
)
def test_micro_batch_follows_accumulate_or_micro_batch_size(train, micro):
    assert spec_from_dict({"train": train}).train.micro_batch() == micro


@pytest.mark.parametrize(
    ("train", "needle"),
    [({"batch_size": 128, "accumulate": 3},
      "train.accumulate = 3 does not divide train.batch_size = 128 into equal micro-batches; "
      "use one of its divisors (2, 4, 8, 16, 32, 64)"),
     ({"batch_size": 100, "micro_batch_size": 30},
      "train.micro_batch_size = 30 does not divide train.batch_size = 100 into equal "
      "micro-batches; use a divisor of the batch size (e.g. 25)"),
     ({"accumulate": 2, "micro_batch_size": 16}, "set train.accumulate or train.micro_batch_size, not both"),
     ({"accumulate": 0}, "'train.accumulate': Input should be greater than 0"),
     ({"precision": "fp8"}, "'train.precision' = 'fp8' is not allowed"),
     ({"batch_size": 8, "accumulate": 16}, "train.accumulate = 16 does not divide"),
     ],
)
def test_bad_accumulation_and_precision_are_one_paragraph(train, needle):
    with pytest.raises(SpecError) as err:
        spec_from_dict({"train": train}, source="x.toml")
    assert needle in str(err.value) and "\n" not in str(err.value)

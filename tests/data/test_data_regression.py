"""``.npz`` regression targets and ``data.task``: what each task reads, and the errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from batchlab.data import load_dataset
from batchlab.errors import DataError, SpecError
from batchlab.spec import DataSpec, ModelSpec, RunConfig, TrainSpec, spec_from_dict


def npz(tmp_path: Path, y: np.ndarray, **extra: np.ndarray) -> str:
    path = tmp_path / "d.npz"
    x = np.random.default_rng(0).normal(size=(len(y), 3))
    np.savez(path, x=x, y=y, **extra)
    return str(path)


def test_auto_reads_non_whole_floats_as_a_regression(tmp_path: Path) -> None:
    y = np.linspace(-1.5, 2.5, 20)
    ds = load_dataset(DataSpec(name="npz", path=npz(tmp_path, y), val_fraction=0.25))
    assert ds.train_y.dtype == torch.float32 and ds.train_y.shape == (15,)
    assert ds.num_classes == 0
    assert ds.description.endswith("3, regression, 1 target")
    # the targets are the file's values, unscaled (only inputs are normalised)
    together = torch.cat([ds.train_y, ds.val_y]).sort().values
    assert torch.allclose(together, torch.from_numpy(y.astype(np.float32)))


def test_auto_reads_2d_targets_as_a_regression_even_when_whole(tmp_path: Path) -> None:
    y = np.arange(40).reshape(20, 2)  # integers, but two columns: values to fit, not labels
    ds = load_dataset(DataSpec(name="npz", path=npz(tmp_path, y)))
    assert ds.train_y.dtype == torch.float32 and ds.train_y.shape == (16, 2)
    assert ds.description.endswith("regression, 2 targets")


def test_regression_keeps_integer_targets_as_float32(tmp_path: Path) -> None:
    y = np.arange(20) * 3
    ds = load_dataset(DataSpec(name="npz", path=npz(tmp_path, y), task="regression"))
    assert ds.train_y.dtype == torch.float32 and ds.num_classes == 0
    assert set(torch.cat([ds.train_y, ds.val_y]).tolist()) == {3.0 * i for i in range(20)}


def test_auto_reads_whole_floats_as_labels_and_says_so(tmp_path: Path) -> None:
    y = np.array([0.0, 1.0, 2.0, 1.0] * 5)
    ds = load_dataset(DataSpec(name="npz", path=npz(tmp_path, y)))
    assert ds.train_y.dtype == torch.int64 and ds.num_classes == 3
    assert any("read the float targets as 3 class labels" in n and "data.task = 'regression'" in n
               for n in ds.notes)
    # integer labels are the plain case: no note
    assert load_dataset(DataSpec(name="npz", path=npz(tmp_path, y.astype(int)))).notes == ()


def test_test_split_of_a_regression(tmp_path: Path) -> None:
    y = np.linspace(0, 1, 20)
    path = npz(tmp_path, y, x_test=np.zeros((5, 3)), y_test=np.full(5, 0.25))
    ds = load_dataset(DataSpec(name="npz", path=path, validation="test"))
    assert ds.val_y.tolist() == [0.25] * 5 and ds.val_y.dtype == torch.float32
    # a y_test of another width than y is refused, naming both shapes
    path = npz(tmp_path, y, x_test=np.zeros((5, 3)), y_test=np.zeros((5, 2)))
    with pytest.raises(DataError, match=re.escape("x_test/y_test examples of shape (3,)/(2,)")):
        load_dataset(DataSpec(name="npz", path=path, validation="test"))


def test_classification_refuses_non_whole_targets(tmp_path: Path) -> None:
    spec = DataSpec(name="npz", path=npz(tmp_path, np.linspace(0.1, 0.9, 20)), task="classification")
    with pytest.raises(DataError) as info:
        load_dataset(spec)
    message = str(info.value)
    assert "not whole numbers (e.g. 0.1)" in message and "data.task = 'regression'" in message
    assert "\n" not in message


@pytest.mark.parametrize(("y", "problem"), [
    (np.array([0.5, np.nan] * 10), "NaN or infinite targets"),
    (np.zeros((20, 2, 2)), "must be (N,) or (N, k) regression targets"),
])
def test_bad_regression_targets(tmp_path: Path, y: np.ndarray, problem: str) -> None:
    with pytest.raises(DataError, match=re.escape(problem)):
        load_dataset(DataSpec(name="npz", path=npz(tmp_path, y), task="regression"))


def test_regression_is_refused_on_the_class_label_formats() -> None:
    with pytest.raises(SpecError) as info:
        spec_from_dict({"data": {"name": "digits", "task": "regression"}})
    assert "'digits' holds class labels" in str(info.value) and "data.name = 'npz'" in str(info.value)
    with pytest.raises(SpecError, match="'data.task' = 'regresion' is not allowed"):
        spec_from_dict({"data": {"name": "npz", "path": "d.npz", "task": "regresion"}})
    labels = spec_from_dict({"data": {"name": "digits", "task": "classification"}})
    assert labels.data.task == "classification"


def test_task_auto_keeps_run_ids() -> None:
    # a field added later: at its default a run keeps the id it had before data.task existed
    # (5d5aa682c795 is that config's id at cf2c999); another task is another run
    def run_id(**data: str) -> str:
        spec = DataSpec(name="npz", path="d.npz", **data)
        return RunConfig(data=spec, model=ModelSpec(), train=TrainSpec()).run_id()

    assert run_id() == run_id(task="auto") == "5d5aa682c795"
    assert run_id(task="regression") != run_id()


def test_the_python_api_refuses_data_task() -> None:
    # the arrays passed decide the task there (float targets: a regression), so a task= would
    # be silently ignored
    from batchlab.apispec import field_path

    with pytest.raises(SpecError, match="'task' is set by the objects you pass"):
        field_path("task")

"""run.watch(model) in a function sweep: per-layer rows at each evaluation, off with
train.watch = false."""

import fn_train
import torch
import torch.nn.functional as F
from torch import nn

import batchlab as bl
from batchlab.store import Store


def train(run):
    x, y = fn_train.blobs(128)
    model = nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 5))
    run.watch(model)
    opt = torch.optim.SGD(model.parameters(), lr=run.lr)
    step = 0
    for _ in range(run.config["epochs"]):
        for i in range(0, 128, 32):
            loss = F.cross_entropy(model(x[i:i + 32]), y[i:i + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            run.log(step, train_loss=loss.detach())
        run.log(step, val_loss=loss.item())


def layer_rows(db):
    with Store(db) as st:
        (record,) = st.runs("w")
        return record, {n: s.step.tolist() for n, s in st.metrics(record.id).items()
                        if n.startswith("layer/")}


def test_run_watch_records_layers_unless_the_spec_turns_it_off(tmp_path):
    bl.sweep("w", train, epochs=3, lr=0.1, n_train=128, store=tmp_path / "on.db", verbose=False)
    record, rows = layer_rows(tmp_path / "on.db")
    assert rows["layer/0/grad_norm"] == rows["layer/2/update_ratio"] == [5, 9]  # after each evaluation
    assert rows["layer/0/dead_frac"] == [5, 9]
    assert record.summary["layers"] == ["0", "2"]
    bl.sweep("w", train, epochs=3, lr=0.1, n_train=128, watch=False, store=tmp_path / "off.db",
             verbose=False)
    record, rows = layer_rows(tmp_path / "off.db")
    assert rows == {} and "layers" not in record.summary

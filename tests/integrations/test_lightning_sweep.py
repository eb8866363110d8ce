"""Lightning inside a function sweep: BatchlabLogger(run=run) records the fit into the
sweep's run, BatchlabPruning stops the fit when the sweep prunes the run."""

import pytest
import torch
import torch.nn.functional as F

L = pytest.importorskip("lightning")

import batchlab as bl  # noqa: E402
from batchlab.integrations.lightning import BatchlabLogger  # noqa: E402
from batchlab.integrations.lightning_sweep import BatchlabPruning  # noqa: E402
from batchlab.store import Store  # noqa: E402

# learned, then back at chance (1/10) for good: the sweep's hopeless rule prunes the run
ACCS = [0.8, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]


class Scripted(L.LightningModule):
    """Trains a linear layer; reports the validation accuracy of ``ACCS`` for each epoch."""

    def __init__(self, run, fail_at=None):
        super().__init__()
        self.run, self.fail_at = run, fail_at
        self.net = torch.nn.Linear(4, 10)

    def training_step(self, batch, i):
        if self.global_step == self.fail_at:
            raise RuntimeError("out of coffee")
        loss = F.cross_entropy(self.net(batch[0]), batch[1])
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        self.log("val_loss", F.cross_entropy(self.net(batch[0]), batch[1]))
        self.log("val_acc", torch.tensor(ACCS[self.current_epoch]))

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=self.run.lr)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": self.run.scheduler(opt), "interval": "step"}}


def lit_train(run):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 4, generator=g), torch.randint(0, 10, (64,), generator=g)
    data = torch.utils.data.TensorDataset(x, y)
    trainer = L.Trainer(max_epochs=run.config["epochs"], log_every_n_steps=1, logger=BatchlabLogger(run=run),
                        callbacks=[BatchlabPruning(run)], enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Scripted(run, run.config.get("fail_at")),
                torch.utils.data.DataLoader(data, batch_size=run.config["batch_size"]),
                torch.utils.data.DataLoader(data, batch_size=64))


def only_run(db, name):
    with Store(db) as st:
        (record,) = st.runs(name)
        return record, st.metrics(record.id)


def test_the_pruning_callback_stops_a_hopeless_fit(tmp_path):
    db = tmp_path / "s.db"
    bl.sweep("lit", lit_train, grid={"batch_size": [16]}, lr=0.1, epochs=8, n_train=64,
             num_classes=10, store=db)
    record, metrics = only_run(db, "lit")
    assert record.status == "pruned" and record.error.startswith("collapsed to chance: val acc 0.1")
    assert metrics["val_acc"].value.tolist() == pytest.approx(ACCS[:5])  # not 8 epochs
    assert metrics["val_acc"].step.tolist() == [4, 8, 12, 16, 20]  # updates done, 4 per epoch
    assert metrics["train_loss"].step.tolist() == list(range(1, 21))
    assert metrics["val_acc"].examples.tolist() == [64, 128, 192, 256, 320]
    # without pruning the same fit runs its 8 epochs
    off = tmp_path / "off.db"
    bl.sweep("lit", lit_train, grid={"batch_size": [16]}, lr=0.1, epochs=8, n_train=64,
             num_classes=10, prune="off", store=off)
    record, metrics = only_run(off, "lit")
    assert record.status == "completed" and len(metrics["val_acc"].value) == 8


def test_a_failing_fit_fails_the_sweeps_run(tmp_path):
    db = tmp_path / "s.db"
    with pytest.raises(bl.BatchlabError, match="RuntimeError: out of coffee"):  # its only run
        bl.sweep("lit", lit_train, grid={"batch_size": [16]}, lr=0.1, epochs=3, n_train=64,
                 fail_at=6, store=db)
    record, metrics = only_run(db, "lit")
    assert record.status == "failed" and "RuntimeError: out of coffee" in record.error
    assert metrics["train_loss"].step.tolist() == list(range(1, 7))


def test_the_logger_needs_an_experiment_or_a_run():
    with pytest.raises(bl.BatchlabError, match="needs an experiment name"):
        BatchlabLogger()


def test_a_config_that_is_not_a_dict_is_refused_when_the_logger_is_made():
    # not inside trainer.fit, where dict("n_train=400") raised a ValueError naming nothing
    with pytest.raises(bl.BatchlabError, match=r"BatchlabLogger: config='n_train=400' \(str\) is not a dict"):
        BatchlabLogger("x", config="n_train=400")

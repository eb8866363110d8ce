"""The Lightning logger: a real Trainer.fit recorded into a store, value by value."""

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

L = pytest.importorskip("lightning")

from lightning.pytorch.callbacks import LearningRateMonitor  # noqa: E402

import batchlab as bl  # noqa: E402
from batchlab.integrations.lightning import BatchlabLogger  # noqa: E402
from batchlab.store import Store  # noqa: E402


class Blobs(L.LightningModule):
    """A linear classifier that remembers what it logged, to compare with the store."""

    def __init__(self, lr: float = 0.5, batch_size: int = 16, fail_at: int | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Linear(4, 2)
        self.seen: dict[str, list[float]] = {"train_loss": [], "val_acc": []}

    def training_step(self, batch, i):
        if self.hparams.fail_at is not None and self.global_step == self.hparams.fail_at:
            raise RuntimeError("out of coffee")
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        self.seen["train_loss"].append(loss.item())
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        out = self.net(x)
        acc = (out.argmax(1) == y).float().mean()
        self.log("val_loss", F.cross_entropy(out, y))
        self.log("val_accuracy", acc)
        self.seen["val_acc"].append(acc.item())

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def fit(db, module, epochs=2):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = (x[:, 0] > 0).long()
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:32], y[:32]), batch_size=32)
    # the path the issue names: bl.integrations.lightning.BatchlabLogger (imported lazily)
    logger = bl.integrations.lightning.BatchlabLogger("lit", config={"n_train": 64, "num_classes": 2},
                                                      store=db)
    assert isinstance(logger, BatchlabLogger)
    trainer = L.Trainer(max_epochs=epochs, logger=logger, log_every_n_steps=1, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0,
                        callbacks=[LearningRateMonitor(logging_interval="step")], accelerator="cpu")
    trainer.fit(module, train, val)
    return logger


def test_fit_is_recorded_step_by_step_with_hyperparameters(tmp_path):
    db = tmp_path / "s.db"
    module = Blobs()
    logger = fit(db, module)
    with Store(db) as st:
        (rec,) = st.runs("lit")
        m = st.metrics(rec.id)
    assert rec.id == logger.version and rec.status == "completed" and rec.steps == 8
    assert rec.config["train"]["batch_size"] == 16 and rec.config["train"]["lr"] == 0.5
    assert rec.config["tracked"] == {"fail_at": None}
    assert m["train_loss"].step.tolist() == list(range(1, 9))
    assert m["train_loss"].value == pytest.approx(module.seen["train_loss"], rel=1e-6)
    assert m["train_loss"].epoch.tolist()[:4] == [0.25, 0.5, 0.75, 1.0]
    # StepLR halves every 3 updates: update t used 0.5 * 0.5 ** ((t - 1) // 3)
    assert m["lr"].value.tolist() == [0.5 * 0.5 ** ((t - 1) // 3) for t in range(1, 9)]
    assert m["val_acc"].step.tolist() == [4, 8]
    assert m["val_acc"].value == pytest.approx(module.seen["val_acc"], rel=1e-6)
    assert "train_loss_epoch" not in m and "epoch" not in m and rec.summary["num_classes"] == 2
    res = subprocess.run([sys.executable, "-m", "batchlab", "report", "lit", "--store", db, "-o",
                          tmp_path / "r.html"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "batch sizes [16]" in (tmp_path / "r.html").read_text()


class TwoLoaders(Blobs):
    """Validates on two loaders, and logs a top-1-of-half accuracy before its accuracy."""

    def validation_step(self, batch, i, dataloader_idx=0):
        x, y = batch
        out = self.net(x)
        acc = (out.argmax(1) == y).float().mean()
        self.log("val_acc_half", acc / 2)
        self.log("val_acc", acc)
        self.log("val_loss", F.cross_entropy(out, y))
        if dataloader_idx == 0:
            self.seen["val_acc"].append(acc.item())


def test_metrics_of_a_second_val_loader_and_qualified_names_keep_their_own_names(tmp_path):
    db, module = tmp_path / "s.db", TwoLoaders()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = (x[:, 0] > 0).long()
    data = torch.utils.data.TensorDataset
    loaders = [torch.utils.data.DataLoader(data(x[:32], y[:32]), batch_size=32),
               torch.utils.data.DataLoader(data(x[32:40], y[32:40]), batch_size=8)]
    trainer = L.Trainer(max_epochs=2, logger=BatchlabLogger("two", store=db), log_every_n_steps=1,
                        enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, num_sanity_val_steps=0, accelerator="cpu")
    trainer.fit(module, torch.utils.data.DataLoader(data(x, y), batch_size=16), loaders)
    with Store(db) as st:
        (rec,) = st.runs("two")
        m = st.metrics(rec.id)
    # val_acc is the first loader's accuracy; before, whichever key came first took the name
    # (val_acc_half, or the second loader's) and the others were dropped
    assert m["val_acc"].value == pytest.approx(module.seen["val_acc"], rel=1e-6)
    assert m["val_acc_half/dataloader_idx_0"].value == pytest.approx(
        [a / 2 for a in module.seen["val_acc"]], rel=1e-6)
    assert {"val_acc/dataloader_idx_1", "val_loss/dataloader_idx_1"} <= set(m)
    assert m["val_loss"].step.tolist() == m["val_loss/dataloader_idx_1"].step.tolist() == [4, 8]


def test_what_is_logged_after_the_fit_is_not_stored_and_said_once(tmp_path):
    db = tmp_path / "s.db"
    module = Blobs()
    logger = fit(db, module)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(32, 4, generator=g)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long()), batch_size=8)
    trainer = L.Trainer(logger=logger, enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu")
    with pytest.warns(UserWarning, match="BatchlabLogger records one fit") as said:
        trainer.validate(module, val)
        trainer.validate(module, val)
    assert sum("records one fit" in str(w.message) for w in said) == 1
    with Store(db) as st:
        (rec,) = st.runs("lit")
        assert rec.status == "completed" and st.metrics(rec.id)["val_acc"].step.tolist() == [4, 8]


def test_a_crash_marks_the_run_failed(tmp_path):
    db = tmp_path / "s.db"
    with pytest.raises(RuntimeError, match="out of coffee"):
        fit(db, Blobs(fail_at=5))
    with Store(db) as st:
        (rec,) = st.runs("lit")
        assert rec.status == "failed" and rec.error == "RuntimeError: out of coffee"
        assert st.metrics(rec.id)["train_loss"].step.tolist() == [1, 2, 3, 4, 5]


def test_each_fit_checkpoints_into_its_own_version_folder(tmp_path):
    """Lightning reads save_dir/name/version before anything is logged: the run id is known
    then, so two fits never share (and overwrite) one checkpoint folder."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=g)
    data = torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long())
    ids = []
    for _ in range(2):
        logger = BatchlabLogger("lit/ckpt", config={"n_train": 32}, store=tmp_path / "s.db")
        assert logger.version and logger.save_dir is None
        trainer = L.Trainer(max_epochs=1, logger=logger, default_root_dir=tmp_path / "root",
                            log_every_n_steps=1, enable_progress_bar=False,
                            enable_model_summary=False, accelerator="cpu")
        trainer.fit(Blobs(), torch.utils.data.DataLoader(data, batch_size=16))
        ids.append(logger.version)
    folders = sorted(p.parent.parent for p in (tmp_path / "root").rglob("*.ckpt"))
    assert len(set(ids)) == 2
    assert folders == sorted(tmp_path / "root" / logger.name / i for i in ids)
    assert logger.name != "lit/ckpt" and "/" not in logger.name  # a safe folder name
    with Store(tmp_path / "s.db") as st:
        assert sorted(r.id for r in st.runs("lit/ckpt")) == sorted(ids)
    chosen = BatchlabLogger("e", store=tmp_path / "s.db", save_dir=tmp_path / "elsewhere")
    assert chosen.save_dir == str(tmp_path / "elsewhere")

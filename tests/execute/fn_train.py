"""Training functions the function-sweep tests sweep (imported by name by worker processes,
copied as ``mytrain.py`` into a test's folder for the command line)."""

import torch
import torch.nn.functional as F
from torch import nn

INTERRUPT_AFTER_EPOCH = None  # a test sets it: Ctrl-C right after that epoch's save, once


def blobs(n, d=32, classes=5, seed=0):
    """Gaussian class blobs: a task a small MLP learns in a few epochs."""
    g = torch.Generator().manual_seed(1234)
    centres = torch.randn(classes, d, generator=g) * 1.5
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    return centres[y] + torch.randn(n, d, generator=g), y


def train(run):
    """A plain loop: shuffled batches, SGD with batchlab's schedule, an evaluation, a save and
    a pruning check per epoch."""
    cfg = run.config
    x, y = blobs(cfg["n_train"])
    xv, yv = blobs(400, seed=1)
    width = cfg.get("width", 64)
    model = nn.Sequential(nn.Linear(32, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                          nn.Linear(width, 5))
    opt = torch.optim.SGD(model.parameters(), lr=run.lr, momentum=0.9)
    sched = run.scheduler(opt)
    start, step = 0, 0
    if (state := run.restore()) is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start, step = state["epoch"], state["step"]
    bs = cfg["batch_size"]
    for epoch in range(start, cfg["epochs"]):
        order = torch.randperm(len(y))
        for i in range(0, len(y), bs):
            idx = order[i:i + bs]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            lr = sched.get_last_lr()[0]
            sched.step()
            step += 1
            run.log(step, train_loss=loss.detach(), lr=lr)
        with torch.no_grad():
            out = model(xv)
            run.log(step, val_loss=F.cross_entropy(out, yv).item(),
                    val_acc=(out.argmax(1) == yv).float().mean().item())
        run.save({"model": model.state_dict(), "opt": opt.state_dict(),
                  "sched": sched.state_dict(), "epoch": epoch + 1, "step": step})
        if run.should_stop():
            return
        global INTERRUPT_AFTER_EPOCH
        if INTERRUPT_AFTER_EPOCH == epoch + 1:
            INTERRUPT_AFTER_EPOCH = None
            torch.randn(3)  # work after the save that a resumed run must not see
            run.log(step + 1, train_loss=9.0)  # a row after the save: dropped on resume
            raise KeyboardInterrupt


def scripted(run):
    """No model: logs values made from the config (``quality`` sets how good a run looks), so
    pruning decisions are known in advance. Saves every epoch; ``calls`` counts starts."""
    cfg = run.config
    spe = -(-cfg["n_train"] // cfg["batch_size"])
    start = 0
    if (state := run.restore()) is not None:
        start = state["epoch"]
    for epoch in range(start, cfg["epochs"]):
        for s in range(epoch * spe + 1, (epoch + 1) * spe + 1):
            run.log(s, train_loss=1.0 / (1 + s * cfg["quality"]))
        acc = cfg["accs"][epoch] if "accs" in cfg else 0.5
        run.log((epoch + 1) * spe, val_loss=1.0 / (1 + (epoch + 1) * cfg["quality"]), val_acc=acc)
        run.save({"epoch": epoch + 1})
        if run.should_stop():
            return


def save_then_fail(run):
    """Logs steps 1-3 and saves; started afresh it then fails (its checkpoint stays, as when
    its node dies), resumed it logs the step it resumed from (``resumed_at``) and ends."""
    if (state := run.restore()) is None:
        for step in (1, 2, 3):
            run.log(step, train_loss=1.0 / step)
        run.save({"step": 3})
        raise RuntimeError("cut off after its save")
    run.log(4, train_loss=0.25, resumed_at=state["step"])

"""One-command GPU check: every CUDA-marked test and the GPU benchmarks, as one Markdown table.

    python bench/gpu_check.py              # on a GPU machine: a few minutes
    python bench/gpu_check.py --dry-run    # the same code on the CPU with tiny sizes, < 1 minute
    python bench/gpu_check.py --checks tests,precision --out /tmp/gpu

Checks (each one row; a check that raises is a FAIL row with the error, and the others still run):

- ``tests``: ``pytest -m cuda`` (the tests that skip without a GPU). On the GPU every one must
  pass and none skip; in a dry run they must all be collected and skip.
- ``trainer``: batchlab's trainer against a minimal hand-written loop on the same model, data
  and batch size, in samples/s (the trainer's ``samples_per_s``; the hand loop synchronises the
  device before reading the clock). Target on the GPU: >= 0.9.
- ``max_batch``: ``max-batch`` against the device's real memory (on the GPU: no limit given, so
  a CUDA OOM ends the search; in a dry run a 256 MiB limit), then the recommended batch trains
  a few steps without running out of memory.
- ``stream``: an image folder streamed with 2 loader workers (pinned memory on CUDA) against
  the same folder in memory, in samples/s.
- ``precision``: bf16, fp16 (with the gradient scaler) and channels_last against fp32, in
  samples/s; every run must end with a finite loss.

The table starts with the device's name and is written to ``bench/results/`` (``--out`` to
change); the exit code is 1 when a check fails, 2 when there is no GPU and no ``--dry-run``.
Ratios are printed, not judged, except the trainer's (its target is the one bench/README.md
holds for the CPU); the dry run judges only that everything ran.
"""

from __future__ import annotations

import argparse
import math
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from batchlab.data import load_dataset
from batchlab.events import COMPLETED
from batchlab.models import build_model
from batchlab.probes.max_batch import max_batch
from batchlab.spec import RunConfig, spec_from_dict
from batchlab.train.loop import train_run

ROOT = Path(__file__).resolve().parents[1]
TRAINER_TARGET = 0.9


@dataclass(frozen=True)
class Sizes:
    """How big each check is: GPU sizes fill a GPU for seconds; dry-run sizes take the CPU
    through the same code in a second or two."""

    model: str  # the trainer and precision checks' model
    shape: tuple[int, int, int]
    size: int  # synthetic examples
    batch: int
    steps: int  # timed training steps per run
    memory_model: str  # the max_batch check's model and data
    memory_shape: tuple[int, int, int]
    memory_size: int
    memory_limit: str | None  # None: the device's real memory
    images: int  # the stream check's image folder
    image_size: int


# resnet50 at 192 px needs roughly 60 MB a sample to train in fp32: about 1,300 fit in 80 GiB
# and 2,300 in 141 GiB, well below the 3,276 training examples, so memory ends the search
GPU = Sizes("torchvision:resnet18", (3, 64, 64), 8192, 256, 200, "torchvision:resnet50", (3, 192, 192),
            4096, None, 4096, 64)
DRY = Sizes("lenet5", (3, 16, 16), 256, 32, 4, "lenet5", (1, 16, 16), 512, "8MiB", 32, 16)


@dataclass
class Row:
    check: str
    result: str
    verdict: str  # PASS, FAIL, or "ran" (dry run: measured, not judged)
    seconds: float = 0.0


@dataclass
class Context:
    device: str
    dry: bool
    sizes: Sizes
    rows: list[Row] = field(default_factory=list)

    def judged(self, ok: bool) -> str:
        return "PASS" if ok else "FAIL"


def config(ctx: Context, *, model: str | None = None, shape: tuple[int, ...] | None = None,
           size: int | None = None, data: dict[str, Any] | None = None, **train: Any) -> RunConfig:
    """A run of ``ctx``'s model on synthetic data (or ``data``) on ``ctx.device``."""
    s = ctx.sizes
    data = data or {"name": "synthetic", "shape": list(shape or s.shape), "size": size or s.size,
                    "normalize": False}
    spec = spec_from_dict({"data": data, "model": {"name": model or s.model},
                           "train": {"device": ctx.device, "batch_size": s.batch, "steps": s.steps,
                                     "optimizer": "sgd", "lr": 0.01, "momentum": 0.9,
                                     "checkpoint": False, "seed": 0, **train}})
    return RunConfig(data=spec.data, model=spec.model, train=spec.train)


def trained(cfg: RunConfig) -> dict[str, Any]:
    """Run ``cfg`` with batchlab's trainer; its summary. Raises when the run did not complete."""
    last: list[float] = []

    def sink(event: Any) -> None:
        for row in getattr(event, "rows", ()):
            if row[0] == "train_loss":
                last.append(row[2])

    ended = train_run(cfg, sink)
    if ended.status != COMPLETED:
        raise RuntimeError(f"the run ended {ended.status}: {ended.error}")
    return {**ended.summary, "last_loss": last[-1] if last else math.nan}


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


# ------------------------------------------------------------------------------- checks
def cuda_test_files() -> list[str]:
    """The test files that hold CUDA-marked tests (found by their marker, so pytest collects
    only those instead of the whole suite)."""
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")
                  if "pytest.mark.cuda" in p.read_text())


def check_tests(ctx: Context) -> Row:
    files = cuda_test_files()
    # -n 0: one process (the suite's default is two), so no test shares the GPU's memory
    res = subprocess.run([sys.executable, "-m", "pytest", "-m", "cuda", "-n", "0", "-p",
                          "no:cacheprovider", "-p", "no:warnings", *files], cwd=ROOT,
                         capture_output=True, text=True, timeout=420)
    summary = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else res.stderr[-300:]
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?)\b", summary)}
    passed, skipped = counts.get("passed", 0), counts.get("skipped", 0)
    bad = counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0)
    result = f"{passed} passed, {skipped} skipped, {bad} failed ({len(files)} files)"
    if ctx.dry:  # no GPU: every CUDA test must be collected and skip, none run
        ok = res.returncode == 0 and skipped > 0 and passed == 0 and bad == 0
    else:
        ok = res.returncode == 0 and passed > 0 and skipped == 0 and bad == 0
    if not ok:
        failed = [line for line in res.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
        result += " — " + " ".join([*failed, summary])[-400:]
    return Row("CUDA-marked tests (pytest -m cuda)", result, ctx.judged(ok))


def hand_loop(ctx: Context, cfg: RunConfig) -> float:
    """The loop a person writes, on the trainer's data and model: samples/s over ``steps``
    steps after 2 warm-up steps."""
    data = load_dataset(cfg.data)
    x, y = data.train_x.to(ctx.device), data.train_y.to(ctx.device)
    torch.manual_seed(0)
    model = build_model(cfg.model, data.input_shape, data.num_classes).to(ctx.device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    order = torch.Generator().manual_seed(0)
    batch, steps = cfg.train.batch_size, ctx.sizes.steps

    def step() -> None:
        idx = torch.randint(0, len(y), (batch,), generator=order).to(ctx.device)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    sync(ctx.device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(ctx.device)
    return steps * batch / (time.perf_counter() - start)


def check_trainer(ctx: Context) -> Row:
    cfg = config(ctx)
    hand = hand_loop(ctx, cfg)
    lab = trained(cfg)["samples_per_s"]
    ratio = lab / hand
    result = f"{lab:,.0f} vs {hand:,.0f} samples/s: {ratio:.2f}× (target ≥ {TRAINER_TARGET})"
    return Row(f"trainer vs hand loop ({ctx.sizes.model}, batch {ctx.sizes.batch})", result,
               "ran" if ctx.dry else ctx.judged(ratio >= TRAINER_TARGET))


def check_max_batch(ctx: Context) -> Row:
    s = ctx.sizes
    cfg = config(ctx, model=s.memory_model, shape=s.memory_shape, size=s.memory_size)
    limit = None
    if s.memory_limit is not None:
        from batchlab.probes.memory import parse_size

        limit = parse_size(s.memory_limit)
    found = max_batch(cfg, memory_limit=limit)
    if found.recommended is None:
        return Row("max-batch", f"no batch fits within the margin ({found.limited_by})", "FAIL")
    if ctx.device == "cuda":
        torch.cuda.empty_cache()
    steps = 3
    after = trained(cfg.model_copy(update={"train": cfg.train.model_copy(
        update={"batch_size": found.recommended, "steps": steps})}))
    limited = found.limited_by == "memory"
    result = (f"{s.memory_model} at {s.memory_shape[1]} px: largest {found.largest}, recommended "
              f"{found.recommended} (limited by {found.limited_by}, {found.method}); {steps} steps "
              f"at {found.recommended} trained, loss {after['last_loss']:.3g}")
    return Row("max-batch, then train the recommended batch", result, ctx.judged(limited))


def write_folder(root: Path, count: int, size: int) -> Path:
    """``count`` JPEGs in 2 classes (bright red or blue over noise) at ``size`` px."""
    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / f"c{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 100, (size, size, 3), dtype=np.uint8)
        pixels[..., 0 if i % 2 else 2] += 150
        Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", quality=90)
    return root


def check_stream(ctx: Context) -> Row:
    s = ctx.sizes
    with tempfile.TemporaryDirectory() as tmp:
        root = write_folder(Path(tmp) / "images", s.images, s.image_size)
        data = {"name": "image_folder", "path": str(root), "image_size": s.image_size, "workers": 2,
                "augment": ["crop", "flip"], "crop_padding": 2}
        steps = max(2, 2 * s.images // s.batch)  # about 2 epochs of the folder's training part
        rates = {}
        # "cached": the decoded cache's uint8 batches, augmented as batches on the device
        cache = {"pipeline": "stream", "cache": True, "cache_dir": str(Path(tmp) / "cache")}
        for name, extra in (("stream", {"pipeline": "stream"}), ("cached", cache),
                            ("memory", {"pipeline": "memory"})):
            cfg = config(ctx, model="lenet5", data={**data, **extra}, steps=steps)
            rates[name] = trained(cfg)["samples_per_s"]
    ratio = rates["stream"] / rates["memory"]
    pinned = " (pinned memory)" if ctx.device == "cuda" else ""
    result = (f"lenet5 at {s.image_size} px: stream{pinned} {rates['stream']:,.0f}, cached "
              f"stream {rates['cached']:,.0f}, memory {rates['memory']:,.0f} samples/s: "
              f"{ratio:.2f}× and {rates['cached'] / rates['memory']:.2f}×")
    return Row("streaming with 2 loader workers", result, "ran" if ctx.dry else "PASS")


def check_precision(ctx: Context) -> Row:
    variants = {"fp32": {}, "bf16": {"precision": "bf16"}, "fp16": {"precision": "fp16"},
                "channels_last": {"channels_last": True}}
    rates, losses = {}, {}
    for name, fields in variants.items():
        summary = trained(config(ctx, **fields))
        rates[name], losses[name] = summary["samples_per_s"], summary["last_loss"]
    finite = all(math.isfinite(v) for v in losses.values())
    result = f"{ctx.sizes.model}: fp32 {rates['fp32']:,.0f} samples/s; " + ", ".join(
        f"{k} {rates[k] / rates['fp32']:.2f}×" for k in variants if k != "fp32")
    if not finite:
        result += f"; non-finite loss: {losses}"
    return Row("bf16, fp16 + grad scaler, channels_last vs fp32", result, ctx.judged(finite))


CHECKS: dict[str, Callable[[Context], Row]] = {
    "tests": check_tests, "trainer": check_trainer, "max_batch": check_max_batch,
    "stream": check_stream, "precision": check_precision,
}


# -------------------------------------------------------------------------------- report
def run_checks(ctx: Context, names: list[str]) -> list[Row]:
    """Run the named checks in order; a check that raises becomes a FAIL row quoting the error."""
    for name in names:
        start = time.perf_counter()
        try:
            row = CHECKS[name](ctx)
        except Exception as err:  # one broken check must not hide the others' results
            message = " ".join(str(err).split())[:300]
            row = Row(name, f"{type(err).__name__}: {message}", "FAIL")
        finally:
            if ctx.device == "cuda":
                torch.cuda.empty_cache()
        row.seconds = time.perf_counter() - start
        print(f"  {row.verdict:4}  {row.check}: {row.result} ({row.seconds:.0f} s)", flush=True)
        ctx.rows.append(row)
    return ctx.rows


def device_name(device: str) -> str:
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        return f"{props.name}, {props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}"
    return f"CPU ({platform.processor() or platform.machine()}), dry run"


def markdown(ctx: Context, rows: list[Row], total: float) -> str:
    lines = [f"## GPU check: {device_name(ctx.device)}", "",
             f"{time.strftime('%Y-%m-%d %H:%M')}, torch {torch.__version__}, python "
             f"{platform.python_version()}, `python bench/gpu_check.py{' --dry-run' if ctx.dry else ''}`, "
             f"{total:.0f} s in all", "",
             "| check | result | verdict | s |", "|---|---|---|---|"]
    lines += [f"| {r.check} | {r.result.replace('|', '/')} | {r.verdict} | {r.seconds:.0f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="the same code on the CPU, tiny sizes")
    parser.add_argument("--checks", default=",".join(CHECKS), help=f"comma-separated, of {', '.join(CHECKS)}")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="folder for the table")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.checks.split(",") if n.strip()]
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        print(f"gpu_check: unknown check(s) {', '.join(unknown)}; choose from {', '.join(CHECKS)}.",
              file=sys.stderr)
        return 2
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: no CUDA device is visible to torch "
              f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); run it on a GPU machine, "
              "or with --dry-run to check the script on the CPU.", file=sys.stderr)
        return 2
    ctx = Context("cpu" if args.dry_run else "cuda", args.dry_run, DRY if args.dry_run else GPU)
    print(f"gpu_check on {device_name(ctx.device)}", flush=True)
    start = time.perf_counter()
    rows = run_checks(ctx, names)
    table = markdown(ctx, rows, time.perf_counter() - start)
    args.out.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", device_name(ctx.device).split(",")[0]).strip("-").lower()
    path = args.out / f"gpu_check-{slug}-{time.strftime('%Y%m%d-%H%M%S')}.md"
    path.write_text(table)
    print("\n" + table + f"\nwritten to {path}")
    return 1 if any(r.verdict == "FAIL" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

"""The data pipelines on a generated image folder: peak memory and samples/s, memory vs stream.

Generates (in a temporary folder, 2 processes) a folder of 10,000 JPEG images of 256x256 px in
10 classes (a class colour and stripe over noise) and a 1,000-image one, then trains each
configuration in a fresh subprocess so its peak RSS is its own (``os.wait4``: the largest
process of the run's tree, loader processes included):

* memory, stream with 0 / 1 / 2 loader processes, and stream with the decoded cache, on a
  LeNet-5 at 32 px, batch 64, 1 torch thread, ``--steps`` steps;
* stream on 1,000 vs 10,000 images: target, peak RSS within 10 %;
* a 4-run ``batchlab sweep`` (local pool of 2) with ``data.cache`` on a fresh cache folder,
  every process counting its image decodes (a ``sitecustomize`` wraps batchlab's one decoder,
  ``batchlab.data.images.read_image``, before anything imports it):
  target, each image decoded once;
* memory vs stream with 2 loader processes on alexnet_small, whose step costs more than
  decoding a batch: target, stream >= 0.8x memory samples/s;
* speed at 64 px (``--sections speed``): the zoo's small CNN (lenet5: two 3x3 convs, max-pool,
  a 128-unit layer) at 64 px, batch 64, on a 2,000-image folder, three configurations in
  ``--rounds`` interleaved rounds (the order rotating each round), each configuration's
  samples/s the median of its rounds: memory, stream with the decoded cache (built before the
  first round), and stream without it with 2 loader processes. Targets: cached stream >= 0.9x
  memory, uncached stream with 2 workers >= 0.8x memory.

    python bench/data_pipeline.py                                 # ~5 min expected on 2 quiet cores
    python bench/data_pipeline.py --steps 40 --heavy-steps 20     # shorter
    python bench/data_pipeline.py --sections speed                # 64 px only (35 min at load 11-20)

Nearly all of the time is JPEG decoding (about 75,000 decodes in all), so on a busy machine
it takes several times longer (23 minutes at a load average of 7-19 on 2 cores).

Configurations run one after another, so on a shared machine their timings are noisy; the
load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
from _common import load_line, machine_line, median, print_table

HERE = Path(__file__).resolve().parent
CLASSES = 10
SOURCE_PX = 256
IMAGE_SIZE = 32
BATCH = 64
RSS_TOLERANCE = 0.10
SPEED_TARGET = 0.8
CACHED_TARGET = 0.9  # the cached stream against memory, at 64 px
SPEED_PX = 64
SPEED_IMAGES = 2000
SITECUSTOMIZE = """\
import os
if os.environ.get("BENCH_DECODE_LOG"):
    import batchlab.data.images as _images
    _real, _log = _images.read_image, os.environ["BENCH_DECODE_LOG"]

    def _counted(*args, **kwargs):
        fd = os.open(_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, b"x")  # one byte per decode; O_APPEND keeps concurrent writers whole
        os.close(fd)
        return _real(*args, **kwargs)

    _images.read_image = _counted
"""


# --------------------------------------------------------------------------- data


def _write_images(job: tuple[str, int, int]) -> None:
    """Images ``start .. start + count`` of a folder: class = index % CLASSES."""
    from PIL import Image

    root, start, count = job
    rng = np.random.default_rng(start)
    ramp = np.linspace(0, 120, SOURCE_PX, dtype=np.float32)
    for i in range(start, start + count):
        label = i % CLASSES
        pixels = rng.integers(0, 60, (SOURCE_PX, SOURCE_PX, 3)).astype(np.float32)
        pixels[..., label % 3] += ramp[None, :] if label < 5 else ramp[:, None]
        stripe = (label * SOURCE_PX) // CLASSES
        pixels[stripe : stripe + SOURCE_PX // CLASSES] += 70
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(
            Path(root) / f"c{label}" / f"{i:05d}.jpg", quality=85)


def make_folder(root: Path, n: int) -> Path:
    """A folder of ``n`` JPEG images in CLASSES class sub-folders, written by 2 processes."""
    for label in range(CLASSES):
        (root / f"c{label}").mkdir(parents=True, exist_ok=True)
    chunk = 250
    with Pool(2) as pool:
        pool.map(_write_images, [(str(root), s, min(chunk, n - s)) for s in range(0, n, chunk)])
    return root


# --------------------------------------------------------------------------- one configuration


def child(args: dict[str, Any]) -> None:
    """Train one configuration in this (fresh) process and print its numbers as JSON."""
    sys.path.insert(0, str(HERE))
    from _common import run_config, train_collect

    config = run_config(args["data"], args["model"], args["train"])
    start = time.perf_counter()
    ended, _ = train_collect(config)
    print(json.dumps({"samples_per_s": ended.summary["samples_per_s"],
                      "val_acc": ended.summary.get("final_val_acc"),
                      "wall_s": time.perf_counter() - start}))


def measure(name: str, args: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Run ``child(args)`` in a fresh interpreter: its JSON, peak RSS (MiB) and decodes."""
    log = Path(env["BENCH_DECODE_LOG"])
    log.unlink(missing_ok=True)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, __file__, "--child", json.dumps(args)],
                                stdout=out, stderr=err, text=True, env=env)
        # the child's rusage includes every descendant it reaped: ru_maxrss is the largest
        # process of the run's tree (its loader processes included)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{name} failed:\n{err.read()[-3000:]}")
        result = json.loads(out.read().strip().splitlines()[-1])
    result["rss_mib"] = usage.ru_maxrss / 1024
    result["decodes"] = log.stat().st_size if log.exists() else 0
    print(f"  {name}: {result['samples_per_s']:.0f} samples/s, peak RSS "
          f"{result['rss_mib']:.0f} MiB, {result['decodes']} decodes, {result['wall_s']:.0f} s",
          flush=True)
    return result


def sweep(name: str, folder: Path, cache: Path, env: dict[str, str], steps: int) -> int:
    """A 4-run ``batchlab sweep`` (4 seeds, local pool of 2) with the decoded cache in the fresh
    folder ``cache``; returns the decodes every process of it made together."""
    log = Path(env["BENCH_DECODE_LOG"])
    log.unlink(missing_ok=True)
    spec = cache.parent / "sweep.toml"
    spec.write_text(f"""name = "bench-cache"
[data]
name = "image_folder"
path = "{folder}"
image_size = {IMAGE_SIZE}
val_fraction = 0.05
pipeline = "stream"
cache = true
workers = 1
cache_dir = "{cache}"
[model]
name = "lenet5"
[train]
batch_size = {BATCH}
steps = {steps}
lr = 0.01
threads = 1
checkpoint = false
[sweep.grid]
"train.seed" = [0, 1, 2, 3]
""")
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "batchlab", "sweep", str(spec), "--store",
                          str(cache.parent / "sweep.db"), "--workers", "2"],
                         capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{res.stderr[-3000:]}")
    decodes = log.stat().st_size if log.exists() else 0
    print(f"  {name}: {decodes} decodes, {time.perf_counter() - start:.0f} s", flush=True)
    return decodes


# --------------------------------------------------------------------------- main


def config(folder: Path, cache_dir: Path, steps: int, model: str = "lenet5",
           image_size: int = IMAGE_SIZE, **data: Any) -> dict[str, Any]:
    return {
        "data": {"name": "image_folder", "path": str(folder), "image_size": image_size,
                 "val_fraction": 0.02, "cache_dir": str(cache_dir), **data},
        "model": {"name": model},
        # evaluation only at the end (and the start): its decoding is not training speed
        "train": {"batch_size": BATCH, "steps": steps, "lr": 0.01, "threads": 1,
                  "checkpoint": False},
    }


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def speed(tmp: Path, env: dict[str, str], steps: int, rounds: int,
          images: int = SPEED_IMAGES) -> None:
    """The 64 px speed targets (module doc): interleaved rounds, medians, PASS/FAIL."""
    folder = make_folder(tmp / "speed", images)
    cache = tmp / "cache-speed"
    plan = {
        "memory": config(folder, cache, steps, image_size=SPEED_PX, pipeline="memory", cache=True),
        "stream, cached": config(folder, cache, steps, image_size=SPEED_PX, pipeline="stream",
                                 cache=True, workers=2),
        "stream, 2 workers, no cache": config(folder, cache, steps, image_size=SPEED_PX,
                                              pipeline="stream", workers=2),
    }
    # build the cache first (one short run), so no timed round pays for it
    measure("building the cache", config(folder, cache, 2, image_size=SPEED_PX,
                                         pipeline="stream", cache=True, workers=2), env)
    names = list(plan)
    speeds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:  # rotate the order
            speeds[name].append(measure(f"round {r + 1}, {name}", plan[name], env)["samples_per_s"])
    mid = {name: median(values) for name, values in speeds.items()}
    base = mid["memory"]
    print()
    print(f"lenet5 at {SPEED_PX} px, batch {BATCH}, {steps} steps, 1 torch thread, "
          f"{images:,} JPEGs of {SOURCE_PX} px, {rounds} interleaved rounds (median):")
    print_table(["configuration", "samples/s (median)", "x memory", "rounds"], [
        [name, mid[name], mid[name] / base, " ".join(f"{v:.0f}" for v in speeds[name])]
        for name in names])
    cached, plain = mid["stream, cached"] / base, mid["stream, 2 workers, no cache"] / base
    print()
    print_table(["target", "measured", "aim", "verdict"], [
        ["stream with the decoded cache / memory", f"{cached:.2f}x", f">= {CACHED_TARGET}x",
         verdict(cached >= CACHED_TARGET)],
        ["stream, 2 loader workers, no cache / memory", f"{plain:.2f}x", f">= {SPEED_TARGET}x",
         verdict(plain >= SPEED_TARGET)],
    ])


def memory_section(tmp: Path, env: dict[str, str], args: argparse.Namespace) -> None:
    """Peak RSS and decodes per configuration, the cached sweep, alexnet_small (module doc)."""
    start = time.perf_counter()
    big = make_folder(tmp / "big", args.images)
    small = make_folder(tmp / "small", args.images // 10)
    print(f"generated {args.images:,} + {args.images // 10:,} JPEGs of {SOURCE_PX} px in "
          f"{time.perf_counter() - start:.0f} s", flush=True)

    def cached_dir(name: str) -> Path:
        return tmp / f"cache-{name}"

    rows: dict[str, dict[str, Any]] = {}
    plan = [
        ("memory", config(big, cached_dir("m"), args.steps, pipeline="memory")),
        ("stream, 0 workers", config(big, cached_dir("s0"), args.steps, pipeline="stream")),
        ("stream, 1 worker", config(big, cached_dir("s1"), args.steps, pipeline="stream",
                                    workers=1)),
        ("stream, 2 workers", config(big, cached_dir("s2"), args.steps, pipeline="stream",
                                     workers=2)),
        ("stream, cached (building it)", config(big, cached_dir("c"), args.steps,
                                                pipeline="stream", cache=True, workers=2)),
        ("stream, cached (built)", config(big, cached_dir("c"), args.steps,
                                          pipeline="stream", cache=True, workers=2)),
        (f"stream, 0 workers, {args.images // 10:,} images",
         config(small, cached_dir("small"), args.steps, pipeline="stream")),
    ]
    for name, cfg in plan:
        rows[name] = measure(name, cfg, env)
    decodes = sweep("4-run sweep with the cache", small, cached_dir("sweep"), env, 20)
    heavy = {name: measure(f"alexnet_small, {name}", config(
        big, cached_dir(f"h{i}"), args.heavy_steps, "alexnet_small", **data), env)
        for i, (name, data) in enumerate([("memory", {"pipeline": "memory"}),
                                          ("stream, 2 workers",
                                           {"pipeline": "stream", "workers": 2})])}
    print()
    print(f"LeNet-5 at {IMAGE_SIZE} px, batch {BATCH}, {args.steps} steps, 1 torch thread, "
          f"{args.images:,} JPEGs of {SOURCE_PX} px:")
    memory_speed = rows["memory"]["samples_per_s"]
    print_table(["configuration", "samples/s", "x memory", "peak RSS MiB", "decodes", "wall s"], [
        [name, r["samples_per_s"], r["samples_per_s"] / memory_speed, r["rss_mib"], r["decodes"],
         r["wall_s"]] for name, r in rows.items()])
    print()
    rss_big = rows["stream, 0 workers"]["rss_mib"]
    rss_small = rows[f"stream, 0 workers, {args.images // 10:,} images"]["rss_mib"]
    growth = rss_big / rss_small - 1
    small_n = args.images // 10
    ratio = heavy["stream, 2 workers"]["samples_per_s"] / heavy["memory"]["samples_per_s"]
    step_ms = 1000 * BATCH / heavy["memory"]["samples_per_s"]
    print_table(["target", "measured", "aim", "verdict"], [
        [f"stream peak RSS, {args.images:,} vs {args.images // 10:,} images",
         f"{rss_big:.0f} vs {rss_small:.0f} MiB ({growth:+.1%})", f"within {RSS_TOLERANCE:.0%}",
         verdict(abs(growth) <= RSS_TOLERANCE)],
        ["4-run cached sweep: decodes per image", f"{decodes / small_n:.2f} ({decodes:,} decodes)",
         "1", verdict(decodes == small_n)],
        [f"alexnet_small ({step_ms:.0f} ms/step): stream 2 workers / memory",
         f"{ratio:.2f}x", f">= {SPEED_TARGET}x", verdict(ratio >= SPEED_TARGET)],
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="training steps per configuration")
    parser.add_argument("--heavy-steps", type=int, default=40, help="steps of the alexnet_small pair")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--sections", default="memory,speed",
                        help="comma-separated: memory (RSS, decodes, alexnet), speed (64 px)")
    parser.add_argument("--speed-steps", type=int, default=30, help="steps per 64 px run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds at 64 px")
    parser.add_argument("--speed-images", type=int, default=SPEED_IMAGES)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    sections = set(args.sections.split(","))
    if unknown := sections - {"memory", "speed"}:
        parser.error(f"unknown sections {sorted(unknown)}: use memory and/or speed")
    print(machine_line(), flush=True)
    with tempfile.TemporaryDirectory(prefix="batchlab-bench-data-") as tmp_name:
        tmp = Path(tmp_name)
        hooks = tmp / "hooks"
        hooks.mkdir()
        (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
        env = {**os.environ, "BENCH_DECODE_LOG": str(tmp / "decodes.log"),
               "PYTHONPATH": os.pathsep.join(
                   [str(hooks), str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")])}
        if "memory" in sections:
            memory_section(tmp, env, args)
        if "speed" in sections:
            speed(tmp, env, args.speed_steps, args.rounds, args.speed_images)
    print(load_line())


if __name__ == "__main__":
    main()

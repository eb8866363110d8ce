"""One run over 2 CPU processes x 1 thread (DDP, gloo) vs 1 process x 2 threads, and the
communication share of a DDP step.

**Throughput** — LeNet-5 (the zoo's conv net) at global batch 256 on generated 1x28x28 data,
batchlab's own trainer: ``train.devices = 2`` (``strategy = "ddp"``: 2 processes, 128 each, 1
torch thread each) against one process with 2 torch threads. The two are interleaved over
``--rounds`` rounds (order alternating) and each one's samples/s is the median over rounds
of the trainer's own ``summary["samples_per_s"]`` (rank 0's training time: steps only,
evaluation excluded; the DDP run's includes its waits in all-reduces).

**Communication share** — two gloo ranks on loopback with the same model at 128 each time
``--steps`` full steps (forward, backward with DDP's bucketed all-reduce, optimizer step) and
as many under ``no_sync()`` (no all-reduce), interleaved in blocks; the share is
(synced - unsynced) / synced of the median step times: the communication a step waits for,
after what DDP overlaps with the backward pass.

The machine is shared: every table prints the load average before and after, and a load above
the cores means the numbers are noisy (two ranks need both cores at once at every all-reduce).

    python bench/ddp.py               # ~2-4 minutes on 2 cores
    python bench/ddp.py --rounds 5 --train-steps 120
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
import torch.multiprocessing as tmp
from _common import load_line, machine_line, median, print_table, run_config

from batchlab.events import COMPLETED
from batchlab.execute.function import train_task

BATCH = 256
DATA = {"name": "synthetic", "shape": [1, 28, 28], "classes": 10, "size": 2048}
MODEL = {"name": "lenet5"}


def throughput(devices: int, threads: int, steps: int) -> float:
    """samples/s of one run at global batch ``BATCH`` over ``devices`` processes; this process
    has ``threads`` torch threads (a DDP run divides them among its ranks)."""
    ddp = {"devices": devices, "strategy": "ddp"} if devices > 1 else {}
    config = run_config(DATA, MODEL, {"batch_size": BATCH, "steps": steps, "eval_every": steps,
                                      "lr": 0.01, "checkpoint": False, **ddp})
    torch.set_num_threads(threads)
    end = train_task(config, lambda event: None)
    if end.status != COMPLETED:
        raise RuntimeError(f"run over {devices} processes ended {end.status}: {end.error}")
    return float(end.summary["samples_per_s"])


def _comm_rank(rank: int, port: int, steps: int, block: int, out: Any) -> None:
    """One of two ranks timing synced and ``no_sync`` steps (rank 0 reports them)."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from batchlab.models import build_model
    from batchlab.spec import ModelSpec

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    torch.manual_seed(0)
    model = DistributedDataParallel(build_model(ModelSpec(name="lenet5"), (1, 28, 28), 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(BATCH // 2, 1, 28, 28), torch.randint(0, 10, (BATCH // 2,))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    times: dict[str, list[float]] = {"synced": [], "no_sync": []}
    for _ in range(3):  # warm-up: allocator, gloo buffers
        step()
    while len(times["synced"]) < steps:
        for kind in ("synced", "no_sync"):
            for _ in range(block):
                dist.barrier()  # both ranks start the step together
                t0 = time.perf_counter()
                if kind == "synced":
                    step()
                else:
                    with model.no_sync():
                        step()
                times[kind].append(time.perf_counter() - t0)
    if rank == 0:
        out.put({k: median(v) for k, v in times.items()})
    dist.destroy_process_group()


def comm_share(steps: int, block: int = 5) -> dict[str, float]:
    from batchlab.train.distributed import free_port

    ctx = tmp.get_context("spawn")
    out = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_comm_rank, args=(r, port, steps, block, out)) for r in range(2)]
    for p in procs:
        p.start()
    result = out.get(timeout=600)
    for p in procs:
        p.join()
    result["share"] = (result["synced"] - result["no_sync"]) / result["synced"]
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per variant")
    parser.add_argument("--train-steps", type=int, default=60, help="steps of each timed run")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per kind (comm share)")
    args = parser.parse_args(argv)
    print(machine_line())
    print(f"LeNet-5, global batch {BATCH}, generated 1x28x28 data, {args.train_steps} steps a run")

    throughput(2, 2, 5)  # start the ranks' fork server and warm both paths before timing
    throughput(1, 2, 5)
    rates: dict[str, list[float]] = {"1 process x 2 threads": [], "2 processes x 1 thread (DDP)": []}
    for r in range(args.rounds):
        order = [(1, "1 process x 2 threads"), (2, "2 processes x 1 thread (DDP)")]
        for devices, name in order if r % 2 == 0 else order[::-1]:
            rates[name].append(throughput(devices, 2, args.train_steps))
    base = median(rates["1 process x 2 threads"])
    print_table(["variant", "samples/s (median)", "rounds", "ratio"],
                [[name, f"{median(v):,.0f}", " ".join(f"{x:,.0f}" for x in v),
                  f"{median(v) / base:.2f}x"] for name, v in rates.items()])
    print(load_line())

    c = comm_share(args.steps)
    print(f"\ncommunication share of a DDP step (2 ranks x 128, gloo on loopback, "
          f"{args.steps} steps each):")
    print_table(["step", "median ms"], [["synced (all-reduce)", f"{1e3 * c['synced']:.1f}"],
                                        ["no_sync (none)", f"{1e3 * c['no_sync']:.1f}"]])
    print(f"share of the step spent waiting for communication: {c['share']:.0%}")
    print(load_line())


if __name__ == "__main__":
    main()

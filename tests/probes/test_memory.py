"""memory.py: human sizes, OOM recognition, and the step memory measure (CPU accounting, CUDA)."""

import pytest
import torch
from torch import nn

from batchlab.probes.common import ProbeError, fresh_setup
from batchlab.probes.memory import format_size, is_oom, parse_size, step_memory
from batchlab.spec import RunConfig, spec_from_dict


def config(model=None, shape=(12,), device="cpu"):
    s = spec_from_dict({
        "data": {"name": "synthetic", "shape": list(shape), "classes": 3, "size": 300},
        "model": model or {"name": "mlp", "hidden": [16]},
        "train": {"threads": 1, "device": device},
    })
    return RunConfig(data=s.data, model=s.model, train=s.train)


@pytest.mark.parametrize(("text", "expected"), [
    ("4GiB", 4 * 2**30), ("512MiB", 512 * 2**20), ("2 kib", 2048), ("1KB", 1000),
    ("1.5GB", 1_500_000_000), ("1.5GiB", 3 * 2**29), ("100", 100), ("100B", 100),
    ("3TiB", 3 * 2**40), (" 7 MB ", 7_000_000), (4096, 4096),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["4G", "abc", "", "-1GiB", "1.5", "0", "0MiB", "GiB", "4 GiBs", True])
def test_parse_size_rejects_bad_text_and_lists_the_forms(text):
    with pytest.raises(ProbeError, match="GiB"):
        parse_size(text)


def test_format_size():
    assert format_size(512) == "512 B"
    assert format_size(1536) == "1.5 KiB"
    assert format_size(3 * 2**30) == "3.0 GiB"


@pytest.mark.parametrize(("err", "oom"), [
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate "
                  "memory: you tried to allocate 1099511627776 bytes. Error code 12"), True),
    (RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 4 bytes."), True),
    (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
    (RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"), True),
    (MemoryError(), True),
    (RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x3 and 5x6)"), False),
    (ValueError("DefaultCPUAllocator: can't allocate memory"), False),  # not an allocator error type
    (KeyboardInterrupt(), False),
])
def test_is_oom_is_precise(err, oom):
    assert is_oom(err) is oom


def small_mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))


def test_cpu_accounting_of_a_small_mlp_matches_the_analysis():
    model = small_mlp()
    params = (6 * 5 + 5 + 5 * 3 + 3) * 4  # float32 weights and biases
    # per sample: the batch (6 float32 inputs + an int64 label), the ReLU output saved for
    # backward (5 float32), log_softmax's saved output (3 float32)
    per_sample = 6 * 4 + 8 + 5 * 4 + 3 * 4
    m = {b: step_memory(model, b, input_shape=(6,), num_classes=3) for b in (1, 2, 37)}
    for b, measure in m.items():
        d = measure.detail
        assert measure.method == "cpu_accounting" and d["batch_size"] == b
        assert d["model"] == d["grads"] == d["optimizer_state"] == params  # SGD momentum buffers
        assert d["batch"] == b * (6 * 4 + 8)
        assert measure.bytes == d["accounted"] == sum(
            d[k] for k in ("model", "grads", "optimizer_state", "batch", "activations"))
    constant = m[1].bytes - per_sample
    assert 3 * params <= constant <= 3 * params + 16  # + the loss and NLL's total weight scalar
    assert [m[b].bytes for b in (2, 37)] == [constant + b * per_sample for b in (2, 37)]
    # the measure is deterministic; only the resident-set cross-checks (readings of the OS:
    # the growth may differ by a page between two steps, and the process's peak only rises)
    # are left out
    again = step_memory(model, 37, input_shape=(6,), num_classes=3)
    assert again.bytes == m[37].bytes and again.method == m[37].method
    os_readings = {"rss_growth", "rss_peak"}
    assert {k: v for k, v in again.detail.items() if k not in os_readings} == {
        k: v for k, v in m[37].detail.items() if k not in os_readings}


def test_adam_state_is_counted():
    m = step_memory(small_mlp(), 4, input_shape=(6,), num_classes=3,
                    make_optimizer=lambda p: torch.optim.Adam(p, lr=1e-3))
    assert m.detail["optimizer_state"] >= 2 * m.detail["model"]  # exp_avg and exp_avg_sq


def test_step_memory_leaves_the_callers_model_and_rng_untouched():
    model = small_mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    step_memory(model, 8, input_shape=(6,), num_classes=3)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())
    assert all(p.grad is None for p in model.parameters())


def test_step_memory_on_a_setup_is_linear_in_the_batch_for_a_conv_net():
    cfg = config({"name": "lenet5"}, shape=(1, 8, 8))
    m = {b: step_memory(fresh_setup(cfg), b).bytes for b in (1, 2, 9)}
    assert m[9] - m[1] == 8 * (m[2] - m[1]) > 0


def test_rss_cross_check_is_reported():
    d = step_memory(small_mlp(), 4, input_shape=(6,), num_classes=3).detail
    assert d["rss_method"] in ("vmhwm_reset", "ru_maxrss_lower_bound")
    assert d["rss_growth"] is None or d["rss_growth"] >= 0
    if d["rss_method"] == "vmhwm_reset":  # Linux: the process's resident peak in the step
        from batchlab.probes.host import resident_bytes

        assert d["rss_peak"] >= d["rss_growth"] and d["rss_peak"] > 0
        assert resident_bytes() > 0


def test_bad_calls():
    with pytest.raises(ProbeError, match="input_shape"):
        step_memory(small_mlp(), 4)
    with pytest.raises(ProbeError, match="at least 1"):
        step_memory(small_mlp(), 0, input_shape=(6,), num_classes=3)
    with pytest.raises(ProbeError, match="larger than the"):
        step_memory(fresh_setup(config()), 10_000)


@pytest.mark.cuda
def test_cuda_peak_covers_the_accounted_tensors_and_grows_with_the_batch():
    setup = fresh_setup(config(device="cuda"))
    small, large = step_memory(setup, 4), step_memory(fresh_setup(config(device="cuda")), 200)
    for m in (small, large):
        assert m.method == "cuda_max_allocated"
        assert m.bytes == m.detail["peak"] >= m.detail["accounted"]
        assert m.detail["reserved_peak"] >= m.bytes
    assert large.bytes > small.bytes
    assert large.detail["activations"] > small.detail["activations"]


def test_probes_measure_the_step_as_the_run_trains_it_bf16_and_channels_last():
    def setup(**train):
        s = spec_from_dict({"data": {"name": "synthetic", "shape": [1, 28, 28], "size": 300},
                            "model": {"name": "lenet5"}, "train": {"device": "cpu", **train}})
        return fresh_setup(RunConfig(data=s.data, model=s.model, train=s.train))

    fp32, bf16 = step_memory(setup(), 128), step_memory(setup(precision="bf16"), 128)
    # autocast keeps LeNet-5's conv activations in bfloat16: a third less memory at batch 128
    assert bf16.detail["activations"] < 0.8 * fp32.detail["activations"]
    assert bf16.bytes < fp32.bytes
    cl = setup(channels_last=True)  # the model and every batch in channels_last, as in a run
    assert any(p.ndim == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
               for p in cl.model.parameters())
    xb, _ = cl.batch(torch.arange(8), torch.Generator())
    assert xb.shape == (8, 1, 28, 28) and xb.is_contiguous(memory_format=torch.channels_last)

"""augment_batch: random crop and flip, vectorised, deterministic given the generator; the same
distributions as torchvision.transforms.v2."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from batchlab.data import augment_batch
from batchlab.data.augment import RESIZED_CROP_RATIO, RESIZED_CROP_SCALE, crop_resize, resized_crop_boxes


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("shape", [(16, 3, 8, 10), (16, 2, 20), (16, 12)])
@pytest.mark.parametrize("ops", [["crop"], ["flip"], ["crop", "flip"], ["flip", "crop"]])
def test_shape_dtype_kept_and_deterministic(shape: tuple[int, ...], ops: list[str]) -> None:
    x = torch.randn(shape)
    before = x.clone()
    a = augment_batch(x, ops, 2, gen(5))
    b = augment_batch(x, ops, 2, gen(5))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, augment_batch(x, ops, 2, gen(6)))
    assert torch.equal(x, before)  # the input batch is never modified


def test_crop_with_padding_zero_is_identity() -> None:
    x = torch.randn(8, 3, 6, 6)
    assert torch.equal(augment_batch(x, ["crop"], 0, gen()), x)


def test_crop_matches_a_per_example_reference() -> None:
    x, p = torch.randn(10, 3, 7, 9), 3
    out = augment_batch(x, ["crop"], p, gen(1))
    offsets = torch.randint(0, 2 * p + 1, (2, 10), generator=gen(1))  # the same draws
    padded = F.pad(x, (p, p, p, p))
    for i in range(10):
        dy, dx = offsets[:, i].tolist()
        assert torch.equal(out[i], padded[i, :, dy : dy + 7, dx : dx + 9])


def test_crop_of_signals_shifts_along_length() -> None:
    x, p = torch.arange(2 * 1 * 6, dtype=torch.float32).view(2, 1, 6), 2
    out = augment_batch(x, ["crop"], p, gen(3))
    (offsets,) = torch.randint(0, 2 * p + 1, (1, 2), generator=gen(3))
    padded = F.pad(x, (p, p))
    for i in range(2):
        assert torch.equal(out[i], padded[i, :, offsets[i] : offsets[i] + 6])


@pytest.mark.parametrize("shape", [(64, 3, 5, 4), (64, 2, 9)])
def test_flip_mirrors_a_random_half_exactly(shape: tuple[int, ...]) -> None:
    x = torch.randn(shape)
    out = augment_batch(x, ["flip"], 4, gen(2))
    flipped = [torch.equal(out[i], x[i].flip(-1)) for i in range(len(x))]
    kept = [torch.equal(out[i], x[i]) for i in range(len(x))]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 16 < sum(flipped) < 48  # about half, per example
    chosen = torch.rand(64, generator=gen(2)) < 0.5
    assert flipped == chosen.tolist()


def test_bad_input_rank() -> None:
    with pytest.raises(ValueError, match="augment_batch needs"):
        augment_batch(torch.zeros(4), ["flip"], 1, gen())


@pytest.mark.cuda
def test_same_result_on_cuda_as_on_cpu() -> None:
    x = torch.randn(32, 3, 8, 8)
    cpu = augment_batch(x, ["crop", "flip"], 2, gen(9))
    cuda = augment_batch(x.cuda(), ["crop", "flip"], 2, gen(9))
    assert cuda.device.type == "cuda" and torch.equal(cuda.cpu(), cpu)


def test_resized_crop_is_deterministic_and_stretches_a_sub_box():
    x = torch.arange(4 * 3 * 16 * 16, dtype=torch.float32).view(4, 3, 16, 16)
    a = augment_batch(x, ["resized_crop"], 0, gen(1))
    assert a.shape == x.shape and torch.equal(a, augment_batch(x, ["resized_crop"], 0, gen(1)))
    assert not torch.equal(a, augment_batch(x, ["resized_crop"], 0, gen(2)))
    for i in range(4):  # a box of the image stretched: values stay within the image's range,
        # and a box smaller than the image spans a narrower range of its (increasing) pixels
        assert x[i].min() <= a[i].min() and a[i].max() <= x[i].max()
        assert a[i].max() - a[i].min() < x[i].max() - x[i].min()


def test_resized_crop_needs_images():
    with pytest.raises(ValueError, match="resized_crop needs images"):
        augment_batch(torch.randn(4, 2, 9), ["resized_crop"], 0, gen())


# ---- the same distributions as torchvision.transforms.v2 (the same box for a seed need not hold)
def ks(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    points = np.sort(np.concatenate([a, b]))
    cdf = [np.searchsorted(np.sort(s), points, side="right") / s.size for s in (a, b)]
    return float(np.abs(cdf[0] - cdf[1]).max())


@pytest.mark.parametrize(("height", "width"), [(32, 32), (24, 40)])
def test_resized_crop_boxes_have_torchvisions_distribution(height, width):
    n = 20000
    ours = np.stack([t.numpy() for t in resized_crop_boxes(n, height, width, gen(3))], 1)
    torch.manual_seed(3)
    rrc = v2.RandomResizedCrop((height, width), scale=RESIZED_CROP_SCALE, ratio=RESIZED_CROP_RATIO)
    image = torch.zeros(3, height, width)
    theirs = np.array([[p["top"], p["left"], p["height"], p["width"]]
                       for p in (rrc.make_params([image]) for _ in range(n))], dtype=np.float64)
    area = [b[:, 2] * b[:, 3] / (height * width) for b in (ours, theirs)]
    assert ks(*area) < 0.03  # the old clipped continuous boxes: 0.14 (mean area 0.62 vs 0.57)
    assert ks(np.log(ours[:, 3] / ours[:, 2]), np.log(theirs[:, 3] / theirs[:, 2])) < 0.03
    for column in (0, 1):  # where the box lies
        assert ks(ours[:, column], theirs[:, column]) < 0.03
    assert (ours[:, 0] + ours[:, 2] <= height).all() and (ours[:, 1] + ours[:, 3] <= width).all()


def test_a_box_is_stretched_as_torchvision_crops_and_resizes_it():
    x = torch.rand(1, 3, 32, 32)
    box = (torch.tensor([5.0]), torch.tensor([3.0]), torch.tensor([20.0]), torch.tensor([24.0]))
    ours = crop_resize(x, box)[0]
    theirs = TF.resized_crop(x[0], 5, 3, 20, 24, [32, 32], antialias=False)
    # equal inside; at the box's edges ours blends in the pixel beyond it, torchvision repeats
    # the edge pixel
    torch.testing.assert_close(ours[:, 2:-2, 2:-2], theirs[:, 2:-2, 2:-2], rtol=0, atol=1e-5)


def test_crop_and_flip_have_torchvisions_distribution():
    n, pad, size = 4000, 4, 16
    x = (torch.arange(size * size, dtype=torch.float32) + 1).view(1, 1, size, size)
    ours = augment_batch(x.expand(n, 1, size, size), ["crop"], pad, gen(5))[:, 0]
    torch.manual_seed(5)
    crop = v2.RandomCrop(size, padding=pad)
    theirs = torch.stack([crop(x[0])[0] for _ in range(n)])
    # output[pad, pad] is the image's pixel at the crop's offset: recover each offset
    for out in (ours, theirs):
        assert (out[:, pad, pad] > 0).all()
    offsets = [((o[:, pad, pad] - 1) // size, (o[:, pad, pad] - 1) % size) for o in (ours, theirs)]
    for axis in (0, 1):
        assert ks(offsets[0][axis].numpy(), offsets[1][axis].numpy()) < 0.04
    flipped = augment_batch(x.expand(n, 1, size, size), ["flip"], 0, gen(6))
    theirs_flipped = torch.stack([v2.RandomHorizontalFlip()(x[0]) for _ in range(n)])
    rates = [float((f[:, 0, 0, 0] != 1).float().mean()) for f in (flipped, theirs_flipped)]
    assert abs(rates[0] - 0.5) < 0.03 and abs(rates[1] - 0.5) < 0.03


def test_check_augment_refuses_resized_crop_off_images_and_notes_flat_features() -> None:
    from batchlab.data.augment import check_augment
    from batchlab.errors import SpecError

    with pytest.raises(SpecError, match=r"'resized_crop' needs image examples .* shape \(4,\)"):
        check_augment(["resized_crop"], (4,))
    assert check_augment(["resized_crop", "flip"], (3, 8, 8)) is None
    assert check_augment(["crop"], (1, 40)) is None  # a signal with its channel axis
    note = check_augment(["crop", "flip"], (4,))
    assert note is not None and "crop and flip on flat examples of 4 features" in note
    assert check_augment([], (4,)) is None

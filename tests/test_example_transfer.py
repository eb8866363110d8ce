"""The seed-style study runs from examples/mobilenet_transfer_imagefolder.toml: torchvision's
MobileNetV2 with weights from a local file, fine-tuned on an image folder at batch 16 to 128,
with the backbone frozen and not (issue 11, "Done when").

The test keeps the example's grid and settings and shrinks only what a CPU test cannot afford,
with --set: a generated 2-class folder of 160 small images, 32 px instead of 224, 1 epoch, and
a randomly initialised MobileNetV2 state dict saved locally as the "pretrained" weights.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image

import batchlab as bl

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mobilenet_transfer_imagefolder.toml"


def write_folder(root: Path, per_class: int = 80, size: int = 16) -> None:
    """Two classes told apart by colour: reddish and bluish noise."""
    rng = np.random.default_rng(0)
    for label, name in enumerate(("red", "blue")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 128, (size, size, 3), dtype=np.uint8)
            pixels[..., 0 if label == 0 else 2] += 127
            Image.fromarray(pixels).save(root / name / f"{i:03d}.png")


def run_example(tmp_path: Path, weights: Path, *extra: str) -> None:
    """Sweep the example on a generated folder with ``weights``, shrunk for a CPU test."""
    write_folder(tmp_path / "images")
    res = subprocess.run(
        [sys.executable, "-m", "batchlab", "sweep", str(EXAMPLE), "--store", str(tmp_path / "t.db"),
         "--set", f"data.path={tmp_path / 'images'}", "--set", f"model.weights={weights}",
         "--set", "data.image_size=32", "--set", "train.epochs=1", "--set", "train.threads=1", *extra],
        capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


def stored_configs(tmp_path: Path) -> list[dict]:
    """The example's 8 runs, all completed: batch 16 to 128, frozen and not; their configs."""
    with bl.open(tmp_path / "t.db") as db:
        runs = db.runs("mobilenet-transfer")
        runs = runs.to_dict("records") if hasattr(runs, "to_dict") else runs  # pandas or not
        assert sorted(r["batch_size"] for r in runs) == [16, 16, 32, 32, 64, 64, 128, 128]
        assert {r["status"] for r in runs} == {"completed"}
        configs = [db.store.run(r["run_id"]).config for r in runs]
    assert sorted(c["model"]["freeze"] for c in configs) == ["backbone"] * 4 + ["none"] * 4
    assert {c["data"]["image_size"] for c in configs} == {32}
    return configs


def test_transfer_example_trains_frozen_and_not_at_batch_16_to_128(tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "mobilenet_v2-random.pth"
    torch.save(torchvision.models.mobilenet_v2().state_dict(), weights)
    run_example(tmp_path, weights)
    assert {c["model"]["name"] for c in stored_configs(tmp_path)} == {"torchvision:mobilenet_v2"}

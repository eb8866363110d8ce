"""torchvision, timm and safetensors: imported only when a spec asks for them.

torchvision is a dependency, timm (``pip install "batchlab[timm]"``) and safetensors are
optional; ``import batchlab`` imports none of them. A missing or broken package is a
ModelError of one paragraph saying what to install. torchvision is the usual culprit: each
release is built for exactly one torch release, and a torchvision that does not match the
installed torch fails at import ("operator torchvision::nms does not exist"), so the advice
is always to install torch and torchvision together, in one pip command.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from types import ModuleType

from batchlab.errors import ModelError

# A pair known to work together (the one .ci/run installs); any matching pair does.
KNOWN_PAIR = "torch==2.14.1 torchvision==0.29.1"
_TOGETHER = (
    "install torch and torchvision together, in one command, so that they match (each "
    "torchvision release works only with the torch release it was built for): pip install torch "
    f"torchvision, or a known pair such as pip install {KNOWN_PAIR}"
)
_MATCH = f"Torchvision must match the installed torch: {_TOGETHER}"
_REPAIR = {"torchvision": _MATCH, "timm": _MATCH}  # timm imports torchvision
_INSTALL = {
    "torchvision": f"{_TOGETHER} (batchlab needs torchvision>=0.18)",
    "timm": f'pip install "batchlab[timm]" or pip install timm; timm needs torchvision, so {_TOGETHER}',
    "safetensors": "pip install safetensors (it comes with timm), or save the weights with "
                   "torch.save(model.state_dict(), 'weights.pth') instead",
}


def import_optional(package: str, wanted_by: str) -> ModuleType:
    """Import ``package`` (torchvision, timm, safetensors or one of their modules) for
    ``wanted_by`` (the spec field that needs it, e.g. "model.name = 'torchvision:resnet18'");
    raise ModelError saying what to install when it is missing or fails to import."""
    root = package.partition(".")[0]
    try:
        return importlib.import_module(package)
    except ModuleNotFoundError as err:
        if err.name == root:
            raise ModelError(
                f"{wanted_by} needs the {root} package, which is not installed in this "
                f"environment ({sys.executable}): {_INSTALL[root]}."
            ) from None
        failure: Exception = err  # a dependency of the package is missing: it is broken
    except Exception as err:  # e.g. RuntimeError from a torchvision built for another torch
        failure = err
    raise ModelError(
        f"{wanted_by} needs {root}, but {root} {_version(root)} is installed and fails "
        f"to import beside torch {_version('torch')}: {type(failure).__name__}: {failure}. "
        f"{_REPAIR.get(root, f'Reinstall it (pip install --force-reinstall {root})')}; then retry."
    ) from None


def _version(package: str) -> str:
    """The installed distribution's version, read without importing it."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown)"

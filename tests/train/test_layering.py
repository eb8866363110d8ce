"""Layering: the trainer sits below the probes, so nothing under batchlab.train imports them."""

import ast
from pathlib import Path

import batchlab.train

TRAIN = Path(batchlab.train.__file__).parent
# analysis/ reads the store, a layer above the trainer: a rule both need lives below both
# (batchlab.collapse, shared by the diagnosis and pruning)
FORBIDDEN = ("batchlab.probes", "batchlab.cli", "batchlab.analysis")


def imported_modules(source: str, package: str) -> set[str]:
    """Every module an ``import``/``from ... import`` names anywhere in ``source`` (functions and
    ``TYPE_CHECKING`` blocks included), relative imports resolved against ``package``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def package_of(path: Path) -> str:
    """``batchlab.train`` for train/loop.py, ``batchlab.train.sub`` for train/sub/x.py."""
    return ".".join(path.relative_to(TRAIN.parent.parent).parent.parts)


def test_the_scanner_sees_every_kind_of_import():
    source = ("import batchlab.probes.x\nfrom batchlab import probes\n"
              "def f():\n    from ..probes.noise_scale import measure_noise_scale\n")
    found = imported_modules(source, "batchlab.train")
    assert {"batchlab.probes.x", "batchlab.probes", "batchlab.probes.noise_scale"} <= found


def test_train_never_imports_probes_or_cli():
    offenders = {
        f"{path.relative_to(TRAIN.parent)}: {module}"
        for path in sorted(TRAIN.rglob("*.py"))
        for module in imported_modules(path.read_text(), package_of(path))
        if module.startswith(FORBIDDEN)
    }
    assert not offenders, f"train/ must not import probes/, cli/ or analysis/: {sorted(offenders)}"

"""Running the command line as a user does, from any folder, with this checkout's sources."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import batchlab

SRC = str(Path(batchlab.__file__).resolve().parents[1])


def env() -> dict[str, str]:
    """The environment with this checkout's sources first (absolute: tests change folder)."""
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join([SRC, *filter(None, [os.environ.get("PYTHONPATH")])])
    out["COLUMNS"] = "250"  # wide enough that a summary on several lines means a hard break
    return out


def batchlab_cli(*args, cwd=None, stdin: str | None = None) -> subprocess.CompletedProcess:
    """``python -m batchlab ARGS``."""
    return subprocess.run([sys.executable, "-m", "batchlab", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env(), input=stdin, timeout=300)


# `batchlab ARGS` in this process, then its exit code and whether torch was imported
WITHOUT_TORCH = """
import sys
sys.argv = ["batchlab", *sys.argv[1:]]
from batchlab.cli import main
code = 0
try:
    main()
except SystemExit as e:
    code = e.code
print("EXIT", code, "TORCH-LOADED" if "torch" in sys.modules else "NO-TORCH")
"""


def cli_without_torch(*args) -> tuple[str, subprocess.CompletedProcess]:
    """(``"EXIT <code> TORCH-LOADED|NO-TORCH"``, the process) of ``batchlab ARGS``."""
    res = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, *map(str, args)], capture_output=True,
                         text=True, env=env(), timeout=120)
    return res.stdout.strip().splitlines()[-1] if res.stdout.strip() else "", res


def as_module(folder: Path, name: str, source: str) -> tuple[list[str], dict[str, str]]:
    """(argv, env) running ``source`` as ``python -m name``, written to ``folder``: the way
    the end-to-end tests run the command line, whose exit status CPython treats its own way."""
    (folder / f"{name}.py").write_text(source)
    environ = env()
    environ["PYTHONPATH"] += os.pathsep + str(folder)
    return [sys.executable, "-m", name], environ


def ls_overview(store: Path, experiment: str) -> tuple[str, list[str]]:
    """``batchlab ls``'s header line and the numbers in ``experiment``'s row (its run counts)."""
    res = batchlab_cli("ls", "--store", store)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    header = next(line for line in lines if "name" in line)
    row = next(line for line in lines if f" {experiment} " in line)
    return header, re.findall(r"\d+", row)


# pip's console-script template (the __main__ guard matters: spawned workers re-import it)
CONSOLE_SCRIPT = """import re
import sys
from batchlab.cli import main
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(main())
"""


def console_script(folder: Path) -> Path:
    """A copy of what pip writes as the ``batchlab`` console script, in its own bin folder:
    run as a file, its folder (not the current one) is first on sys.path."""
    script = folder / "bin" / "batchlab"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(CONSOLE_SCRIPT)
    return script

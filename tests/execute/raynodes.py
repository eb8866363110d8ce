"""A real two-node Ray cluster on this machine, for the multi-node fault test: a head and a
second node, each a `ray start` of its own (own temp folder, own ports, 1 CPU), on loopback.

Every process of a node is found by its temp folder (or the cluster's GCS port) in its command
line, plus their descendants (the raylet's workers and agents), so the test kills exactly one
node, and cleans up exactly what it started, never another Ray instance on the machine.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import batchlab

# Ray's default health check notices a dead node after ~15 s; the test's cluster in ~1.5 s
FAST_FAILURE_DETECTION = {"RAY_health_check_period_ms": "500",
                          "RAY_health_check_failure_threshold": "3",
                          "RAY_health_check_initial_delay_ms": "0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_env() -> dict[str, str]:
    """The environment of the nodes and the driver: this checkout of batchlab importable by
    Ray's workers, no token authentication (Ray 2.5x turns it on for `ray start`, and a node
    started by hand would need the head's token), no usage stats."""
    src = str(Path(batchlab.__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, **FAST_FAILURE_DETECTION, "RAY_AUTH_MODE": "disabled",
            "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": f"{src}:{path}" if path else src}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def processes(marks: list[str]) -> set[int]:
    """Live processes whose command line holds one of ``marks``, with all their descendants
    (never this process)."""
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    found = {p for p in pids if any(m in _cmdline(p) for m in marks)} - {os.getpid()}
    while more := {p for p in pids if _parent(p) in found} - found - {os.getpid()}:
        found |= more
    return found


def kill(pids: set[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def can_hide() -> bool:
    """Whether this machine lets a process see an empty folder in place of another one (a
    private mount namespace: root, and `unshare` allowed, as on Linux CI machines)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                           capture_output=True)
    return probe.returncode == 0


def hidden(folder: Path, cmd: list[str]) -> list[str]:
    """``cmd`` run where ``folder`` is an empty tmpfs: as on another machine, nothing the
    driver writes there (the store, the checkpoints beside it) is visible to it."""
    script = f"mount -t tmpfs none {shlex.quote(str(folder))} && exec {shlex.join(cmd)}"
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]


@dataclass
class TwoNodes:
    """A head (``head_dir``) and a second node (``node_dir``), each with 1 CPU."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="blray", dir="/tmp")))
    gcs_port: int = field(default_factory=free_port)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def head_dir(self) -> Path:
        return self.root / "head"  # short: Ray's socket paths must stay under 108 characters

    @property
    def node_dir(self) -> Path:
        return self.root / "node"

    def _start(self, *args: str, temp_dir: Path, hide: Path | None = None) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--num-cpus", "1",
               "--node-ip-address", "127.0.0.1", "--temp-dir", str(temp_dir), "--disable-usage-stats",
               "--node-manager-port", str(free_port()), "--object-manager-port", str(free_port()),
               "--dashboard-agent-listen-port", str(free_port()),
               "--dashboard-agent-grpc-port", str(free_port()),
               "--runtime-env-agent-port", str(free_port()),
               "--metrics-export-port", str(free_port()), "--include-log-monitor", "false", *args]
        if hide is not None:
            cmd = hidden(hide, cmd)
        return subprocess.Popen(cmd, env=ray_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)

    def start(self, hide: Path | None = None) -> None:
        """Start the head, then the second node (``hide``: a folder the second node must not
        see, where that is possible). Ray gives a raylet 30 s to register, which a loaded
        machine can miss: a `ray start` that fails is tried again once, after its processes
        are killed (the head on a new port)."""
        head = ["--head", "--include-dashboard", "false", "--ray-client-server-port"]
        for attempt in (1, 2):
            proc = self._start(*head, str(free_port()), "--port", str(self.gcs_port),
                               temp_dir=self.head_dir)
            if self._started(proc, last=attempt == 2):
                break
            kill(processes([str(self.head_dir), f":{self.gcs_port} "]))
            self.gcs_port = free_port()
        for attempt in (1, 2):
            proc = self._start("--address", self.address, temp_dir=self.node_dir,
                               hide=hide if can_hide() else None)
            if self._started(proc, last=attempt == 2):
                break
            kill(self.node_processes())

    @staticmethod
    def _started(proc: subprocess.Popen, last: bool, timeout: float = 180) -> bool:
        out, _ = proc.communicate(timeout=timeout)
        assert proc.returncode == 0 or not last, f"ray start failed:\n{out[-3000:]}"
        return proc.returncode == 0

    def node_processes(self) -> set[int]:
        """Every process of the second node: its raylet, agents, workers, log monitor."""
        return processes([str(self.node_dir)])

    def busy_runs(self) -> list[str]:
        """The ids of the runs whose Ray task runs on the second node now (its worker's
        process title is "ray::batchlab run <id>")."""
        return [_cmdline(p).split()[2] for p in self.node_processes()
                if _cmdline(p).startswith("ray::batchlab run ")]

    def kill_node(self) -> set[int]:
        pids = self.node_processes()
        kill(pids)
        return pids

    def stop(self) -> None:
        """Kill every process of both nodes (found again until none is left), remove the folder."""
        deadline = time.monotonic() + 30
        while (pids := processes([str(self.root), f":{self.gcs_port} "])) \
                and time.monotonic() < deadline:
            kill(pids)
            time.sleep(0.2)
        shutil.rmtree(self.root, ignore_errors=True)

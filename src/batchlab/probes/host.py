"""What a CPU probe really takes from the host: the process's resident memory.

torch keeps no allocator statistics on the CPU, so ``memory.measured_step`` *accounts* a
step's tensors (exact and deterministic, linear in the batch size). The host sees more: the
process's resident set also holds intermediate tensors, kernel scratch space, activation
gradients while backward runs and the C allocator's slack. Measured on a 24 GiB host, the
accounting said 17.9 GiB for a batch whose step took the process to 19.85 GiB. So ``max_batch``
decides on CPU with :meth:`HostBudget.used`, the larger of the accounting and how far the
process's resident peak during the step rose above the process's size when the probe
started (after one unmeasured warm-up step, :func:`warm_up`), and lets a trial take at most
``HOST_FRACTION`` of the memory that was available then; its margin is kept inside that share.

Readings are Linux's (``/proc/self/status``: VmRSS, and VmHWM reset per block through
``/proc/self/clear_refs``); elsewhere the accounting alone decides.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from dataclasses import dataclass

from batchlab.probes.common import isolated_rng

HOST_FRACTION = 0.8  # the share of the available host memory a CPU trial may take


def read_proc_status() -> dict[str, int]:
    """VmRSS and VmHWM of this process in bytes ({} where /proc is missing)."""
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


def resident_bytes() -> int | None:
    """This process's resident set now (VmRSS), in bytes; None where it cannot be read."""
    return read_proc_status().get("VmRSS")


def max_rss() -> int | None:
    """getrusage's lifetime peak RSS in bytes (KiB on Linux, bytes on macOS; None on Windows)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def trim_heap() -> None:
    """Hand the C allocator's free pages back to the OS (glibc's ``malloc_trim``; a no-op
    elsewhere), so a resident-set reading counts what is alive, not an earlier step's slack."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def warm_up(step: Callable[[], object]) -> None:
    """Run ``step`` once, unmeasured, before the process's size is read: the first training
    step in a process initialises libraries and imports modules lazily (about 160 MiB for a
    small MLP), memory every later step finds resident, so no batch is charged with it. Any
    error is left for the measured trials to meet and report (they run the same step)."""
    with isolated_rng():
        try:
            step()
        except Exception:  # noqa: S110 - reported by the search, with its batch size
            pass


class RssWatch:
    """How far the resident set rose during a block, and its peak.

    The kernel's high-water mark (VmHWM, ru_maxrss) is a process-lifetime peak, so a step that
    stays below an earlier peak would show no growth. On Linux the mark is first reset to the
    current RSS (writing "5" to /proc/self/clear_refs, Linux >= 4.0), so
    ``growth = VmHWM after - VmRSS before`` is this block's own peak growth ("vmhwm_reset")
    and ``peak`` the process's resident peak during the block. Elsewhere the growth of
    ru_maxrss is reported, a lower bound that is 0 whenever the process peaked higher before
    ("ru_maxrss_lower_bound"), and ``peak`` is None. Side effect: the process's VmHWM restarts
    from the current RSS (nothing in batchlab reads it otherwise; ru_maxrss is not reset).
    """

    def __enter__(self) -> RssWatch:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            reset = True
        except OSError:
            reset = False
        status = read_proc_status()  # read after the reset: VmHWM == VmRSS now
        self.method = "vmhwm_reset" if reset and "VmRSS" in status else "ru_maxrss_lower_bound"
        self.before = status["VmRSS"] if self.method == "vmhwm_reset" else max_rss()
        self.growth: int | None = None
        self.peak: int | None = None
        return self

    def __exit__(self, *exc: object) -> None:
        exact = self.method == "vmhwm_reset"
        after = read_proc_status().get("VmHWM") if exact else max_rss()
        if after is not None and self.before is not None:
            self.growth = max(0, after - self.before)
            self.peak = after if exact else None


@dataclass(frozen=True)
class HostBudget:
    """The host memory a CPU probe may use: ``available`` (MemAvailable when it started) and
    ``base`` (the process's resident set then); either may be unknown (None)."""

    available: int | None
    base: int | None

    @property
    def share(self) -> int | None:
        """The most a trial may take: HOST_FRACTION of the available memory (None: unknown)."""
        return None if self.available is None else int(HOST_FRACTION * self.available)

    def used(self, accounted: int, rss_peak: int | None) -> int:
        """What a measured step takes from the host: the larger of its ``accounted`` tensors
        and how far the process's resident peak during the step (``rss_peak``) rose above
        ``base``; the accounting alone where either reading is missing."""
        if self.base is None or rss_peak is None:
            return accounted
        return max(accounted, rss_peak - self.base)

"""Measuring one retention call: time, batches, peak memory (tracemalloc, RSS)."""

from __future__ import annotations

import gc
import resource
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langgraph_persist_kit.maintenance import BatchDone

# --- measuring one call -----------------------------------------------------------------------


def rss_high_water_reset() -> bool:
    """Reset the process's peak RSS (Linux ``clear_refs``); False where that is impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def rss_kib(name: str = "VmHWM") -> int:
    """``VmHWM`` (peak) or ``VmRSS`` of this process in KiB; ``ru_maxrss`` off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@dataclass
class Batches:
    """``on_batch`` target: count, total and longest of the batches (constant memory)."""
    count: int = 0
    longest: float = 0.0
    total: float = 0.0
    last: BatchDone | None = None

    def __call__(self, done: BatchDone) -> None:
        self.count, self.total, self.last = self.count + 1, self.total + done.seconds, done
        self.longest = max(self.longest, done.seconds)


@dataclass
class Measured:
    seconds: float
    report: Any
    batches: Batches
    traced_peak: int | None  # bytes tracemalloc saw allocated above the start, at the peak
    rss_start: int  # KiB
    rss_peak: int  # KiB, the process's peak RSS during the call
    window: tuple[float, float]  # perf_counter at start and end


def measure(fn: Callable[[Callable[[BatchDone], None]], Any], trace: bool) -> Measured:
    """Run ``fn(on_batch)`` once: wall time, its batches, tracemalloc peak and RSS peak."""
    gc.collect()
    batches = Batches()
    reset = rss_high_water_reset()
    rss_start = rss_kib("VmRSS")
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    try:
        report = fn(batches)
        t1 = time.perf_counter()
        traced = None
        if trace:
            traced = tracemalloc.get_traced_memory()[1]
    finally:
        if trace:
            tracemalloc.stop()
    rss_peak = rss_kib("VmHWM") if reset else rss_kib("ru_maxrss")
    return Measured(t1 - t0, report, batches, traced, rss_start, rss_peak, (t0, t1))


@dataclass
class Figures:
    """Everything measured at one size of one backend (seconds, bytes, KiB)."""
    backend: str
    threads: int
    checkpoints: int
    load_seconds: float = 0.0
    verify_seconds: float = 0.0
    bytes_loaded: int = 0
    cleanup: dict[str, Any] = field(default_factory=dict)
    writer: dict[str, Any] = field(default_factory=dict)
    bytes_after_cleanup: int = 0
    prune: dict[str, Any] = field(default_factory=dict)
    bytes_after_prune_raw: int = 0
    bytes_after_prune: int = 0
    compact_seconds: float = 0.0

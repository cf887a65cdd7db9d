"""Sizes, targets and the shape of the benchmark's threads."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import timedelta

BACKENDS = ("sqlite", "postgres", "redis")
DAY = 86_400.0
OLD_AGE, RECENT_AGE = 60 * DAY, 3_600.0  # how long ago the old / recent threads were written
OLDER_THAN = timedelta(days=30)  # cleanup_expired's cutoff: the old half goes
FLAT = 2.0  # target: peak memory at the full size <= FLAT x at the 10x smaller size
WRITER_P99 = 2.0  # target: writer p99 during cleanup <= 2x its p99 alone
SHARED = {  # channel values every checkpoint of a thread shares (stored once per thread)
    "user_id": "u-42", "route": "agent", "locale": "en-US",
    "system": "You are a support agent for an online shop. " * 12,  # ~550 bytes
}


@dataclass(frozen=True)
class Sizes:
    threads: int = 100_000  # the full store; a run at threads // SMALL comes first
    checkpoints: int = 10  # per thread
    batch_size: int = 500  # cleanup_expired's batch_size (its default)
    keep_latest: int = 5
    writer_steps: int = 300  # writer steps measured alone, just before the cleanup
    writer_interval: float = 0.02  # seconds from one writer step's start to the next
    chunk: int = 10_000  # threads per loader statement / pipeline flush
    writer_during_prune: bool = False  # also run the writer during the prune
    writer_process: bool = False  # the writer in a child process instead of a thread


FULL = Sizes()
# Small, as maintenance rests >= 100 ms after each SQLite batch, and a prune batch is a thread.
QUICK = Sizes(threads=200, writer_steps=100)
TINY = Sizes(threads=40, checkpoints=6, keep_latest=3, writer_steps=10, chunk=16)
SMALL = 10  # the first run of each backend is at threads // SMALL


def package_revision() -> str | None:
    """The git commit the package runs from, ``+dirty`` when langgraph_persist_kit/ has
    uncommitted changes (``None`` outside a git checkout)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        head, dirty = (subprocess.run(["git", "-C", root, *args], capture_output=True,
                                      text=True, check=True, timeout=10).stdout.strip()
                       for args in (["rev-parse", "--short", "HEAD"],
                                    ["status", "--porcelain", "--", "langgraph_persist_kit"]))
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def thread_id(i: int) -> str:
    """The loaded threads' ids; even ``i`` are the old half (what the cleanup deletes)."""
    return f"t-{i:07d}"

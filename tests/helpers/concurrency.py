"""What the in-process concurrency tests share (test_concurrency_locks.py,
test_concurrency_versions.py, test_concurrency_savers.py): a thread lock held in a
harness's mode, whether a thread's lock is busy, thread ids that tempt a lock key to
collide, and whether a thread's history stayed linear."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from langgraph_persist_kit.concurrency import ThreadBusyError, athread_lock, thread_lock
from tests.helpers.harness import Harness

ODD_IDS = ["it's", 'say "hi"', "a:b", "{tag}", "}{", "*", "100%", "🙂 emoji", "x" * 1000]


@contextmanager
def held(h: Harness, thread_id: Any, **kwargs: Any) -> Iterator[None]:
    """The thread's lock held for the block, in the harness's mode."""
    if h.mode == "sync":
        with thread_lock(h.saver, thread_id, **kwargs):
            yield
        return
    manager = athread_lock(h.saver, thread_id, **kwargs)
    h.wait(manager.__aenter__())
    try:
        yield
    finally:
        h.wait(manager.__aexit__(None, None, None))


def busy(h: Harness, thread_id: Any) -> bool:
    """Whether another holder has the thread's lock right now."""
    try:
        with held(h, thread_id, wait=0):
            return False
    except ThreadBusyError:
        return True


def root_children(h: Harness, config: dict) -> list[int]:
    """How many root checkpoints each parent has (a linear history: all 1)."""
    counts: dict[Any, int] = {}
    for item in h.call("list", {"configurable": {**config["configurable"],
                                                 "checkpoint_ns": ""}}):
        parent = (item.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        counts[parent] = counts.get(parent, 0) + 1
    return list(counts.values())

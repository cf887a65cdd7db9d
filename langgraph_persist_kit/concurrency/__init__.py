"""One writer per thread: cross-process locks and compare-and-set around compiled graphs.

Three ways to keep two requests on one thread (a double-texting user, a
retried webhook, two pods) from interleaving their super-steps:

- `LockedGraph`: runs on a thread queue up (``wait=None``), wait a while
  (``wait=5.0``) or are refused at once (``wait=0``) with `ThreadBusyError`;
- `VersionedGraph`: a run states the checkpoint it continues and fails with
  `StaleThreadError` if another writer got there first (compare-and-set in the store);
- `thread_lock` / `athread_lock`: the lock itself, around any code.
"""

from langgraph_persist_kit.concurrency.graphs import LockedGraph, VersionedGraph
from langgraph_persist_kit.concurrency.locks import (
    DEFAULT_LEASE,
    athread_lock,
    thread_lock,
)
from langgraph_persist_kit.errors import StaleThreadError, ThreadBusyError

__all__ = [
    "DEFAULT_LEASE",
    "LockedGraph",
    "StaleThreadError",
    "ThreadBusyError",
    "VersionedGraph",
    "athread_lock",
    "thread_lock",
]

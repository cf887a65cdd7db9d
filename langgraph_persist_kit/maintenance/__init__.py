"""Retention for cron: delete idle threads, prune long ones, in bounded batches.

Owns: `cleanup_expired`, `prune_threads`, their async twins and reports.

Each batch is its own short transaction (SQLite, PostgreSQL) or its own
scripts (Redis); after every 50 ms of such work comes a rest as long (at least
100 ms on SQLite, at most a second), so a graph writing to the same store waits
at most one batch and gets at least half of the time;
a thread written again while the cleanup runs is not deleted, and a prune never
leaves a kept checkpoint unreadable (see ``_delta.PrunePlans``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, NamedTuple

from langgraph_persist_kit._core.calls import Call, aexecute, execute
from langgraph_persist_kit._core.plan import Plan, arun, run
from langgraph_persist_kit._core.saver import PersistSaverBase
from langgraph_persist_kit.errors import ConfigurationError, MaintenanceLockedError
from langgraph_persist_kit.maintenance.lock import maintenance_lock

__all__ = [
    "BatchDone",
    "CleanupReport",
    "MaintenanceLockedError",
    "PruneReport",
    "acleanup_expired",
    "aprune_threads",
    "cleanup_expired",
    "maintenance_lock",
    "prune_threads",
]


class CleanupReport(NamedTuple):
    """What `cleanup_expired` deleted (with ``dry_run``: would delete).

    Attributes:
        threads_deleted: Threads deleted, every checkpoint, write and value of each.
        checkpoints_deleted: Their checkpoints, all namespaces.
        dry_run: Whether nothing was deleted.
        seconds: Wall-clock time taken.
    """

    threads_deleted: int
    checkpoints_deleted: int
    dry_run: bool
    seconds: float


class PruneReport(NamedTuple):
    """What `prune_threads` deleted (with ``dry_run``: would delete).

    Attributes:
        threads_pruned: Threads that lost at least one checkpoint.
        checkpoints_deleted: Checkpoints deleted, all namespaces.
        dry_run: Whether nothing was deleted.
        seconds: Wall-clock time taken.
    """

    threads_pruned: int
    checkpoints_deleted: int
    dry_run: bool
    seconds: float


class BatchDone(NamedTuple):
    """Progress, given to ``on_batch`` after each batch (one thread, for a prune).

    The counts are running totals: those of the last `BatchDone` are the report's.

    Attributes:
        threads: Threads deleted or pruned so far.
        checkpoints: Checkpoints deleted so far.
        done: Batches (cleanup: each looks at up to ``batch_size`` threads, on every
            backend; the last may find none) or threads (prune) handled so far.
        total: Threads to prune (the registry's count when pruning all), or
            ``None`` for a cleanup.
        seconds: How long this batch took.
    """

    threads: int
    checkpoints: int
    done: int
    total: int | None
    seconds: float


OnBatch = Callable[[BatchDone], None]

CLOCK: Callable[[], float] = time.time
"""The wall clock (Unix seconds) a cleanup counts ``older_than`` back from; tests
replace it to put the cutoff at a known point between two writes."""

MAX_PAUSE = 1.0
"""The longest rest between two batches, in seconds."""

THREAD_PAGE = 1000
"""Thread ids read at a time when pruning every thread."""

WORK_BEFORE_REST = 0.05
"""Seconds of deleting (one batch, or several small ones) before a rest."""


class _Pacer:
    """Rests once the work since the last rest reaches `WORK_BEFORE_REST`, as long as
    that work took (graphs writing to the store get at least half of the time) and
    at least the store's floor: SQLite's busy handler polls a waiting writer every
    100 ms at most, so a shorter rest could starve it."""

    def __init__(self, saver: Any) -> None:
        self.floor: float = saver.batch_rest
        self.worked = 0.0

    def after(self, seconds: float) -> Plan[None]:
        self.worked += seconds
        if self.worked >= WORK_BEFORE_REST:
            rest = min(MAX_PAUSE, max(self.floor, self.worked))
            yield Call(time.sleep, asyncio.sleep, (rest,))
            self.worked = 0.0


def _maintained(saver: Any, method: str) -> Any:
    """``saver``, if it is one of this package's (its ``method`` is the hook used), or
    `ConfigurationError`."""
    if not isinstance(saver, PersistSaverBase):
        raise ConfigurationError(
            f"{type(saver).__name__} has no {method}(): retention works on this package's "
            "savers (SQLite, PostgreSQL, Redis)"
        )
    return saver


def _cleanup(saver: Any, older_than: timedelta, batch_size: int, dry_run: bool,
             on_batch: OnBatch | None) -> Plan[CleanupReport]:
    if not isinstance(older_than, timedelta) or older_than <= timedelta(0):
        raise ConfigurationError(f"older_than must be a positive timedelta, not {older_than!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigurationError(f"batch_size must be an int >= 1, not {batch_size!r}")
    _maintained(saver, "cleanup_batch")
    started = time.perf_counter()
    pacer = _Pacer(saver)
    cutoff = CLOCK() - older_than.total_seconds()
    threads = checkpoints = batches = 0
    cursor: Any = None
    while True:
        batch_started = time.perf_counter()
        deleted, gone, cursor = yield Call(saver.cleanup_batch, saver.acleanup_batch,
                                           (cutoff, cursor, batch_size), {"dry_run": dry_run})
        threads, checkpoints, batches = threads + deleted, checkpoints + gone, batches + 1
        took = time.perf_counter() - batch_started
        if on_batch is not None:
            on_batch(BatchDone(threads, checkpoints, batches, None, took))
        if cursor is None:
            return CleanupReport(threads, checkpoints, dry_run, time.perf_counter() - started)
        if deleted and not dry_run:
            yield from pacer.after(took)


def cleanup_expired(saver: Any, *, older_than: timedelta, batch_size: int = 500,
                    dry_run: bool = False, on_batch: OnBatch | None = None) -> CleanupReport:
    """Delete every thread whose last write is older than ``older_than``, in batches.

    A thread's last write is its newest checkpoint or pending write (the
    registry's ``updated_at``). Each batch looks at up to ``batch_size`` threads
    in its own short transaction and checks again, under lock, that each is
    still idle: a thread written while the cleanup runs is kept.

    Args:
        saver: One of this package's sync savers.
        older_than: E.g. ``timedelta(days=30)``.
        batch_size: Threads looked at per batch (each batch is one transaction).
        dry_run: Count what would be deleted; delete nothing.
        on_batch: Called with a `BatchDone` after each batch (progress bars).

    Returns:
        A `CleanupReport`.

    Raises:
        ConfigurationError: For a saver that is not this package's, a non-positive
            ``older_than`` or ``batch_size``.
    """
    return run(_cleanup(saver, older_than, batch_size, dry_run, on_batch), execute)


async def acleanup_expired(saver: Any, *, older_than: timedelta, batch_size: int = 500,
                           dry_run: bool = False,
                           on_batch: OnBatch | None = None) -> CleanupReport:
    """Delete idle threads with an async saver; see `cleanup_expired`."""
    return await arun(_cleanup(saver, older_than, batch_size, dry_run, on_batch), aexecute)


def _prune(saver: Any, keep_latest: int, thread_ids: Iterable[str] | None, dry_run: bool,
           on_batch: OnBatch | None) -> Plan[PruneReport]:
    if isinstance(keep_latest, bool) or not isinstance(keep_latest, int) or keep_latest < 1:
        raise ConfigurationError(f"keep_latest must be an int >= 1, not {keep_latest!r}")
    _maintained(saver, "prune_thread")
    started = time.perf_counter()
    pacer = _Pacer(saver)
    pruned = checkpoints = done = 0
    total: int | None = None
    cursor: Any = None
    pages: list[list[str]] = []
    if thread_ids is not None:
        pages = [list(dict.fromkeys(str(t) for t in thread_ids))]
        total = len(pages[0])
    else:
        # for progress: threads may come and go
        total = yield Call(saver.thread_count, saver.athread_count)
    while True:
        if thread_ids is None:  # a page at a time: memory stays flat however many threads
            page, cursor = yield Call(saver.thread_ids_page, saver.athread_ids_page,
                                      (cursor, THREAD_PAGE))
            pages = [list(page)]
        for thread_id in pages.pop():
            batch_started = time.perf_counter()
            gone = yield Call(saver.prune_thread, saver.aprune_thread, (thread_id, keep_latest),
                              {"dry_run": dry_run})
            pruned, checkpoints, done = pruned + bool(gone), checkpoints + gone, done + 1
            took = time.perf_counter() - batch_started
            if on_batch is not None:
                on_batch(BatchDone(pruned, checkpoints, done, total, took))
            if gone and not dry_run:
                yield from pacer.after(took)
        if thread_ids is not None or cursor is None:
            return PruneReport(pruned, checkpoints, dry_run, time.perf_counter() - started)


def prune_threads(saver: Any, *, keep_latest: int, thread_ids: Iterable[str] | None = None,
                  dry_run: bool = False, on_batch: OnBatch | None = None) -> PruneReport:
    """Keep the ``keep_latest`` newest checkpoints of each thread and namespace.

    Also kept: whatever the kept checkpoints need to read back exactly as
    before, i.e. the channel values they share with deleted ones and the
    ancestors their DeltaChannel values are rebuilt from. Values nothing refers
    to any more are deleted, so storage shrinks. Each thread is one short
    transaction; checkpoints stored while it runs are never deleted.

    Args:
        saver: One of this package's sync savers.
        keep_latest: How many newest checkpoints to keep per thread and namespace (>= 1).
        thread_ids: The threads to prune; ``None`` for all.
        dry_run: Count what would be deleted; delete nothing.
        on_batch: Called with a `BatchDone` after each thread.

    Returns:
        A `PruneReport`.

    Raises:
        ConfigurationError: For a saver that is not this package's or ``keep_latest`` < 1.
    """
    return run(_prune(saver, keep_latest, thread_ids, dry_run, on_batch), execute)


async def aprune_threads(saver: Any, *, keep_latest: int,
                         thread_ids: Iterable[str] | None = None, dry_run: bool = False,
                         on_batch: OnBatch | None = None) -> PruneReport:
    """Prune threads with an async saver; see `prune_threads`."""
    return await arun(_prune(saver, keep_latest, thread_ids, dry_run, on_batch), aexecute)

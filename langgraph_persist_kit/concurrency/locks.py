"""`thread_lock` / `athread_lock`: one writer per thread, across processes.

Owns: waiting for a thread's lock (a short loop in each mode around `_Attempts`),
the in-process exclusion every lock starts with, and finding the lock of a
saver: each saver's ``thread_lock_handle`` / ``athread_lock_handle`` (the store's
lock: ``sqlite/_thread_lock.py``, ``postgres/_thread_lock.py``, ``redis/_lease.py``).

A handle has ``try_acquire() -> bool`` (one attempt, never waiting),
``release()`` (idempotent, never raising for the store; frees what the
handle borrowed even if it never got the lock) and a ``local_key`` (``None``
when the store's lock already tells callers of one process apart). Waiting
is polling with jittered backoff, from 2 ms up to `MAX_POLL`.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import random
import time
from collections.abc import AsyncIterator, Hashable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver

from langgraph_persist_kit._core.checks import check_id
from langgraph_persist_kit._core.local_locks import LOCAL
from langgraph_persist_kit._core.modes import AsyncOnly, SyncOnly
from langgraph_persist_kit.errors import ConfigurationError, ThreadBusyError

__all__ = ["DEFAULT_LEASE", "MAX_POLL", "athread_lock", "thread_lock"]

DEFAULT_LEASE = 30.0
"""Seconds a Redis thread lock lives without renewal: the longest a holder that died
(SIGKILL, lost host) keeps its thread locked. A live holder renews it every third."""

MAX_POLL = 0.1
"""The longest pause, in seconds, between two attempts to take a busy lock."""


class _Attempts:
    """The attempts at one thread's lock: the in-process key each attempt takes first,
    and the jittered pauses between attempts until ``wait`` seconds are spent."""

    def __init__(self, thread_id: str, wait: float | None, local_key: Hashable | None) -> None:
        self.thread_id, self.wait, self.local_key = thread_id, wait, local_key
        self.deadline = None if wait is None else time.monotonic() + wait
        self.pause = 0.002
        self.holds_local = False

    def begin(self) -> bool:
        """Take the in-process key for one attempt; ``False``: this process holds it."""
        self.holds_local = self.local_key is None or LOCAL.try_take(self.local_key)
        return self.holds_local

    def taken(self, taken: bool) -> bool:
        """After an attempt: give the in-process key back unless the lock was ``taken``."""
        if not taken:
            self.give_back()
        return taken

    def give_back(self) -> None:
        """Give the in-process key back, if held (idempotent)."""
        if self.holds_local and self.local_key is not None:
            LOCAL.give_back(self.local_key)
        self.holds_local = False

    def next_pause(self) -> float:
        """Seconds to sleep before the next attempt.

        Raises:
            ThreadBusyError: ``wait`` seconds have passed.
        """
        left = math.inf if self.deadline is None else self.deadline - time.monotonic()
        if left <= 0:
            waited = "did not wait (wait=0)" if not self.wait else f"waited {self.wait:g} s"
            raise ThreadBusyError(
                f"thread {self.thread_id!r} is busy: another run holds its lock; {waited}. "
                "Retry later, or pass a longer wait"
            )
        pause, self.pause = self.pause, min(self.pause * 1.5, MAX_POLL)
        return min(pause * random.uniform(0.8, 1.2), left)


class _LocalHandle:
    """The lock of a saver that lives in one process (`InMemorySaver`): `LOCAL` alone."""

    def __init__(self, saver: Any, thread_id: str) -> None:
        self.local_key = ("memory", id(saver), thread_id)

    def try_acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass


def _checked(thread_id: Any, wait: float | None, lease: float) -> str:
    if wait is not None and not (isinstance(wait, (int, float)) and wait >= 0):
        raise ConfigurationError(f"wait must be None or seconds >= 0, not {wait!r}")
    if not (isinstance(lease, (int, float)) and lease >= 0.1):
        raise ConfigurationError(f"lease must be at least 0.1 seconds, not {lease!r}")
    if thread_id is None or thread_id == "":
        raise ConfigurationError("thread_lock needs a thread_id")
    return check_id(thread_id, "thread_id")


def _handle_maker(saver: Any, *, sync: bool) -> Any:
    """The saver's ``thread_lock_handle`` (``athread_lock_handle`` when not ``sync``), or
    ``None`` for an `InMemorySaver` (one process: `LOCAL` alone locks it).

    Raises:
        ConfigurationError: For a saver of the other mode, or one without thread locks.
    """
    if isinstance(saver, AsyncOnly if sync else SyncOnly):
        use = ("athread_lock, or LockedGraph.ainvoke / astream" if sync
               else "thread_lock, or LockedGraph.invoke / stream")
        raise ConfigurationError(f"{type(saver).__name__} is "
                                 f"{'asynchronous' if sync else 'synchronous'}: use {use}")
    if isinstance(saver, InMemorySaver):
        return None
    make = getattr(saver, "thread_lock_handle" if sync else "athread_lock_handle", None)
    if make is None:
        raise ConfigurationError(
            f"thread locks need one of this package's savers (SQLite, PostgreSQL, Redis) or "
            f"InMemorySaver, not {type(saver).__name__}"
        )
    return make


@contextmanager
def thread_lock(saver: Any, thread_id: str, *, wait: float | None = None,
                lease: float = DEFAULT_LEASE) -> Iterator[None]:
    """Hold ``thread_id``'s lock for the ``with`` block, excluding every other process.

    Nothing else in a run needs the lock: it excludes other holders only, so
    every writer of a thread must take it (`LockedGraph` does). The store
    holds it so that a holder that dies releases it: a PostgreSQL session
    advisory lock on a connection held for the block, a Redis key with a
    renewed lease in the thread's hash slot, or a record lock on a file beside
    the SQLite database. Taking and releasing it costs one round trip each.

    Args:
        saver: A sync saver of this package (`SqliteSaver`, `PostgresSaver`,
            `RedisSaver`) or an `InMemorySaver` (locked within this process).
        thread_id: The thread, as in ``{"configurable": {"thread_id": str}}``.
        wait: Seconds to wait for a busy lock: ``None`` waits as long as it
            takes, ``0`` fails at once.
        lease: Redis only: seconds the lock outlives a holder that died
            (default `DEFAULT_LEASE`); renewed every third of it while held.

    Raises:
        ThreadBusyError: Another holder kept the lock for ``wait`` seconds.
        ConfigurationError: For an async saver (use `athread_lock`), a saver
            without thread locks, or a bad ``wait``, ``lease`` or ``thread_id``.
        BackendError: The store failed while taking the lock.

    Example:
        ```python
        with thread_lock(saver, "t-1", wait=5.0):
            graph.invoke(inputs, {"configurable": {"thread_id": "t-1"}})
        ```
    """
    thread_id = _checked(thread_id, wait, lease)
    make = _handle_maker(saver, sync=True)
    handle = _LocalHandle(saver, thread_id) if make is None else make(thread_id, lease=lease)
    attempts = _Attempts(thread_id, wait, getattr(handle, "local_key", None))
    try:
        while not attempts.taken(attempts.begin() and handle.try_acquire()):
            time.sleep(attempts.next_pause())
    except BaseException:  # KeyboardInterrupt too: what the handle borrowed goes back
        attempts.give_back()
        handle.release()
        raise
    try:
        yield
    finally:
        try:
            handle.release()
        finally:
            attempts.give_back()


async def _await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


@asynccontextmanager
async def athread_lock(saver: Any, thread_id: str, *, wait: float | None = None,
                       lease: float = DEFAULT_LEASE) -> AsyncIterator[None]:
    """Hold ``thread_id``'s lock for the ``async with`` block; see `thread_lock`.

    Args:
        saver: An async saver of this package (`AsyncSqliteSaver`,
            `AsyncPostgresSaver`, `AsyncRedisSaver`) or an `InMemorySaver`.
        thread_id: The thread.
        wait: Seconds to wait for a busy lock (``None``: as long as it takes).
        lease: Redis only: seconds the lock outlives a holder that died.

    Raises:
        ThreadBusyError: Another holder kept the lock for ``wait`` seconds.
        ConfigurationError: For a sync saver (use `thread_lock`), a saver
            without thread locks, or a bad argument.
        BackendError: The store failed while taking the lock.
    """
    thread_id = _checked(thread_id, wait, lease)
    make = _handle_maker(saver, sync=False)
    handle = (_LocalHandle(saver, thread_id) if make is None
              else await make(thread_id, lease=lease))
    attempts = _Attempts(thread_id, wait, getattr(handle, "local_key", None))
    try:
        while not attempts.taken(attempts.begin() and await _await(handle.try_acquire())):
            await asyncio.sleep(attempts.next_pause())
    except BaseException:  # cancelled too: what the handle borrowed goes back
        attempts.give_back()
        await _await(handle.release())
        raise
    try:
        yield
    finally:
        try:
            await _await(handle.release())
        finally:
            attempts.give_back()

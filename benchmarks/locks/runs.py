"""Target 1 in one process: a run's time with and without `LockedGraph`, and what it sends.

The graph: ``START -> bump -> END`` on ``count: Annotated[int, operator.add]``; every run is
``invoke({"count": 1})`` (``ainvoke`` for the async savers, with an async node) on a thread
that already has checkpoints, so each run reads the latest checkpoint, stores the input
checkpoint, the node's write and the node's checkpoint.
"""

from __future__ import annotations

import asyncio
import gc
import operator
from collections.abc import Callable
from contextlib import AsyncExitStack, ExitStack
from functools import partial
from typing import Annotated, Any, TypedDict

from benchmarks import workloads as wl
from benchmarks.locks.config import ADDED_TRIPS, Sizes
from benchmarks.locks.count import Tally, counting, sqlite_tracer
from benchmarks.locks.stores import Store, release_script_cached, round_trip_trial
from benchmarks.runner import median_p90, run_trial
from benchmarks.trials import atime_each, time_each
from langgraph_persist_kit.concurrency import LockedGraph, athread_lock, thread_lock
from langgraph_persist_kit.urls import async_saver_from_url, saver_from_url

INPUT = {"count": 1}


class CounterState(TypedDict):
    count: Annotated[int, operator.add]


def bump(state: Any) -> dict:
    return {"count": 1}


class Session:
    """One saver (``saver_from_url`` / ``async_saver_from_url`` of the store, their defaults)
    kept open for a whole measurement, and the counter graph bare and in a `LockedGraph`
    (its defaults: ``wait=None``, ``lease=30``)."""

    def __init__(self, store: Store, mode: str, loop: asyncio.AbstractEventLoop):
        self.store, self.is_async, self.loop = store, mode == "async", loop
        self._stack: Any = AsyncExitStack() if self.is_async else ExitStack()

    def __enter__(self) -> Session:
        if self.is_async:
            self.saver = self.loop.run_until_complete(
                self._stack.enter_async_context(async_saver_from_url(self.store.url)))
        else:
            self.saver = self._stack.enter_context(saver_from_url(self.store.url))
        graph = wl.compile_graph(CounterState, {"bump": bump}, self.saver, self.is_async)
        self.graphs = {False: graph, True: LockedGraph(graph)}
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.is_async:
            self.loop.run_until_complete(self._stack.aclose())
        else:
            self._stack.close()

    def run(self, locked: bool, n: int, thread_id: str) -> list[float]:
        """Seconds each of ``n`` runs took, one after another on ``thread_id``."""
        graph, config = self.graphs[locked], wl.latest(thread_id)
        if self.is_async:
            return self.loop.run_until_complete(
                atime_each(range(n), lambda _: graph.ainvoke(INPUT, config)))
        return time_each(range(n), lambda _: graph.invoke(INPUT, config))

    def lock(self, n: int, thread_id: str) -> list[float]:
        """Seconds each of ``n`` bare ``thread_lock`` takes and releases took."""
        saver = self.saver
        if self.is_async:
            async def alock(_: Any) -> None:
                async with athread_lock(saver, thread_id):
                    pass
            return self.loop.run_until_complete(atime_each(range(n), alock))

        def lock(_: Any) -> None:
            with thread_lock(saver, thread_id):
                pass
        return time_each(range(n), lock)

    def trace_sql(self, trace: Callable[[str], None] | None) -> None:
        """SQLite: call ``trace`` with every statement the saver's connection runs."""
        if self.is_async:
            self.loop.run_until_complete(self.saver.conn.set_trace_callback(trace))
        else:
            self.saver.conn.set_trace_callback(trace)

    def pool_connections(self) -> int:
        """PostgreSQL: connections the saver's pool has opened so far."""
        stats = getattr(getattr(self.saver, "conn", None), "get_stats", None)
        return int(stats().get("connections_num", 0)) if stats else 0


# --- run time ---------------------------------------------------------------------------------


def run_time(store: Store, mode: str, sizes: Sizes, loop: asyncio.AbstractEventLoop,
             log: Callable[[str], None]) -> dict[str, Any]:
    """Interleaved rounds: ``runs`` bare runs and ``runs`` LockedGraph runs (bare first on
    even rounds), then ``locks`` bare lock + unlock and ``locks`` server round trips."""
    samples: dict[str, list[float]] = {"bare": [], "locked": [], "lock": [], "trip": []}
    thread_id = f"latency-{mode}"
    with Session(store, mode, loop) as session:
        for wrapped in (False, True):  # untimed: the thread exists, connections are open
            session.run(wrapped, sizes.warm, thread_id)
        session.lock(sizes.warm, thread_id)
        for r in range(sizes.rounds):
            for wrapped in (False, True) if r % 2 == 0 else (True, False):
                gc.collect()
                samples["locked" if wrapped else "bare"] += session.run(wrapped, sizes.runs,
                                                                        thread_id)
            gc.collect()
            samples["lock"] += session.lock(sizes.locks, thread_id)
            if store.backend != "sqlite":
                samples["trip"] += run_trial(
                    partial(round_trip_trial, store, session.is_async, sizes.locks), loop)
            log(f"{store.backend} {mode}: run time, round {r + 1}/{sizes.rounds}")
    bare, bare_p90 = median_p90(samples["bare"], 1e3)
    locked, locked_p90 = median_p90(samples["locked"], 1e3)
    lock, lock_p90 = median_p90(samples["lock"], 1e6)
    trip, trip_p90 = median_p90(samples["trip"], 1e6)
    assert bare is not None and locked is not None and lock is not None
    added = (locked - bare) * 1e3
    return {"runs": len(samples["bare"]), "bare_ms": bare, "bare_p90_ms": bare_p90,
            "locked_ms": locked, "locked_p90_ms": locked_p90, "added_us": added,
            "ratio": locked / bare, "lock_alone_us": lock, "lock_alone_p90_us": lock_p90,
            "round_trip_us": trip, "round_trip_p90_us": trip_p90,
            "lock_alone_over_round_trip": lock / trip if trip else None}


# --- round trips ------------------------------------------------------------------------------


def per_run(names: Tally, n: int) -> dict[str, float]:
    return {name: count / n for name, count in sorted(names.names.items())}


def added_names(locked: Tally, bare: Tally, n: int, m: int | None = None) -> dict[str, float]:
    """What ``m`` locked runs (default ``n``) sent that ``n`` bare runs did not, per run."""
    m = n if m is None else m
    out = {name: round(locked.names[name] / m - bare.names[name] / n, 6)
           for name in sorted(set(locked.names) | set(bare.names))}
    return {name: value for name, value in out.items() if value}


def round_trips(store: Store, mode: str, sizes: Sizes,
                loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
    """On a freshly opened saver, after ``warm`` bare runs: its first LockedGraph run alone,
    then ``counted`` bare runs and ``counted`` LockedGraph runs, everything they send counted
    (see `count`)."""
    thread_id, n = f"count-{mode}", sizes.counted
    with Session(store, mode, loop) as session:
        session.run(False, sizes.warm, thread_id)
        cached = release_script_cached(store.server) if store.backend == "redis" else None
        opened = session.pool_connections()
        with counting(store.backend) as tally:
            if store.backend == "sqlite":
                session.trace_sql(sqlite_tracer(tally))
            start = tally.snapshot()
            session.run(True, 1, thread_id)
            first = tally.since(start)
            opened = session.pool_connections() - opened
            seen = {}
            for wrapped in (False, True):
                start = tally.snapshot()
                session.run(wrapped, n, thread_id)
                seen[wrapped] = tally.since(start)
            if store.backend == "sqlite":
                session.trace_sql(None)
    bare, locked = seen[False], seen[True]
    trips_added = (locked.trips - bare.trips) / n
    first_added = added_names(first, bare, n, 1)
    notes = []
    if store.backend == "postgres" and opened:
        notes.append(f"the pool opened {opened} more connection{'s' if opened > 1 else ''}: "
                     "the lock holds one for the run while the saver's calls borrow another")
    if cached is not None:
        notes.append("the server had the release script cached" if cached else
                     "the server lacked the release script: EVALSHA answered NOSCRIPT, then "
                     "SCRIPT LOAD and EVALSHA again (once per server)")
    if store.backend == "sqlite":
        notes.append("PRAGMA database_list once per saver (finds the lock file's path), "
                     "open() of the lock file once per process")
    return {
        "unit": "round trips" if store.backend != "sqlite" else "SQL statements (in-process)",
        "runs": n,
        "bare_round_trips_per_run": bare.trips / n,
        "locked_round_trips_per_run": locked.trips / n,
        "round_trips_added_per_run": trips_added,
        "bare_calls_per_run": sum(bare.names.values()) / n,
        "locked_calls_per_run": sum(locked.names.values()) / n,
        "bare_calls": per_run(bare, n),
        "added": added_names(locked, bare, n),
        "first_run_round_trips_added": first.trips - bare.trips / n,
        "first_run_added": first_added,
        "first_run_note": "; ".join(notes),
        "target": f"<= {ADDED_TRIPS} round trips added (1 acquire + 1 release)",
        "target_met": trips_added <= ADDED_TRIPS,
    }

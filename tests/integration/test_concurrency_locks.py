"""`LockedGraph` and thread locks on every backend, in both modes: a locked run behaves
like the graph and refuses a busy thread, a run that raises or a stream left early
releases its lock, locked runs of one process never interleave, odd thread ids get
locks of their own, and a busy lock is handed over once its holder lets go.

Within one process; tests/processes/test_concurrency_processes.py runs real OS processes,
test_concurrency_savers.py covers each kind of saver's own locks. Graph runs are
compared with the same runs on an `InMemorySaver`.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from langgraph.types import Command

from langgraph_persist_kit.concurrency import (
    LockedGraph,
    ThreadBusyError,
    athread_lock,
    thread_lock,
)
from tests.helpers.concurrency import ODD_IDS, busy, held, root_children
from tests.helpers.concurrency_worker import builder as counter_graph
from tests.helpers.differential import (
    assert_same_thread,
    run_concurrently,
    sides,
    stream,
    thread,
)
from tests.helpers.graphs import interrupt_graph, linear_graph
from tests.helpers.harness import Harness


def test_locked_graph_runs_like_the_graph_and_refuses_a_busy_thread(harness: Harness) -> None:
    config = thread("locked")
    pairs = sides(harness, interrupt_graph)
    for h, graph in pairs:
        locked = LockedGraph(graph, wait=0)
        h.invoke(locked, {"topic": "a"}, config)
        with held(h, "locked"):
            with pytest.raises(ThreadBusyError, match="locked"):
                h.invoke(locked, Command(resume="yes"), config)
            with pytest.raises(ThreadBusyError):
                stream(h, locked, Command(resume="yes"), config)
            assert not busy(h, "another thread")
        stream(h, locked, Command(resume="yes"), config)
        assert locked.get_graph() is not None  # other attributes pass through
    assert_same_thread(pairs, config)


def test_a_run_that_raises_releases_its_lock(harness: Harness) -> None:
    def fail(state: dict) -> dict:
        raise ValueError("node failed")

    builder = counter_graph(0)
    builder.add_node("fail", fail)
    builder.add_edge("increment", "fail")
    locked = LockedGraph(builder.compile(checkpointer=harness.saver), wait=0)
    for _ in range(2):
        with pytest.raises(ValueError, match="node failed"):
            harness.invoke(locked, {"log": []}, thread("raises"))
        assert not busy(harness, "raises")
    if harness.backend == "postgres":
        assert _advisory_locks_held(harness) == 0


def _advisory_locks_held(h: Harness) -> int:
    import psycopg

    with psycopg.connect(h.saver.conn.conninfo, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                           "AND database = (SELECT oid FROM pg_database "
                           "WHERE datname = current_database())").fetchone()
        return int(row[0]) if row else -1


def test_a_stream_left_early_releases_its_lock(harness: Harness) -> None:
    locked = LockedGraph(linear_graph().compile(checkpointer=harness.saver), wait=0)
    config = thread("streamed")
    if harness.mode == "sync":
        chunks = locked.stream({"log": []}, config)
        next(chunks)
        assert busy(harness, "streamed")
        chunks.close()
    else:
        async def first_then_close() -> None:
            chunks = locked.astream({"log": []}, config)
            await chunks.__anext__()
            await chunks.aclose()

        harness.wait(first_then_close())
    assert not busy(harness, "streamed")


def test_locked_runs_of_one_process_never_interleave(harness: Harness) -> None:
    graph = counter_graph(0.005).compile(checkpointer=harness.saver)
    locked = LockedGraph(graph)
    config = thread("shared")
    run_concurrently(harness, [(locked, {"log": []}, config)] * 12)
    assert harness.get_state(graph, config).values["n"] == 12
    assert set(root_children(harness, config)) == {1}


def test_thread_locks_of_odd_ids_are_separate(harness: Harness) -> None:
    for thread_id in ODD_IDS:
        with held(harness, thread_id, wait=0):
            assert busy(harness, thread_id)
            others = [other for other in ODD_IDS if other != thread_id]
            assert not busy(harness, others[0]) and not busy(harness, thread_id + " ")
        assert not busy(harness, thread_id)


def test_a_busy_lock_is_taken_once_its_holder_lets_go(harness: Harness) -> None:
    """``wait`` seconds: a holder that lets go in time hands over, one that does not fails."""
    with held(harness, "handover"), pytest.raises(ThreadBusyError, match=r"waited 0\.2 s"), \
            held(harness, "handover", wait=0.2):
        pass
    release = threading.Event()
    if harness.mode == "sync":
        def hold() -> None:
            with thread_lock(harness.saver, "handover"):
                release.set()
                time.sleep(0.3)

        holder = threading.Thread(target=hold)
        holder.start()
        release.wait(5)
        with held(harness, "handover", wait=10):
            assert not holder.is_alive()  # only once the holder let go
        holder.join()
        return

    async def scenario() -> None:
        async def hold() -> None:
            async with athread_lock(harness.saver, "handover"):
                release.set()
                await asyncio.sleep(0.3)

        task = asyncio.ensure_future(hold())
        while not release.is_set():
            await asyncio.sleep(0.01)
        async with athread_lock(harness.saver, "handover", wait=10):
            assert task.done()
        await task

    harness.wait(scenario())

"""`LockedGraph`, `VersionedGraph` and thread locks on every backend, in both modes.

Within one process; tests/processes/test_concurrency_processes.py runs real OS processes.
Graph runs are compared with the same runs on an `InMemorySaver`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from langgraph_persist_kit.concurrency import (
    LockedGraph,
    StaleThreadError,
    ThreadBusyError,
    VersionedGraph,
    athread_lock,
    thread_lock,
)
from langgraph_persist_kit.errors import ConfigurationError
from tests.helpers.backends import Space, async_saver, sync_saver
from tests.helpers.concurrency_worker import builder as counter_graph
from tests.helpers.graphs import (
    assert_same_thread,
    interrupt_graph,
    linear_graph,
    run_concurrently,
    sides,
    stream,
    subgraph_graph,
    thread,
)
from tests.helpers.harness import Harness, open_harness

REDIS_COMBINATIONS = [(b, m) for b in ("redis", "redis-cluster") for m in ("sync", "async")]


@pytest.fixture(params=REDIS_COMBINATIONS, ids=[f"{b}-{m}" for b, m in REDIS_COMBINATIONS])
def redis_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    backend, mode = request.param
    yield from open_harness(backend, mode, Space(tmp_path, __name__))


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


def head(h: Harness, graph: Any, config: dict) -> str | None:
    return h.get_state(graph, config).config["configurable"].get("checkpoint_id")


def root_children(h: Harness, config: dict) -> list[int]:
    """How many root checkpoints each parent has (a linear history: all 1)."""
    counts: dict[Any, int] = {}
    for item in h.call("list", {"configurable": {**config["configurable"],
                                                 "checkpoint_ns": ""}}):
        parent = (item.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        counts[parent] = counts.get(parent, 0) + 1
    return list(counts.values())


# --- LockedGraph ----------------------------------------------------------------------


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


def test_redis_lock_keys_live_in_their_threads_slot(redis_harness: Harness) -> None:
    harness = redis_harness
    from redis.cluster import key_slot

    keys = harness.saver.plans.keys
    for thread_id in ODD_IDS:
        assert key_slot(keys.lock_key(thread_id)) == key_slot(keys.thread_keys(thread_id)[0])


def test_a_redis_lease_is_renewed_while_the_run_lasts(redis_harness: Harness) -> None:
    harness = redis_harness
    client, key = harness.saver.client, harness.saver.plans.keys.lock_key("long run")
    # a lease due later is held first: the renewer must wake up early for the short one
    with held(harness, "other thread", lease=30), held(harness, "long run", lease=0.3):
        if harness.mode == "sync":
            time.sleep(1.0)
        else:
            harness.wait(asyncio.sleep(1.0))  # the renewing task runs on this loop
        assert busy(harness, "long run")
        ttl = client.pttl(key) if harness.mode == "sync" else harness.wait(client.pttl(key))
        assert 0 < ttl <= 300
    assert not busy(harness, "long run")


# --- VersionedGraph -------------------------------------------------------------------


def test_versioned_runs_continue_only_the_expected_checkpoint(harness: Harness) -> None:
    config = thread("versioned")
    pairs = sides(harness, interrupt_graph)
    for h, graph in pairs:
        if isinstance(h.saver, InMemorySaver):
            h.invoke(graph, {"topic": "a"}, config)
            h.invoke(graph, Command(resume="yes"), config)
            continue
        versioned = VersionedGraph(graph)
        h.invoke(versioned, {"topic": "a"}, config, expected_checkpoint_id=None)
        with pytest.raises(StaleThreadError, match="expected its latest checkpoint"):
            h.invoke(versioned, {"topic": "b"}, config, expected_checkpoint_id=None)
        seen = head(h, graph, config)
        before = len(h.call("list", config))
        with pytest.raises(StaleThreadError):
            h.invoke(versioned, Command(resume="no"), config, expected_checkpoint_id="1f0-old")
        assert len(h.call("list", config)) == before  # refused before writing anything
        stream(h, versioned, Command(resume="yes"), config, expected_checkpoint_id=seen)
        with pytest.raises(StaleThreadError):
            h.invoke(versioned, Command(resume="again"), config, expected_checkpoint_id=seen)
    assert_same_thread(pairs, config)


def test_a_versioned_run_overtaken_midway_stores_nothing_more(harness: Harness) -> None:
    started, go_on = threading.Event(), threading.Event()

    def slow(state: dict) -> dict:
        started.set()
        go_on.wait(10)
        return {"log": ["slow"]}

    after: list[str] = []
    builder = counter_graph(0)
    builder.add_node("slow", slow)
    builder.add_node("after", lambda state: after.append("ran") or {"log": ["after"]})
    builder.add_edge("increment", "slow")
    builder.add_edge("slow", "after")
    graph = builder.compile(checkpointer=harness.saver)
    config = thread("overtaken")
    harness.invoke(graph.copy(update={"interrupt_before_nodes": ["slow"]}), {"log": []}, config)
    seen = head(harness, graph, config)
    versioned = VersionedGraph(graph)
    if harness.mode == "sync":
        def overtake() -> None:  # another writer, while the versioned run is in "slow"
            started.wait(10)
            graph.update_state(config, {"n": 50})
            go_on.set()

        other = threading.Thread(target=overtake)
        other.start()
        with pytest.raises(StaleThreadError):
            versioned.invoke(None, config, expected_checkpoint_id=seen)
        other.join()
    else:
        async def scenario() -> None:
            run = asyncio.ensure_future(
                versioned.ainvoke(None, config, expected_checkpoint_id=seen))
            while not started.is_set():
                await asyncio.sleep(0.01)
            await graph.aupdate_state(config, {"n": 50})
            go_on.set()
            with pytest.raises(StaleThreadError):
                await run

        harness.wait(scenario())
    state = harness.get_state(graph, config)
    assert state.values["n"] == 50 and "slow" not in state.values["log"]  # "slow" was refused
    assert after == []  # the run stopped at the refused checkpoint (durability="sync")
    assert set(root_children(harness, config)) == {1}
    # runs without the wrapper are never constrained: time travel to an older checkpoint
    harness.update_state(graph, thread("overtaken", checkpoint_id=seen), {"n": 100})
    assert harness.get_state(graph, config).values["n"] == 100


def test_versioned_subgraph_checkpoints_are_not_constrained(harness: Harness) -> None:
    config = thread("nested")
    pairs = sides(harness, subgraph_graph)
    for h, graph in pairs:
        runner = graph if isinstance(h.saver, InMemorySaver) else VersionedGraph(graph)
        extra = {} if runner is graph else {"expected_checkpoint_id": None}
        h.invoke(runner, {"log": []}, config, **extra)
        if runner is not graph:
            extra = {"expected_checkpoint_id": head(h, graph, config)}
        h.invoke(runner, Command(resume="ok"), config, **extra)
    assert_same_thread(pairs, config, subgraphs=True)


def test_versioned_graph_refuses_what_it_cannot_check(harness: Harness) -> None:
    graph = counter_graph(0).compile(checkpointer=harness.saver)
    versioned = VersionedGraph(graph)
    config = thread("checked")
    harness.invoke(graph, {"log": []}, config)
    seen = head(harness, graph, config)
    at_seen = thread("checked", checkpoint_id=seen)
    with pytest.raises(ConfigurationError, match="thread"):
        harness.invoke(versioned, {"log": []}, {}, expected_checkpoint_id=seen)
    with pytest.raises(ConfigurationError, match="replay"):
        harness.invoke(versioned, {"log": []}, at_seen, expected_checkpoint_id="other")
    with pytest.raises(ConfigurationError, match="expected_checkpoint_id"):
        harness.invoke(versioned, {"log": []}, config, expected_checkpoint_id="")
    harness.invoke(versioned, {"log": []}, at_seen, expected_checkpoint_id=seen)
    assert harness.get_state(graph, config).values["n"] == 2


# --- which savers and modes -----------------------------------------------------------


def test_wrong_mode_and_foreign_savers_get_a_clear_error(harness: Harness) -> None:
    graph = counter_graph(0).compile(checkpointer=harness.saver)
    config = thread("mode")
    if harness.mode == "sync":
        with pytest.raises(ConfigurationError, match="synchronous: use thread_lock"):
            asyncio.run(LockedGraph(graph).ainvoke({"log": []}, config))
    else:
        with pytest.raises(ConfigurationError, match="asynchronous: use athread_lock"):
            LockedGraph(graph).invoke({"log": []}, config)
    with pytest.raises(ConfigurationError, match="VersionedGraph needs"):
        VersionedGraph(counter_graph(0).compile(checkpointer=InMemorySaver())).invoke(
            {"log": []}, config, expected_checkpoint_id=None)
    with pytest.raises(ConfigurationError, match="compiled with a checkpointer"):
        LockedGraph(counter_graph(0).compile()).invoke({"log": []}, config)


def _lock_in(saver: Any) -> AbstractContextManager[None]:
    return thread_lock(saver, "t", wait=0)


def test_in_memory_saver_locks_within_its_process() -> None:
    saver = InMemorySaver()
    with _lock_in(saver), pytest.raises(ThreadBusyError), _lock_in(saver):
        pass
    with _lock_in(saver), _lock_in(InMemorySaver()):
        pass  # another store
    graph = LockedGraph(counter_graph(0).compile(checkpointer=saver))
    assert asyncio.run(graph.ainvoke({"log": []}, thread("t")))["n"] == 1
    with pytest.raises(ConfigurationError, match="wait"), thread_lock(saver, "t", wait=-1):
        pass
    with pytest.raises(ConfigurationError, match="thread locks need"), \
            thread_lock(object(), "t"):
        pass


def test_a_postgres_saver_on_one_connection_locks_too(tmp_path: Path) -> None:
    """Its locks live on connections of their own, beside the saver's one connection."""
    import psycopg

    from langgraph_persist_kit.postgres import PostgresSaver

    with sync_saver("postgres", Space(tmp_path, __name__)) as pooled:
        harness = Harness("postgres", "sync", pooled, None)
        conninfo = pooled.conn.conninfo
        with psycopg.connect(conninfo, autocommit=True) as conn:
            single = PostgresSaver(conn, schema=pooled.plans.schema)
            with thread_lock(single, "one connection", wait=0):
                assert busy(harness, "one connection")  # the pooled saver: another session
                with pytest.raises(ThreadBusyError), thread_lock(single, "one connection",
                                                                 wait=0):
                    pass
            assert not busy(harness, "one connection")
            graph = LockedGraph(counter_graph(0).compile(checkpointer=single), wait=0)
            assert graph.invoke({"log": []}, thread("one connection"))["n"] == 1


def test_a_versioned_put_retried_after_a_lost_reply_passes(harness: Harness) -> None:
    """Drivers may send a put again when its reply was lost: the checkpoint already is
    the head then, and that is no conflict."""
    from langgraph.checkpoint.base import empty_checkpoint

    from langgraph_persist_kit._core.versioning import EXPECTED_KEY

    config = {"configurable": {"thread_id": "retried", "checkpoint_ns": "", EXPECTED_KEY: ""}}
    first = empty_checkpoint()
    for _ in range(2):
        stored = harness.call("put", config, first, {"step": -1}, {})
    assert stored["configurable"]["checkpoint_id"] == first["id"]
    other = empty_checkpoint()
    with pytest.raises(StaleThreadError):
        harness.call("put", config, other, {"step": -1}, {})
    assert [t.checkpoint["id"] for t in harness.call("list", thread("retried"))] == [first["id"]]


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "redis"])
def test_a_cancelled_async_run_releases_its_lock(backend: str, tmp_path: Path) -> None:
    async def scenario(saver: Any) -> None:
        async def slow(state: dict) -> dict:
            await asyncio.sleep(30)
            return {}

        builder = counter_graph(0)
        builder.add_node("slow", slow)
        builder.add_edge("increment", "slow")
        locked = LockedGraph(builder.compile(checkpointer=saver), wait=0)
        run = asyncio.ensure_future(locked.ainvoke({"log": []}, thread("cancelled")))
        await asyncio.sleep(0.3)
        with pytest.raises(ThreadBusyError):
            async with athread_lock(saver, "cancelled", wait=0):
                pass
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        async with athread_lock(saver, "cancelled", wait=0):
            pass

    async def main() -> None:
        async with async_saver(backend, Space(tmp_path, __name__)) as saver:
            await scenario(saver)

    asyncio.run(main())


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_locked_runs_never_exhaust_the_postgres_pool(mode: str, tmp_path: Path) -> None:
    """Lock connections come from a pool of their own: more locked runs than the saver's
    pool has connections all finish."""
    space = Space(tmp_path, __name__)
    runs = 6

    def graph_on(saver: Any) -> Any:
        return LockedGraph(counter_graph(0.2).compile(checkpointer=saver))

    if mode == "sync":
        with sync_saver("postgres", space, pool_max_size=2, pool_timeout=5) as saver:
            locked = graph_on(saver)
            with ThreadPoolExecutor(runs) as pool:
                results = list(pool.map(
                    lambda i: locked.invoke({"log": []}, thread(f"t{i}")), range(runs)))
    else:
        async def main() -> list[Any]:
            async with async_saver("postgres", space, pool_max_size=2, pool_timeout=5) as saver:
                locked = graph_on(saver)
                return await asyncio.gather(*(locked.ainvoke({"log": []}, thread(f"t{i}"))
                                              for i in range(runs)))

        results = asyncio.run(main())
    assert [r["n"] for r in results] == [1] * runs


def test_an_unusable_sqlite_lock_file_is_an_error_not_a_busy_thread(tmp_path: Path) -> None:
    from langgraph_persist_kit.errors import BackendError
    from langgraph_persist_kit.sqlite import SqliteSaver

    (tmp_path / "store.db.threads.lock").mkdir()  # cannot be opened as a file
    with SqliteSaver.from_conn_string(str(tmp_path / "store.db")) as saver, \
            pytest.raises(BackendError, match="thread lock file"), thread_lock(saver, "t"):
        pass

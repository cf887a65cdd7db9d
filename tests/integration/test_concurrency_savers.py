"""Which savers and modes the concurrency wrappers take, and each kind of saver's own
locks: Redis lock keys in their thread's slot and leases renewed while a run lasts, an
`InMemorySaver` locking within its process, a Postgres saver on one connection and lock
connections that never exhaust the saver's pool, an unusable SQLite lock file, a
cancelled async run releasing its lock, and a clear error for the wrong mode or a saver
that cannot lock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_persist_kit.concurrency import (
    LockedGraph,
    ThreadBusyError,
    VersionedGraph,
    athread_lock,
    thread_lock,
)
from langgraph_persist_kit.errors import ConfigurationError
from tests.helpers.backends import Space, async_saver, sync_saver
from tests.helpers.concurrency import ODD_IDS, busy, held
from tests.helpers.concurrency_worker import builder as counter_graph
from tests.helpers.differential import thread
from tests.helpers.harness import Harness, open_harness

REDIS_COMBINATIONS = [(b, m) for b in ("redis", "redis-cluster") for m in ("sync", "async")]


@pytest.fixture(params=REDIS_COMBINATIONS, ids=[f"{b}-{m}" for b, m in REDIS_COMBINATIONS])
def redis_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    backend, mode = request.param
    yield from open_harness(backend, mode, Space(tmp_path, __name__))


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

"""How the Postgres savers hold their connections: pool calls that do not wait for one
another (no saver-wide lock), a server restart between invocations, connections and
pools the caller opens with LangGraph's documented settings, non-autocommit connections
refused, and an unreachable server or a URL of another store. Schemas, migrations and
URL options are in test_postgres_schemas.py, round trips and stored rows in
test_postgres_storage.py, PgBouncer in test_pgbouncer.py."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.conformance.test_utils import generate_config
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from langgraph_persist_kit.errors import BackendUnavailableError, ConfigurationError
from langgraph_persist_kit.maintenance import maintenance_lock
from langgraph_persist_kit.postgres import AsyncPostgresSaver, PostgresSaver
from langgraph_persist_kit.postgres._thread_lock import aclose_lock_pool, close_lock_pool
from tests.helpers.backends import POSTGRES_URL, fresh_schema, postgres_url
from tests.helpers.graphs import chat_graph
from tests.helpers.postgres_checkpoints import put_one


def module_url() -> str:
    """This module's database (created on first use, never at import: worker
    processes re-import the module)."""
    return postgres_url(__name__)



def lock_thread_row(schema: str, thread_id: str) -> psycopg.Connection:
    """A connection holding the registry row of ``thread_id`` locked (until rollback)."""
    locker = psycopg.connect(module_url())
    locker.execute(
        f'SELECT 1 FROM "{schema}".threads WHERE thread_id = %s FOR UPDATE', (thread_id,)
    )
    return locker


def wait_for_lock_waiter() -> None:
    """Return once some backend waits on a lock: the stalled saver call got there."""
    with psycopg.connect(module_url(), autocommit=True) as conn:
        for _ in range(1000):
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ).fetchone()
            if waiting and waiting[0]:
                return
            time.sleep(0.01)
    raise AssertionError("the saver call never reached the row lock")


def test_pool_calls_do_not_wait_for_each_other(schema: str) -> None:
    with PostgresSaver.from_conn_string(module_url(), schema=schema, pool_max_size=4) as saver:
        blocked_parent = put_one(saver, "blocked")
        free_parent = put_one(saver, "free")
        locker = lock_thread_row(schema, "blocked")
        stalled = threading.Thread(target=put_one, args=(saver, "blocked", blocked_parent))
        stalled.start()
        wait_for_lock_waiter()
        # with a saver-wide lock these would wait behind the stalled put
        assert saver.get_tuple(generate_config("free")) is not None
        put_one(saver, "free", free_parent)
        assert stalled.is_alive()
        locker.rollback()
        locker.close()
        stalled.join(30)
        assert not stalled.is_alive()
        assert len(list(saver.list(generate_config("blocked")))) == 2


async def test_async_pool_calls_do_not_wait_for_each_other(schema: str) -> None:
    async with AsyncPostgresSaver.from_conn_string(
        module_url(), schema=schema, pool_max_size=4
    ) as saver:
        blocked_parent = await put_one(saver, "blocked")
        await put_one(saver, "free")
        locker = lock_thread_row(schema, "blocked")
        stalled = asyncio.ensure_future(put_one(saver, "blocked", blocked_parent))
        await asyncio.to_thread(wait_for_lock_waiter)
        free = await asyncio.gather(*(saver.aget_tuple(generate_config("free")) for _ in range(3)))
        assert all(t is not None for t in free)
        assert not stalled.done()
        locker.rollback()
        locker.close()
        await asyncio.wait_for(stalled, 30)
        assert len([t async for t in saver.alist(generate_config("blocked"))]) == 2


def _restart_postgres() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[0]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True
    )
    for _ in range(100):
        if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0:
            return
        time.sleep(0.1)
    raise AssertionError("PostgreSQL did not come back")


def test_a_server_restart_between_invocations_is_invisible(schema: str) -> None:
    with PostgresSaver.from_conn_string(module_url(), schema=schema, pool_min_size=2) as saver:
        graph = chat_graph().compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "survivor"}}
        graph.invoke({"messages": [HumanMessage("before", id="h1")]}, config)
        _restart_postgres()
        graph.invoke({"messages": [HumanMessage("after", id="h2")]}, config)
        contents = [m.content for m in graph.get_state(config).values["messages"]]
    assert contents == ["before", "reply 1 to 'before'", "after", "reply 2 to 'after'"]


async def test_a_server_restart_is_invisible_async(schema: str) -> None:
    async with AsyncPostgresSaver.from_conn_string(
        module_url(), schema=schema, pool_min_size=3
    ) as saver:
        graph = chat_graph().compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "survivor"}}
        await graph.ainvoke({"messages": [HumanMessage("before", id="h1")]}, config)
        await asyncio.to_thread(_restart_postgres)
        await graph.ainvoke({"messages": [HumanMessage("after", id="h2")]}, config)
        state = await graph.aget_state(config)
    assert [m.content for m in state.values["messages"]][2:] == ["after", "reply 2 to 'after'"]


def test_non_autocommit_connections_are_refused(schema: str) -> None:
    with PostgresSaver.from_conn_string(module_url(), schema=schema):
        pass
    conn = psycopg.connect(
        module_url()
    )  # autocommit off: writes would join the caller's transaction
    with pytest.raises(ConfigurationError, match="autocommit"):
        put_one(PostgresSaver(conn, schema=schema), "t")
    conn.close()


def test_unreachable_server_and_bad_urls() -> None:
    started = time.monotonic()
    with (
        pytest.raises(BackendUnavailableError, match="unavailable"),
        PostgresSaver.from_conn_string("postgresql://postgres@127.0.0.1:1/x", pool_timeout=2),
    ):
        pass
    assert time.monotonic() - started < 30
    for bad in ("mysql://x/y", "sqlite:///x.db", "127.0.0.1:5432"):
        with pytest.raises(ConfigurationError), PostgresSaver.from_conn_string(bad):
            pass


# --- connections opened as users open them ------------------------------------------

DOCUMENTED = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
"""LangGraph's documented settings for a connection given to a Postgres saver."""


@pytest.fixture(scope="module")
def fresh_database() -> Iterator[str]:
    """A database of its own, no schema set up in it yet."""
    name = f"pk_settings_{os.getpid()}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield module_url().rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _use(saver: Any) -> None:
    """What a graph does with a saver: setup, put, read back, list, lock a thread."""
    saver.setup()
    parent = put_one(saver, "t")
    put_one(saver, "t", parent)
    assert saver.get_tuple(generate_config("t")).checkpoint["channel_values"] == {"v": "t"}
    assert len(list(saver.list(generate_config("t")))) == 2
    assert [t.thread_id for t in saver.list_threads()] == ["t"]
    lock = saver.thread_lock_handle("t", lease=30)
    assert lock.try_acquire()
    lock.release()
    with maintenance_lock(saver):
        saver.delete_thread("t")
    assert saver.get_tuple(generate_config("t")) is None


async def _ause(saver: Any) -> None:
    await saver.setup()
    parent = await put_one(saver, "t")
    await put_one(saver, "t", parent)
    assert (await saver.aget_tuple(generate_config("t"))).checkpoint["channel_values"] == {
        "v": "t"}
    assert len([c async for c in saver.alist(generate_config("t"))]) == 2
    assert [t.thread_id async for t in saver.alist_threads()] == ["t"]
    lock = await saver.athread_lock_handle("t", lease=30)
    assert await lock.try_acquire()
    await lock.release()
    await saver.adelete_thread("t")
    assert await saver.aget_tuple(generate_config("t")) is None


@pytest.mark.parametrize("settings", [DOCUMENTED, {"autocommit": True}],
                         ids=["documented", "autocommit-only"])
@pytest.mark.parametrize("holder", ["connection", "pool"])
def test_caller_connections_with_documented_settings(
    fresh_database: str, holder: str, settings: dict[str, Any]
) -> None:
    if holder == "connection":
        with psycopg.connect(fresh_database, **settings) as conn:
            _use(PostgresSaver(conn, schema=fresh_schema()))
    else:
        with ConnectionPool(fresh_database, kwargs=settings, min_size=1, max_size=2) as pool:
            _use(PostgresSaver(pool, schema=fresh_schema()))
            close_lock_pool(pool)


@pytest.mark.parametrize("settings", [DOCUMENTED, {"autocommit": True}],
                         ids=["documented", "autocommit-only"])
@pytest.mark.parametrize("holder", ["connection", "pool"])
async def test_async_caller_connections_with_documented_settings(
    fresh_database: str, holder: str, settings: dict[str, Any]
) -> None:
    if holder == "connection":
        async with await psycopg.AsyncConnection.connect(fresh_database, **settings) as conn:
            await _ause(AsyncPostgresSaver(conn, schema=fresh_schema()))
    else:
        async with AsyncConnectionPool(fresh_database, kwargs=settings, min_size=1,
                                       max_size=2) as pool:
            await _ause(AsyncPostgresSaver(pool, schema=fresh_schema()))
            await aclose_lock_pool(pool)

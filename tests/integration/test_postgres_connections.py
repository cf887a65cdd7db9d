"""PostgreSQL specifics: pools without a global lock, restarts, schemas, migrations,
encryption, round trips and index use. PgBouncer has its own module."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import ormsgpack
import psycopg
import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.conformance.test_utils import (
    generate_checkpoint,
    generate_config,
    generate_metadata,
)
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.types import Command
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from langgraph_persist_kit.errors import (
    BackendUnavailableError,
    ConfigurationError,
    SchemaVersionError,
)
from langgraph_persist_kit.maintenance import maintenance_lock
from langgraph_persist_kit.postgres import AsyncPostgresSaver, PostgresSaver
from langgraph_persist_kit.postgres._thread_lock import aclose_lock_pool, close_lock_pool
from tests.helpers.backends import POSTGRES_URL, fresh_schema, postgres_url
from tests.helpers.delta import build_chain
from tests.helpers.graphs import chat_graph, interrupt_graph
from tests.helpers.paths import ROOT
from tests.helpers.postgres import CountingCursor, count_round_trips


def module_url() -> str:
    """This module's database (created on first use, never at import: worker
    processes re-import the module)."""
    return postgres_url(__name__)


MIGRATIONS_DIR = ROOT / "langgraph_persist_kit" / "postgres" / "migrations"


@pytest.fixture
def schema() -> str:
    return fresh_schema()


def put_one(saver: Any, thread_id: str, parent: dict | None = None) -> Any:
    """A put call (a coroutine for async savers) of one small checkpoint."""
    config = generate_config(thread_id)
    if parent:
        config["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
    checkpoint = generate_checkpoint(channel_values={"v": thread_id}, channel_versions={"v": 1})
    put = saver.aput if isinstance(saver, AsyncPostgresSaver) else saver.put
    return put(config, checkpoint, generate_metadata(), {"v": 1})


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


def test_schemas_isolate_tenants() -> None:
    a, b = fresh_schema(), fresh_schema()
    with (
        PostgresSaver.from_conn_string(module_url(), schema=a) as sa,
        PostgresSaver.from_conn_string(module_url(), schema=b) as sb,
    ):
        put_one(sa, "shared-name")
        put_one(sa, "only-a")
        put_one(sb, "shared-name")
        assert {t.thread_id for t in sa.list_threads()} == {"shared-name", "only-a"}
        assert [t.thread_id for t in sb.list_threads()] == ["shared-name"]
        assert sb.get_tuple(generate_config("only-a")) is None
        sb.delete_thread("shared-name")
        assert sa.get_tuple(generate_config("shared-name")) is not None
    with psycopg.connect(module_url()) as conn:
        tables = conn.execute(
            "SELECT table_schema, count(*) FROM information_schema.tables"
            " WHERE table_schema IN (%s, %s) GROUP BY 1 ORDER BY 1",
            (a, b),
        ).fetchall()
    assert sorted(tables) == sorted([(a, 5), (b, 5)])


def _setup_in(url: str, schema: str) -> None:
    with PostgresSaver.from_conn_string(url, schema=schema):
        pass


def test_four_processes_set_up_a_fresh_database_at_once() -> None:
    name = f"pk_fresh_{os.getpid()}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = module_url().rsplit("/", 1)[0] + "/" + name
    try:
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_setup_in, args=(url, "shared")) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0, 0, 0, 0]
        with psycopg.connect(url) as conn:
            versions = conn.execute(
                'SELECT version FROM "shared".persist_kit_migrations'
            ).fetchall()
        assert versions == [(1,)]
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_newer_schema_is_refused(schema: str) -> None:
    with PostgresSaver.from_conn_string(module_url(), schema=schema):
        pass
    with psycopg.connect(module_url(), autocommit=True) as conn:
        conn.execute(
            f'INSERT INTO "{schema}".persist_kit_migrations VALUES (999, %s, 0)', ("future",)
        )
    with (
        pytest.raises(SchemaVersionError, match="999"),
        PostgresSaver.from_conn_string(module_url(), schema=schema),
    ):
        pass


def test_migrations_never_build_indexes_concurrently() -> None:
    files = sorted(MIGRATIONS_DIR.glob("*.sql"))
    assert files
    for path in files:
        assert "CONCURRENTLY" not in path.read_text().upper(), path.name


def test_encryption_leaves_no_value_in_plaintext(schema: str) -> None:
    secret, number = "TOPSECRET-7f3a", 987_654_321_123
    serde = EncryptedSerializer.from_pycryptodome_aes(key=b"0123456789abcdef")
    with PostgresSaver.from_conn_string(module_url(), schema=schema, serde=serde) as saver:
        graph = interrupt_graph().compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "enc"}}
        graph.invoke({"topic": secret, "answer": number}, config)
        assert graph.get_state(config).next == ("ask",)  # paused: the interrupt is a pending write
        saver.put_writes(saver.get_tuple(config).config, [("log", secret)], "extra-task")
        snapshot = graph.invoke(Command(resume=secret), config)
        assert snapshot["answer"] == secret
    with psycopg.connect(module_url()) as conn:
        dump = "\n".join(
            row[0]
            for table in ("threads", "checkpoints", "channel_values", "writes")
            for row in conn.execute(f'SELECT t::text FROM "{schema}".{table} AS t').fetchall()
        )
    assert dump.count("\n") >= 10  # threads, checkpoints, values and writes were stored
    for plain in (secret.encode(), ormsgpack.packb(number)):
        assert plain.hex() not in dump
    assert secret not in dump


def test_one_round_trip_per_call(schema: str) -> None:
    conn = psycopg.connect(module_url(), autocommit=True, cursor_factory=CountingCursor)
    saver = PostgresSaver(conn, schema=schema)
    saver.setup()
    parent = put_one(saver, "t")
    assert count_round_trips(lambda: put_one(saver, "t", parent)) == 1
    latest = saver.get_tuple(generate_config("t"))
    writes = [("a", 1), ("b", 2)]
    assert count_round_trips(lambda: saver.put_writes(latest.config, writes, "x")) == 1
    assert count_round_trips(lambda: saver.get_tuple(generate_config("t"))) == 1
    config = None
    for _ in range(250):
        config = put_one(saver, "long", config)
    assert count_round_trips(lambda: next(iter(saver.list(generate_config("long"))))) == 1
    assert count_round_trips(lambda: list(saver.list(generate_config("long")))) == 3
    conn.close()


def test_filters_can_use_the_gin_indexes(schema: str) -> None:
    with PostgresSaver.from_conn_string(module_url(), schema=schema) as saver:
        put_one(saver, "t")
        plans = saver.plans
        queries = [
            next(
                plans.list_checkpoints(
                    saver.serde, None, filter={"user": "ann"}, before=None, limit=10
                )
            ),
            next(plans.list_threads(filter={"user": "ann", "tags": ["a"]}, limit=10)),
        ]
    with psycopg.connect(module_url()) as conn:
        conn.execute("SET enable_seqscan = off")
        for query, index in zip(
            queries, ("checkpoints_by_metadata", "threads_by_metadata"), strict=True
        ):
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + query.sql, query.params))
            assert index in plan, plan


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


def test_delta_history_takes_a_bounded_number_of_queries(schema: str) -> None:
    conn = psycopg.connect(module_url(), autocommit=True, cursor_factory=CountingCursor)
    saver = PostgresSaver(conn, schema=schema)
    saver.setup()
    ids = build_chain(
        [saver],
        lambda s, name, *a, **k: getattr(s, name)(*a, **k),
        "deep",
        700,
        snapshot_every=None,
    )
    config = {"configurable": {"thread_id": "deep", "checkpoint_ns": "", "checkpoint_id": ids[-1]}}
    result: dict = {}
    queries = count_round_trips(
        lambda: result.update(saver.get_delta_channel_history(config=config, channels=["d"]))
    )
    assert len(result["d"]["writes"]) == 2 * 699  # every ancestor's writes, oldest first
    assert queries <= 4  # walk rounds of 64, 512, 4096 ancestors, then seeds and writes
    conn.close()


def test_schema_can_come_from_the_url(schema: str) -> None:
    with PostgresSaver.from_conn_string(f"{module_url()}?schema={schema}") as saver:
        put_one(saver, "via-url")
        assert saver.plans.schema == schema
    with PostgresSaver.from_conn_string(module_url(), schema=schema) as saver:
        assert [t.thread_id for t in saver.list_threads()] == ["via-url"]
    with PostgresSaver.from_conn_string(module_url()) as saver:  # public: another tenant
        assert saver.get_tuple(generate_config("via-url")) is None


def test_non_autocommit_connections_are_refused(schema: str) -> None:
    with PostgresSaver.from_conn_string(module_url(), schema=schema):
        pass
    conn = psycopg.connect(
        module_url()
    )  # autocommit off: writes would join the caller's transaction
    with pytest.raises(ConfigurationError, match="autocommit"):
        put_one(PostgresSaver(conn, schema=schema), "t")
    conn.close()


def test_a_role_without_create_privilege_uses_a_migrated_schema(schema: str) -> None:
    role = f"pk_app_{os.getpid()}"
    with PostgresSaver.from_conn_string(module_url(), schema=schema):
        pass  # the owner migrates
    with psycopg.connect(module_url(), autocommit=True) as conn:
        conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        conn.execute(
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"'
        )
    app_url = module_url().replace("postgres@", f"{role}@", 1)
    try:
        with PostgresSaver.from_conn_string(app_url, schema=schema) as saver:
            put_one(saver, "least-privilege")
            assert [t.thread_id for t in saver.list_threads()] == ["least-privilege"]
    finally:
        with psycopg.connect(module_url(), autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


def test_url_parameters_keep_their_encoding(schema: str) -> None:
    query = f"application_name=my%20app&schema={schema}&options=-c%20statement_timeout%3D5000"
    url = f"{module_url()}?{query}"
    with PostgresSaver.from_conn_string(url) as saver:
        put_one(saver, "t")
        assert saver.plans.schema == schema
        with saver.conn.connection() as conn:  # the saver's own pool
            assert conn.execute("SHOW application_name").fetchone() == ("my app",)
            assert conn.execute("SHOW statement_timeout").fetchone() == ("5s",)


def test_nul_in_nested_metadata_is_a_clear_error(schema: str) -> None:
    with PostgresSaver.from_conn_string(module_url(), schema=schema) as saver:
        config = generate_config("t")
        checkpoint = generate_checkpoint()
        with pytest.raises(ConfigurationError, match="NUL"):
            saver.put(config, checkpoint, {"a": {"b": "x\x00y"}}, {})
        stored = saver.put(config, checkpoint, {"a": {"b": "x\\u0000y"}}, {})  # text, no NUL
        assert saver.get_tuple(stored).metadata["a"] == {"b": "x\\u0000y"}


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


def test_libpq_key_value_strings_are_accepted(schema: str) -> None:
    info = conninfo_to_dict(module_url())
    conninfo = make_conninfo(**info)  # "host=127.0.0.1 port=5432 dbname=... user=postgres"
    assert "://" not in conninfo
    with PostgresSaver.from_conn_string(conninfo, schema=schema) as saver:
        put_one(saver, "kv")
        assert saver.plans.schema == schema
    with PostgresSaver.from_conn_string(f"{module_url()}?schema={schema}") as saver:
        assert [t.thread_id for t in saver.list_threads()] == ["kv"]  # the same schema
    with (pytest.raises(ConfigurationError, match="pass schema=") as caught,
          PostgresSaver.from_conn_string(f"{conninfo} schema={schema}")):
        pass
    assert caught.value.__cause__ is None


async def test_libpq_key_value_strings_are_accepted_async(schema: str) -> None:
    conninfo = make_conninfo(**conninfo_to_dict(module_url()))
    async with AsyncPostgresSaver.from_conn_string(conninfo, schema=schema) as saver:
        await put_one(saver, "kv")
        assert [t.thread_id async for t in saver.alist_threads()] == ["kv"]


def test_unknown_url_options_are_named(schema: str) -> None:
    with (pytest.raises(ConfigurationError, match='"shema"'),
          PostgresSaver.from_conn_string(f"{module_url()}?shema={schema}")):
        pass

"""SQLite specifics: storage layout, atomicity, several processes on one file, migrations."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.conformance.test_utils import (
    generate_checkpoint,
    generate_config,
    generate_metadata,
)
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from langgraph_persist_kit._core.urls import sqlite_path
from langgraph_persist_kit.errors import (
    BackendError,
    ConfigurationError,
    SchemaVersionError,
)
from langgraph_persist_kit.sqlite import AsyncSqliteSaver, SqliteSaver
from langgraph_persist_kit.sqlite._plans import PLANS

BIG = "x" * 100_000


def put_steps(saver: SqliteSaver, thread_id: str, steps: int) -> list[dict]:
    """A chat-like chain: ``big`` never changes, ``turn`` changes every step."""
    configs: list[dict] = []
    for i in range(steps):
        config = generate_config(thread_id)
        if configs:
            config["configurable"]["checkpoint_id"] = configs[-1]["configurable"]["checkpoint_id"]
        versions = {"big": 1, "turn": i + 1}
        checkpoint = generate_checkpoint(channel_values={"big": BIG, "turn": i},
                                         channel_versions=versions)
        new = versions if i == 0 else {"turn": i + 1}
        configs.append(saver.put(config, checkpoint, generate_metadata(step=i), new))
    return configs


def scalar(path: Path, sql: str, *params: object) -> object:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchone()[0]


def test_unchanged_channel_value_is_stored_once(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with SqliteSaver.from_conn_string(str(db)) as saver:
        configs = put_steps(saver, "chat", 30)
        for config in (configs[0], configs[17], configs[-1]):
            assert saver.get_tuple(config).checkpoint["channel_values"]["big"] == BIG
    assert scalar(db, "SELECT count(*) FROM channel_values WHERE channel = 'big'") == 1
    assert scalar(db, "SELECT count(*) FROM channel_values WHERE channel = 'turn'") == 30
    assert scalar(db, "SELECT max(length(checkpoint)) FROM checkpoints") < 2_000


def test_failed_put_leaves_nothing_behind(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with SqliteSaver.from_conn_string(str(db)) as saver:
        saver.conn.execute(
            "CREATE TRIGGER fail AFTER INSERT ON checkpoints WHEN NEW.thread_id = 'doomed'"
            " BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
        )
        checkpoint = generate_checkpoint(channel_values={"a": "v"}, channel_versions={"a": 1})
        with pytest.raises(BackendError, match="disk on fire") as caught:
            saver.put(generate_config("doomed"), checkpoint, generate_metadata(), {"a": 1})
        assert isinstance(caught.value.__cause__, sqlite3.Error)
        put_steps(saver, "fine", 2)  # the connection is usable afterwards
    assert scalar(db, "SELECT count(*) FROM channel_values WHERE thread_id = 'doomed'") == 0
    assert scalar(db, "SELECT count(*) FROM threads WHERE thread_id = 'doomed'") == 0
    assert scalar(db, "SELECT count(*) FROM checkpoints WHERE thread_id = 'fine'") == 2


async def test_failed_copy_is_rolled_back_async(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with SqliteSaver.from_conn_string(str(db)) as saver:
        configs = put_steps(saver, "src", 3)
        saver.put_writes(configs[-1], [("c", 1)], "task")
        saver.conn.execute(
            "CREATE TRIGGER fail AFTER INSERT ON writes WHEN NEW.thread_id = 'dst'"
            " BEGIN SELECT RAISE(ABORT, 'no room'); END"
        )
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        with pytest.raises(BackendError, match="no room"):
            await saver.acopy_thread("src", "dst")
        assert [t async for t in saver.alist({"configurable": {"thread_id": "dst"}})] == []
        assert [t.thread_id async for t in saver.alist_threads()] == ["src"]
    assert scalar(db, "SELECT count(*) FROM channel_values WHERE thread_id = 'dst'") == 0


def _writer(db: str, worker: int, steps: int) -> None:
    with SqliteSaver.from_conn_string(db, busy_timeout=60) as saver:
        parent = None
        for i in range(steps):
            config = generate_config(f"w{worker}")
            if parent:
                config["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
            checkpoint = generate_checkpoint(channel_values={"i": i}, channel_versions={"i": i + 1})
            parent = saver.put(config, checkpoint, generate_metadata(step=i), {"i": i + 1})
            saver.put_writes(parent, [("i", i), ("j", worker)], f"task-{i}")


def _run_processes(target: object, args: list[tuple]) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=target, args=a) for a in args]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * len(procs)


def test_processes_write_different_threads_at_once(tmp_path: Path) -> None:
    db = str(tmp_path / "shared.db")
    workers, steps = 4, 60
    _run_processes(_writer, [(db, w, steps) for w in range(workers)])
    with SqliteSaver.from_conn_string(db) as saver:
        for w in range(workers):
            listed = list(saver.list({"configurable": {"thread_id": f"w{w}"}}))
            assert len(listed) == steps
            assert listed[0].pending_writes == [(f"task-{steps - 1}", "i", steps - 1),
                                                (f"task-{steps - 1}", "j", w)]
        assert len(list(saver.list_threads())) == workers
    assert scalar(Path(db), "PRAGMA journal_mode") == "wal"


def _setup_only(db: str) -> None:
    with SqliteSaver.from_conn_string(db) as saver:
        saver.setup()


def test_concurrent_setup_applies_each_migration_once(tmp_path: Path) -> None:
    db = str(tmp_path / "fresh.db")
    _run_processes(_setup_only, [(db,)] * 4)
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT version, name FROM persist_kit_migrations").fetchall()
    assert rows == [(m.version, m.name) for m in PLANS.migrations]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    with SqliteSaver.from_conn_string(str(db)):
        pass
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO persist_kit_migrations VALUES (999, 'from_the_future', 0)")
    with pytest.raises(SchemaVersionError, match="999"), SqliteSaver.from_conn_string(str(db)):
        pass


def test_caller_owned_connection_in_default_transaction_mode(tmp_path: Path) -> None:
    db = tmp_path / "owned.db"
    conn = sqlite3.connect(db, check_same_thread=False)  # Python's legacy implicit transactions
    saver = SqliteSaver(conn)  # set up lazily on first use
    configs = put_steps(saver, "t", 2)
    saver.put_writes(configs[-1], [("c", 1)], "task")
    # visible from another connection: nothing was left in an open transaction
    assert scalar(db, "SELECT count(*) FROM writes") == 1
    assert scalar(db, "SELECT count(*) FROM checkpoints") == 2
    conn.close()


@pytest.mark.parametrize(("synchronous", "level"), [("full", 2), ("normal", 1)])
def test_synchronous_option(tmp_path: Path, synchronous: str, level: int) -> None:
    with SqliteSaver.from_conn_string(str(tmp_path / "d.db"), synchronous=synchronous) as saver:
        assert saver.conn.execute("PRAGMA synchronous").fetchone()[0] == level


def test_memory_database(tmp_path: Path) -> None:
    with SqliteSaver.from_conn_string("sqlite:///:memory:") as saver:
        put_steps(saver, "t", 3)
        assert len(list(saver.list(None))) == 3


@pytest.mark.parametrize(
    ("conn", "path"),
    [
        ("agents.db", "agents.db"),
        (":memory:", ":memory:"),
        ("sqlite:///relative/a.db", "relative/a.db"),
        ("sqlite:////abs/a.db", "/abs/a.db"),
        ("sqlite:///:memory:", ":memory:"),
    ],
)
def test_sqlite_urls(conn: str, path: str) -> None:
    assert sqlite_path(conn) == path


@pytest.mark.parametrize("conn", ["postgresql://localhost/db", "sqlite://", "sqlite:///", ""])
def test_bad_sqlite_urls(conn: str) -> None:
    with pytest.raises(ConfigurationError):
        sqlite_path(conn)


def test_path_objects_are_accepted(tmp_path: Path) -> None:
    with SqliteSaver.from_conn_string(tmp_path / "p.db") as saver:
        put_steps(saver, "t", 1)
    assert (tmp_path / "p.db").exists()


async def test_a_file_that_is_not_a_database_is_a_backend_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(BackendError, match="not a database"), SqliteSaver.from_conn_string(junk):
        pass
    with pytest.raises(BackendError, match="not a database"):
        async with AsyncSqliteSaver.from_conn_string(junk):
            pass


def test_unopenable_file_is_a_backend_error(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "x.db"
    with pytest.raises(BackendError) as caught, SqliteSaver.from_conn_string(str(missing)):
        pass
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    with pytest.raises(ConfigurationError, match="synchronous"), SqliteSaver.from_conn_string(
        str(tmp_path / "x.db"), synchronous="off"  # type: ignore[arg-type]
    ):
        pass


async def test_a_cancelled_write_is_rolled_back_and_leaves_no_transaction_open(
        tmp_path: Path) -> None:
    db = tmp_path / "busy.db"
    async with AsyncSqliteSaver.from_conn_string(db) as saver:
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        checkpoint = generate_checkpoint(channel_values={"a": 1}, channel_versions={"a": 1})
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(
                saver.aput(generate_config("t"), checkpoint, generate_metadata(), {"a": 1}), 0.3
            )
        holder.execute("COMMIT")
        holder.close()
        # the cancelled put got the write lock once the holder committed, then rolled back:
        # nothing lands after its caller moved on (a thread lock it held is released by now)
        assert await saver.aget_tuple(generate_config("t")) is None
        stored = await saver.aput(generate_config("t"), checkpoint, generate_metadata(), {"a": 1})
        assert (await saver.aget_tuple(stored)).checkpoint["channel_values"] == {"a": 1}
        assert not saver.conn.in_transaction
    with sqlite3.connect(db) as conn:  # nothing is left locked for other processes
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")


class ThreadRecordingSerde(JsonPlusSerializer):
    """Records the thread each value is serialised in."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        self.threads.add(threading.current_thread().name)
        return super().dumps_typed(obj)


async def test_the_async_saver_serialises_on_the_event_loop(tmp_path: Path) -> None:
    # a graph's nodes may change state in place while a put of durability="async" is
    # pending: serialising in aiosqlite's thread meanwhile crashed the interpreter
    serde = ThreadRecordingSerde()
    async with AsyncSqliteSaver.from_conn_string(tmp_path / "loop.db", serde=serde) as saver:
        checkpoint = generate_checkpoint(channel_values={"a": [1, 2]}, channel_versions={"a": 1})
        stored = await saver.aput(generate_config("t"), checkpoint, generate_metadata(), {"a": 1})
        await saver.aput_writes(stored, [("a", [3])], "task")
    assert serde.threads == {threading.current_thread().name}


def test_an_open_caller_transaction_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "open.db", check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()
    conn.execute("CREATE TABLE mine (x)")
    conn.execute("INSERT INTO mine VALUES (1)")  # legacy mode: an implicit open transaction
    with pytest.raises(ConfigurationError, match="open transaction"):
        put_steps(saver, "t", 1)
    conn.rollback()
    put_steps(saver, "t", 1)
    assert conn.execute("SELECT count(*) FROM mine").fetchone()[0] == 0  # theirs, not committed
    conn.close()

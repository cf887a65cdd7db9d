"""The hot-path suite's backends: where each side's savers live and how they open, and the
bare operation each backend's floor is made of.

Owns `Backend` and its three kinds (`SqliteBackend`, `PostgresBackend`, `RedisBackend`),
opened by `open_backend` and closed (their stores removed) by ``close``. The savers are
opened by the per-backend suites' own openers (``sqlite_bench``, ``postgres_bench``,
``redis_bench``: each side with its documented defaults), so every suite compares the same
configurations; the floor's bare round trips come from `benchmarks.servers`, SQLite's bare
committed INSERT from `commit_trial`. Used by `benchmarks.hotpath_bench`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from typing import Any

import aiosqlite
import psycopg

from benchmarks import postgres_bench as pg
from benchmarks import redis_bench as rb
from benchmarks import servers
from benchmarks import sqlite_bench as sb
from benchmarks.cases import SIDES, Case
from benchmarks.trials import Space, repeat_trial
from langgraph_persist_kit._core.urls import redact

BACKENDS = ("sqlite", "postgres", "redis")
Opener = Callable[[str, str], Any]
"""``opener(mode, side)``: a sync (mode ``"sync"``) or async context manager yielding a saver."""


class Backend:
    """One backend's stores for a run, and what its floor is made of.

    Attributes:
        name: ``"sqlite"``, ``"postgres"`` or ``"redis"``.
        title: For tables.
        unit_name: The bare operation of the floor, measured per mode (e.g. a ``PING``).
        unit_note: How it is measured.
        trips: How many of it a super-step cannot avoid (round trips, or SQLite's commits).
        more_units: Other bare operations of the floor, ``(name, how many)``, measured with
            `more_unit_trial` (PostgreSQL: the round trip without a commit).
        floor_note: The floor's formula, for its rows.
    """

    name = title = unit_name = unit_note = floor_note = ""
    trips = 3
    more_units: tuple[tuple[str, int], ...] = ()

    def store(self, label: str) -> Opener:
        """A store of its own for the case ``label`` (kept across rounds; each trial works on
        new threads); opens each side's saver."""
        raise NotImplementedError

    def crowd(self, label: str, tasks: int) -> Callable[[str], Callable[[], Any]]:
        """``side -> opener()`` of the async saver ``tasks`` concurrent tasks share."""
        raise NotImplementedError

    def crowd_note(self, tasks: int) -> str:
        raise NotImplementedError

    def unit_trial(self, n: int, is_async: bool) -> Any:
        """A trial timing ``n`` of the floor's bare operation in that mode."""
        raise NotImplementedError

    def more_unit_trial(self, name: str, n: int, is_async: bool) -> Any:
        """A trial timing ``n`` of the bare operation ``name`` of `more_units`."""
        raise NotImplementedError

    def reference_cases(self, n: int) -> list[Case]:
        """Rows measured beside the floor, for reference only."""
        return []

    def describe(self) -> str:
        """The durability each side runs with, and where the run's stores are."""
        raise NotImplementedError

    def close(self) -> str:
        """Remove every store the run made; what was removed."""
        raise NotImplementedError


def mode_opener(sync: Callable[..., Any], aio: Callable[..., Any], *args: Any) -> Opener:
    return lambda mode, side: (aio if mode == "async" else sync)(side, *args)


# --- SQLite -----------------------------------------------------------------------------------

COMMIT_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                  "CREATE TABLE IF NOT EXISTS floor_commit (x INTEGER)")


@contextmanager
def _bare(path: str) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, isolation_level=None)  # autocommit: each INSERT commits
    try:
        for sql in COMMIT_PRAGMAS:
            conn.execute(sql)
        yield conn
    finally:
        conn.close()


@asynccontextmanager
async def _abare(path: str) -> AsyncIterator[aiosqlite.Connection]:
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        for sql in COMMIT_PRAGMAS:
            await conn.execute(sql)
        yield conn


def commit_trial(path: str, n: int, is_async: bool) -> Any:
    """A trial timing ``n`` committed 1-row INSERTs on a bare connection (``sqlite3``, or
    ``aiosqlite`` in async mode) to ``path``, a WAL database with ``synchronous=FULL``."""
    opened: Any = _abare(path) if is_async else _bare(path)
    return repeat_trial(opened, lambda conn: conn.execute("INSERT INTO floor_commit VALUES (1)"),
                        n, servers.WARM)


class SqliteBackend(Backend):
    name, title, trips = "sqlite", "SQLite", 2
    unit_name = "committed 1-row INSERT"
    unit_note = ("bare sqlite3 / aiosqlite connection, autocommit, WAL + synchronous=FULL, "
                 "a file in the run's temp dir")
    floor_note = ("2 x committed INSERT (put_writes and put each commit; in-process: no round "
                  "trip) + serialisation")

    def __init__(self, root: str | None = None) -> None:
        self.space = Space(root, prefix="persist-kit-hotpath-")

    def store(self, label: str) -> Opener:  # a fresh file every trial
        return mode_opener(sb.sync_saver, sb.async_saver, self.space)

    def crowd(self, label: str, tasks: int) -> Callable[[str], Callable[[], Any]]:
        return lambda side: partial(sb.async_saver, side, self.space)

    def crowd_note(self, tasks: int) -> str:
        return "each side on its one connection"

    def unit_trial(self, n: int, is_async: bool) -> Any:
        return commit_trial(self.space.path("floor-commit.db"), n, is_async)

    def describe(self) -> str:
        async def aread(side: str) -> int:
            async with sb.async_saver(side, self.space) as saver:
                return int((await saver.conn.execute_fetchall("PRAGMA synchronous"))[0][0])

        seen = {side: f"{sb.pragma_synchronous(side, self.space)} / "
                      f"{asyncio.run(aread(side))}" for side in SIDES}
        return (f"durability: PRAGMA synchronous of each side's saver (sync / async): ours "
                f"{seen['ours']}, official {seen['official']} (2 = FULL); both in WAL mode. "
                f"A fresh DB file per trial under {self.space.root} (removed at exit).")

    def close(self) -> str:
        self.space.close()
        return f"removed {self.space.root}"


# --- PostgreSQL -------------------------------------------------------------------------------


class PostgresBackend(Backend):
    name, title, trips = "postgres", "PostgreSQL", 2
    unit_name = "committed 1-row INSERT round trip"
    unit_note = ("psycopg Connection / AsyncConnection, autocommit, synchronous_commit=on: a "
                 "round trip and the commit's WAL flush")
    more_units = (("SELECT 1 round trip", 1),)
    floor_note = ("2 x committed INSERT (put_writes and put each commit: a round trip and a WAL "
                  "flush) + 1 x SELECT 1 (get_tuple) + serialisation")

    def __init__(self, url: str) -> None:
        with servers.answering(url, "--postgres-url", "the suite may create databases on"):
            self.url, self.stores = url, pg.Stores(url)
        with psycopg.connect(self.stores.ours_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS floor_commit (x int)")

    def store(self, label: str) -> Opener:
        return mode_opener(pg.sync_saver, pg.async_saver, self.stores.new(label))

    def crowd(self, label: str, tasks: int) -> Callable[[str], Callable[[], Any]]:
        store = self.stores.new(label)
        return lambda side: partial(pg.async_saver, side, store, tasks)

    def crowd_note(self, tasks: int) -> str:
        return f"both on a pool of {tasks}, as postgres_bench section 3"

    def unit_trial(self, n: int, is_async: bool) -> Any:
        return servers.select_trial(self.stores.ours_url, n, is_async,
                                    "INSERT INTO floor_commit VALUES (1)")

    def more_unit_trial(self, name: str, n: int, is_async: bool) -> Any:
        return servers.select_trial(self.stores.ours_url, n, is_async)

    def describe(self) -> str:
        return (f"durability: {pg.durability(self.url, self.stores)} Databases "
                f"{self.stores.prefix}* on {redact(self.url)} (dropped at exit).")

    def close(self) -> str:
        names = list(self.stores.created)
        self.stores.close()
        return f"dropped {len(names)} databases {self.stores.prefix}*"


# --- Redis ------------------------------------------------------------------------------------


class RedisBackend(Backend):
    name, title, trips = "redis", "Redis", 3
    unit_name = "PING round trip"
    unit_note = "redis-py Redis / asyncio Redis with its defaults"
    floor_note = "3 x PING (ours: 1 round trip per call) + serialisation"

    def __init__(self, url: str) -> None:
        self.url, self.info = url, rb.server_info(url)  # raises ServerDown
        self.keys = rb.KeySpaces(url)

    def store(self, label: str) -> Opener:
        return mode_opener(rb.sync_saver, rb.async_saver, self.keys.new(label))

    def crowd(self, label: str, tasks: int) -> Callable[[str], Callable[[], Any]]:
        store = self.keys.new(label)
        return lambda side: partial(rb.async_saver, side, store)

    def crowd_note(self, tasks: int) -> str:
        return "each side on its own client, with its defaults"

    def unit_trial(self, n: int, is_async: bool) -> Any:
        return servers.ping_trial(self.url, n, is_async)

    def describe(self) -> str:
        return "durability: " + rb.describe(self.url, self.keys, self.info)

    def close(self) -> str:
        return f"deleted {self.keys.close():,} keys under {self.keys.run}-*"


def open_backend(name: str, urls: dict[str, str]) -> Backend:
    """The backend ``name``: ``urls["postgres"]`` / ``urls["redis"]`` name the servers,
    ``urls["sqlite"]`` (optional) the directory of SQLite's temporary one.

    Raises:
        ServerDown: Its server does not answer.
    """
    if name == "sqlite":
        return SqliteBackend(urls.get("sqlite"))
    return PostgresBackend(urls["postgres"]) if name == "postgres" else RedisBackend(urls["redis"])

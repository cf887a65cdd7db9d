"""Where each backend's threads live during the run, and the bare round trip of its server.

A store is one saver URL carrying its namespace, so every process of the run (this one and
the throughput workers) opens the same store with ``saver_from_url``: a SQLite file in a
temporary directory, a fresh PostgreSQL schema (``?schema=``), a fresh Redis key prefix
(``?key_prefix=``). `Store.close` drops the schema / deletes the keys.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from benchmarks import common
from langgraph_persist_kit.redis._lease import RELEASE


class ServerDown(RuntimeError):
    """A server the run needs does not answer."""


def with_param(url: str, name: str, value: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{name}={value}"


@dataclass
class Store:
    """One backend's store for the run."""

    backend: str
    url: str  # for saver_from_url / async_saver_from_url, namespace included
    server: str  # the server's own URL (no namespace); the SQLite directory
    namespace: str  # the file, schema or key prefix
    close: Callable[[], str]  # drops the store; says what it removed

    def describe(self) -> str:
        where = {"sqlite": "file", "postgres": "schema", "redis": "key prefix"}[self.backend]
        return f"{self.backend}: {common.redact(self.server)}, {where} {self.namespace}"


def sqlite_store(space: common.Space) -> Store:
    path = space.path("locks.db")  # the run's directory is removed with the space
    return Store("sqlite", "sqlite:///" + path, space.root, path,
                 lambda: f"{path} removed with its directory at exit")


def postgres_store(server: str, run_id: str) -> Store:
    import psycopg

    schema = f"pk_locks_{run_id}".replace("-", "_")

    def close() -> str:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        return f"dropped schema {schema}"

    return Store("postgres", with_param(server, "schema", schema), server, schema, close)


def redis_store(server: str, run_id: str) -> Store:
    import redis

    prefix = f"pk-bench-{run_id}-locks"

    def close() -> str:  # SCAN + UNLINK of the run's keys: benchmark cleanup, not a saver API
        with redis.Redis.from_url(server) as client:
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            for start in range(0, len(keys), 1000):
                client.unlink(*keys[start:start + 1000])
        return f"deleted {len(keys):,} keys under {prefix}"

    return Store("redis", with_param(server, "key_prefix", prefix), server, prefix, close)


def open_store(backend: str, urls: dict[str, str], space: common.Space) -> Store:
    run_id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    if backend == "sqlite":
        return sqlite_store(space)
    if backend == "postgres":
        return postgres_store(urls["postgres"], run_id)
    return redis_store(urls["redis"], run_id)


# --- servers --------------------------------------------------------------------------------


def server_versions(backends: list[str], urls: dict[str, str]) -> dict[str, Any]:
    """The version of each backend's library or server.

    Raises:
        ServerDown: PostgreSQL or Redis does not answer, naming the variable to set.
    """
    from benchmarks.locks.config import PG_URL_VAR, REDIS_URL_VAR

    out: dict[str, Any] = {}
    if "sqlite" in backends:
        out["sqlite"] = sqlite3.sqlite_version
    if "postgres" in backends:
        import psycopg
        try:
            with psycopg.connect(urls["postgres"], connect_timeout=5) as conn:
                row = conn.execute("SELECT current_setting('server_version'), "
                                   "current_setting('synchronous_commit')").fetchone()
            assert row is not None
            out["postgres"], out["synchronous_commit"] = row
        except psycopg.Error as exc:
            raise ServerDown(f"PostgreSQL at {common.redact(urls['postgres'])} does not answer "
                             f"({exc}). Start it, or set {PG_URL_VAR} (or pass --postgres-url) "
                             "to a server where the run may create a schema.") from exc
    if "redis" in backends:
        import redis
        try:
            with redis.Redis.from_url(urls["redis"], socket_connect_timeout=5) as client:
                out["redis"] = client.info("server")["redis_version"]
        except redis.RedisError as exc:
            raise ServerDown(f"Redis at {common.redact(urls['redis'])} does not answer ({exc}). "
                             f"Start it, or set {REDIS_URL_VAR} (or pass --redis-url) to a "
                             "server the run may write keys to.") from exc
    return out


def release_script_cached(server: str) -> bool:
    """Whether the Redis server holds the lease's release script (else the first release
    pays an EVALSHA answered NOSCRIPT and a SCRIPT LOAD)."""
    import redis

    sha = hashlib.sha1(RELEASE.encode()).hexdigest()
    with redis.Redis.from_url(server) as client:
        return bool(client.script_exists(sha)[0])


# --- the bare round trip ------------------------------------------------------------------------


def round_trip_trial(store: Store, is_async: bool, n: int) -> Any:
    """A trial timing ``n`` bare round trips on a client of its own (``SELECT 1`` on an
    autocommit psycopg connection, a redis-py ``PING``), after 10 untimed."""
    if store.backend == "postgres":
        import psycopg
        if is_async:
            @asynccontextmanager
            async def aconnected() -> AsyncIterator[Any]:
                conn = await psycopg.AsyncConnection.connect(store.server, autocommit=True)
                async with conn:
                    yield conn
            return common.repeat_trial(aconnected(), lambda c: c.execute("SELECT 1"), n)
        return common.repeat_trial(psycopg.connect(store.server, autocommit=True),
                                   lambda c: c.execute("SELECT 1"), n)
    import redis
    import redis.asyncio as aredis
    client: Any = (aredis.Redis if is_async else redis.Redis).from_url(store.server)
    return common.repeat_trial(client, lambda c: c.ping(), n)

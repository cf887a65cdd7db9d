"""Where each backend's threads live during the run, and the bare round trip of its server.

A store is one saver URL carrying its namespace, so every process of the run (this one and
the throughput workers) opens the same store with ``saver_from_url``: a SQLite file in a
temporary directory, a fresh PostgreSQL schema (``?schema=``), a fresh Redis key prefix
(``?key_prefix=``). `Store.close` drops the schema / deletes the keys.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks import servers
from benchmarks.trials import Space
from langgraph_persist_kit._core.urls import redact
from langgraph_persist_kit.redis._lease import RELEASE


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
        return f"{self.backend}: {redact(self.server)}, {where} {self.namespace}"


def sqlite_store(space: Space) -> Store:
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
    prefix = f"pk-bench-{run_id}-locks"

    def close() -> str:
        return f"deleted {servers.unlink_keys(server, f'{prefix}*'):,} keys under {prefix}"

    return Store("redis", with_param(server, "key_prefix", prefix), server, prefix, close)


def open_store(backend: str, urls: dict[str, str], space: Space) -> Store:
    run_id = servers.run_id()
    if backend == "sqlite":
        return sqlite_store(space)
    if backend == "postgres":
        return postgres_store(urls["postgres"], run_id)
    return redis_store(urls["redis"], run_id)


# --- servers --------------------------------------------------------------------------------


def server_versions(backends: list[str], urls: dict[str, str]) -> dict[str, Any]:
    """The version of each backend's library or server.

    Raises:
        benchmarks.servers.ServerDown: PostgreSQL or Redis does not answer, naming the
            variable to set.
    """
    out: dict[str, Any] = {}
    if "sqlite" in backends:
        out["sqlite"] = sqlite3.sqlite_version
    if "postgres" in backends:
        import psycopg
        with (servers.answering(urls["postgres"], "--postgres-url",
                                "where the run may create a schema"),
              psycopg.connect(urls["postgres"], connect_timeout=5) as conn):
            row = conn.execute("SELECT current_setting('server_version'), "
                               "current_setting('synchronous_commit')").fetchone()
        assert row is not None
        out["postgres"], out["synchronous_commit"] = row
    if "redis" in backends:
        import redis
        with (servers.answering(urls["redis"], "--redis-url", "the run may write keys to"),
              redis.Redis.from_url(urls["redis"], socket_connect_timeout=5) as client):
            out["redis"] = client.info("server")["redis_version"]
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
    trial = servers.select_trial if store.backend == "postgres" else servers.ping_trial
    return trial(store.server, n, is_async)

"""The PostgreSQL and Redis servers the suites run on: where they are, a run's scratch
databases and key prefixes (dropped / deleted at exit), and a bare round trip on each.

Benchmark plumbing, not a saver API: no saver creates databases or SCANs keys. The drivers
are imported where used, so the SQLite suite needs neither.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from benchmarks.trials import repeat_trial
from langgraph_persist_kit._core.urls import backend_of, redact

PG_URL_VAR, PG_DEFAULT = "PERSIST_KIT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL_VAR, REDIS_DEFAULT = "PERSIST_KIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"
SERVERS = {"postgres": ("PostgreSQL", PG_URL_VAR), "redis": ("Redis", REDIS_URL_VAR)}
WARM = 10  # untimed round trips before the timed ones


class ServerDown(RuntimeError):
    """A server the run needs does not answer."""


@contextmanager
def answering(url: str, flag: str, purpose: str) -> Iterator[None]:
    """Inside the block, a driver error (the server at ``url`` does not answer) raises
    `ServerDown` saying what to set: its variable, or ``flag``, to a server ``purpose``.

    Raises:
        ServerDown: From ``psycopg.Error`` / ``redis.RedisError`` raised in the block.
    """
    backend = backend_of(url)
    if backend == "postgres":
        import psycopg
        errors: type[Exception] = psycopg.Error
    else:
        import redis
        errors = redis.RedisError
    name, var = SERVERS[backend]
    try:
        yield
    except errors as exc:
        raise ServerDown(f"{name} at {redact(url)} does not answer ({exc}). Start it, or set "
                         f"{var} (or pass {flag}) to a server {purpose}.") from exc


def run_id() -> str:
    """``<pid>-<8 hex>``: tells this run's databases, schemas and keys from any other's."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


# --- PostgreSQL -------------------------------------------------------------------------------


def database_url(url: str, name: str) -> str:
    """``url`` naming database ``name`` instead of its own."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def create_database(url: str, name: str) -> str:
    """A fresh database ``name`` on ``url``'s server (one left over is dropped first); its URL."""
    import psycopg
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(url, name)


def drop_databases(url: str, names: Iterable[str]) -> None:
    import psycopg
    with psycopg.connect(url, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def _async_connection(url: str) -> AsyncIterator[Any]:
    import psycopg
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        yield conn


def select_trial(url: str, n: int, is_async: bool, sql: str = "SELECT 1") -> Any:
    """A trial timing ``n`` round trips of ``sql`` on an autocommit psycopg connection of its
    own, after `WARM` untimed."""
    import psycopg
    opened: Any = _async_connection(url) if is_async else psycopg.connect(url, autocommit=True)
    return repeat_trial(opened, lambda conn: conn.execute(sql), n, WARM)


# --- Redis ------------------------------------------------------------------------------------


def ping_trial(url: str, n: int, is_async: bool) -> Any:
    """A trial timing ``n`` PINGs on a redis-py client of its own (its defaults, as our savers
    open it), after `WARM` untimed."""
    import redis
    import redis.asyncio as aredis
    client: Any = aredis.Redis.from_url(url) if is_async else redis.Redis.from_url(url)
    return repeat_trial(client, lambda c: c.ping(), n, WARM)


def unlink_keys(url: str, pattern: str, batch: int = 1000) -> int:
    """Delete every key matching ``pattern`` (SCAN + UNLINK, ``batch`` keys a call); how many
    were deleted."""
    import redis
    deleted = 0
    with redis.Redis.from_url(url) as client:
        keys = client.scan_iter(match=pattern, count=batch)
        while chunk := list(itertools.islice(keys, batch)):
            deleted += client.unlink(*chunk)
    return deleted

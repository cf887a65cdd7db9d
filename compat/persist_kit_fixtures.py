"""``sync_checkpointer`` / ``async_checkpointer`` on langgraph-persist-kit's savers.

Copied into LangGraph's ``tests/`` by `compat/langgraph_suite.py` and imported at the end
of its ``conftest.py``, so these fixtures replace LangGraph's own. Each test gets a
fresh store: a SQLite file, a PostgreSQL schema, a Redis key prefix (its keys deleted
afterwards). ``PERSIST_KIT_SUITE_BACKENDS`` picks the backends; strict msgpack
(``LANGGRAPH_STRICT_MSGPACK``) is honoured as LangGraph's fixtures honour it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from langgraph_persist_kit.postgres import AsyncPostgresSaver, PostgresSaver
from langgraph_persist_kit.redis import AsyncRedisSaver, RedisSaver
from langgraph_persist_kit.sqlite import AsyncSqliteSaver, SqliteSaver

BACKENDS = os.environ.get("PERSIST_KIT_SUITE_BACKENDS", "sqlite,postgres,redis").split(",")
POSTGRES_URL = os.environ.get("PERSIST_KIT_TEST_POSTGRES_URL",
                              "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("PERSIST_KIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
DATABASE = f"pk_langgraph_suite_{os.getpid()}"
STRICT = os.getenv("LANGGRAPH_STRICT_MSGPACK", "false").lower() in ("1", "true", "yes")
FIXTURES = ("sync_checkpointer", "async_checkpointer")


def _token() -> str:
    # not uuid.uuid4(): tests patch it for deterministic ids, and a fixture that ran
    # after that patch would take one of theirs
    return secrets.token_hex(6)


def _options() -> dict[str, Any]:
    return {"serde": JsonPlusSerializer(allowed_msgpack_modules=None)} if STRICT else {}


@pytest.fixture(scope="session")
def _persist_kit_postgres_url() -> Iterator[str]:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    try:
        yield urlunsplit(urlsplit(POSTGRES_URL)._replace(path="/" + DATABASE))
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


def _drop_prefix(prefix: str) -> None:
    with redis.Redis.from_url(REDIS_URL) as client:
        keys = list(client.scan_iter(match=prefix + ":*", count=1000))
        if keys:
            client.delete(*keys)


def _store(backend: str, request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """The conn string and options of a fresh store for ``backend``."""
    options = _options()
    if backend == "sqlite":
        directory = tempfile.mkdtemp(prefix="pk-suite-")
        request.addfinalizer(lambda: shutil.rmtree(directory, ignore_errors=True))
        return str(Path(directory) / "store.db"), options
    if backend == "postgres":
        url = request.getfixturevalue("_persist_kit_postgres_url")
        return url, {**options, "schema": "t_" + _token()}
    prefix = "pk-suite-" + _token()
    request.addfinalizer(lambda: _drop_prefix(prefix))
    return REDIS_URL, {**options, "key_prefix": prefix}


SYNC = {"sqlite": SqliteSaver, "postgres": PostgresSaver, "redis": RedisSaver}
ASYNC = {"sqlite": AsyncSqliteSaver, "postgres": AsyncPostgresSaver, "redis": AsyncRedisSaver}


@pytest.fixture(params=[f"persist_kit_{b}" for b in BACKENDS])
def sync_checkpointer(request: pytest.FixtureRequest) -> Iterator[BaseCheckpointSaver]:
    backend = request.param.removeprefix("persist_kit_")
    conn, options = _store(backend, request)
    with SYNC[backend].from_conn_string(conn, **options) as saver:
        yield saver


@pytest.fixture(params=[f"persist_kit_{b}_aio" for b in BACKENDS])
async def async_checkpointer(request: pytest.FixtureRequest) -> AsyncIterator[BaseCheckpointSaver]:
    backend = request.param.removeprefix("persist_kit_").removesuffix("_aio")
    conn, options = _store(backend, request)
    async with ASYNC[backend].from_conn_string(conn, **options) as saver:
        yield saver


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep only the tests that run on a checkpointer fixture."""
    kept, deselected = [], []
    for item in items:
        uses = set(FIXTURES) & set(getattr(item, "fixturenames", ()))
        (kept if uses else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept

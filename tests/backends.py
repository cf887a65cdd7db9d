"""The stores tests run against, and how each gives a test its own space.

SQLite: a fresh file per test. PostgreSQL: a database per test module, a fresh
schema per test (server from ``PERSIST_KIT_TEST_POSTGRES_URL``). A backend
whose server does not answer fails the run with a message naming its
variable; it is never skipped.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from langgraph_persist_kit.postgres import AsyncPostgresSaver, PostgresSaver
from langgraph_persist_kit.sqlite import AsyncSqliteSaver, SqliteSaver

BACKENDS = ["sqlite", "postgres"]
MODES = ["sync", "async"]

POSTGRES_VAR = "PERSIST_KIT_TEST_POSTGRES_URL"
POSTGRES_URL = os.environ.get(POSTGRES_VAR, "postgresql://postgres@127.0.0.1:5432/postgres")


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
    else:
        raise ValueError(backend)

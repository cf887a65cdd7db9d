"""The stores tests run against, and how each gives a test its own space.

SQLite: a fresh file per test. Postgres and Redis join here in later issues
(a database per test module, a key prefix per test), reading their URLs from
``PERSIST_KIT_TEST_POSTGRES_URL`` / ``PERSIST_KIT_TEST_REDIS_URL``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from langgraph_persist_kit.sqlite import AsyncSqliteSaver, SqliteSaver

BACKENDS = ["sqlite"]
MODES = ["sync", "async"]


@contextmanager
def sync_saver(backend: str, space: Path, **options: Any) -> Iterator[Any]:
    """A ready sync saver on a fresh store inside ``space``."""
    if backend == "sqlite":
        with SqliteSaver.from_conn_string(str(space / "store.db"), **options) as saver:
            yield saver
        return
    raise ValueError(backend)


@asynccontextmanager
async def async_saver(backend: str, space: Path, **options: Any) -> AsyncIterator[Any]:
    """A ready async saver on a fresh store inside ``space``."""
    if backend == "sqlite":
        async with AsyncSqliteSaver.from_conn_string(str(space / "store.db"), **options) as saver:
            yield saver
        return
    raise ValueError(backend)

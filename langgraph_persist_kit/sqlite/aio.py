"""`AsyncSqliteSaver`: the asynchronous SQLite checkpoint saver.

Owns: running the SQLite plans (`sqlite/_plans.py`) on an ``aiosqlite`` connection.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
from langgraph.checkpoint.serde.base import SerializerProtocol

from langgraph_persist_kit._core.aio import AsyncSaverMethods
from langgraph_persist_kit._core.modes import AsyncOnly
from langgraph_persist_kit._core.plan import Listing, Plan, Query, R, Rows, Turn, aiterate
from langgraph_persist_kit.sqlite import _common
from langgraph_persist_kit.sqlite._common import Synchronous, sqlite_errors
from langgraph_persist_kit.sqlite._plans import PLANS
from langgraph_persist_kit.sqlite._thread_lock import SqliteThreadLock


class AsyncSqliteSaver(AsyncOnly, AsyncSaverMethods):
    """A checkpoint saver on a SQLite file, for ``graph.ainvoke`` / ``graph.astream``.

    Stores exactly what `SqliteSaver` stores (the two can share a file) and
    runs the same plans; each call is one hop to aiosqlite's thread.

    Args:
        conn: An open ``aiosqlite.Connection`` that the caller owns and closes.
        serde: The serializer; see `SqliteSaver`.
        append_deltas, append_cache_bytes: As for `SqliteSaver` (appended list items
            stored alone, on by default; bytes of lists remembered, default 64 MiB).

    Raises:
        ConfigurationError: For a bad ``append_deltas`` or ``append_cache_bytes``.

    Example:
        ```python
        from langgraph_persist_kit.sqlite import AsyncSqliteSaver

        async with AsyncSqliteSaver.from_conn_string("agents.db") as saver:
            graph = builder.compile(checkpointer=saver)
            await graph.ainvoke(inputs, {"configurable": {"thread_id": "t-1"}})
        ```
    """

    batch_rest = _common.BATCH_REST

    def __init__(self, conn: aiosqlite.Connection, *, serde: SerializerProtocol | None = None,
                 append_deltas: bool = True, append_cache_bytes: int | None = None) -> None:
        super().__init__(serde=serde, append_deltas=append_deltas,
                         append_cache_bytes=append_cache_bytes)
        self.conn = conn
        self.plans = PLANS
        self.lock = asyncio.Lock()
        self._database_file: str | None = None  # for thread locks, found once

    @classmethod
    @asynccontextmanager
    async def from_conn_string(cls, conn: str | os.PathLike[str], *,
                               serde: SerializerProtocol | None = None,
                               busy_timeout: float | None = None,
                               synchronous: Synchronous | None = None,
                               append_deltas: bool | None = None,
                               append_cache_bytes: int | None = None,
                               **unknown: Any) -> AsyncIterator[AsyncSqliteSaver]:
        """Open a database, set its schema up, yield a saver, close the database.

        Arguments and errors as `SqliteSaver.from_conn_string`.
        """
        path, connect, pragmas, options = _common.open_settings(
            conn, busy_timeout, synchronous, unknown, append_deltas, append_cache_bytes)
        with sqlite_errors(path):
            connection = await aiosqlite.connect(path, **connect)
        try:
            with sqlite_errors():
                for pragma in pragmas:
                    await connection.execute_fetchall(pragma)
            saver = cls(connection, serde=serde, **options)
            await saver.setup()
            yield saver
        finally:
            await connection.close()

    # --- the driver ---------------------------------------------------------------

    async def _execute(self, query: Query) -> Rows:
        return list(await self.conn.execute_fetchall(query.sql, query.params))

    async def _run(self, make_plan: Callable[[], Plan[R]], *, transaction: bool = False) -> R:
        """Run a plan under the lock; writes in one ``BEGIN IMMEDIATE`` transaction."""
        if not self.is_setup:
            await self.setup()
        return await self._drive(make_plan(), transaction)

    async def _drive(self, plan: Plan[R], transaction: bool) -> R:
        """Start the plan here, on the event loop (a put serialises its values before its
        first statement: never in another thread while a graph's nodes run), then drive
        the rest (statements, commit or rollback) as one call in aiosqlite's thread: one
        hop, where a hop per statement cost about 75 µs each.

        ``Connection._execute`` is aiosqlite's own primitive behind every public method
        (queue a function for its thread, await its result); no public one runs a
        function there. A caller cancelled before the commit leaves its write rolled back
        (`_common.drive`), so nothing lands after a thread lock it held is released.
        """
        async with self.lock:
            with sqlite_errors():
                turn = Turn(plan)
                cancelled = threading.Event()
                try:
                    return await self.conn._execute(_common.drive, self.conn._conn, turn,
                                                    transaction, cancelled)
                except asyncio.CancelledError:
                    cancelled.set()
                    raise

    def _iterate(self, plan: Listing) -> AsyncIterator[Any]:
        """Drive an emitting plan; one async generator between the plan and the caller."""

        async def execute(query: Query) -> Rows:
            if not self.is_setup:
                await self.setup()
            async with self.lock:
                with sqlite_errors():
                    return await self._execute(query)

        return aiterate(plan, execute)

    async def setup(self) -> None:
        """Create or migrate the schema; see `SqliteSaver.setup`."""
        async with self.lock:
            with sqlite_errors():
                for delay in _common.journal_mode_retries():
                    try:
                        await self.conn.execute_fetchall(_common.JOURNAL_MODE)
                        break
                    except sqlite3.OperationalError as exc:
                        await asyncio.sleep(_common.retry_after(exc, delay))
        await self._drive(self.plans.setup(), transaction=True)
        self._setup_done()

    async def athread_lock_handle(self, thread_id: str, *, lease: float) -> SqliteThreadLock:
        """The cross-process lock of one thread; see `SqliteSaver.thread_lock_handle`."""
        if self._database_file is None:
            async with self.lock:
                with sqlite_errors():
                    rows = await self.conn.execute_fetchall(_common.DATABASE_LIST)
            self._database_file = _common.main_file(rows)
        return SqliteThreadLock(self._database_file, thread_id, id(self.conn))

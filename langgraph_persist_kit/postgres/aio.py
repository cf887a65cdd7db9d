"""`AsyncPostgresSaver`: the asynchronous PostgreSQL checkpoint saver.

Owns: running the Postgres plans on a psycopg async connection or pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import psycopg
from langgraph.checkpoint.serde.base import SerializerProtocol
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

from langgraph_persist_kit._core.aio import AsyncSaverMethods
from langgraph_persist_kit._core.modes import AsyncOnly
from langgraph_persist_kit._core.plan import Listing, Plan, Query, R, Rows, aiterate, arun, single
from langgraph_persist_kit.errors import BackendUnavailableError
from langgraph_persist_kit.postgres._common import (
    DEFAULT_SCHEMA,
    pool_settings,
    postgres_errors,
    require_autocommit,
    retryable,
    returns_rows,
)
from langgraph_persist_kit.postgres._plans import plans_for
from langgraph_persist_kit.postgres._thread_lock import AsyncPostgresThreadLock, aclose_lock_pool


class AsyncPostgresSaver(AsyncOnly, AsyncSaverMethods):
    """A checkpoint saver on PostgreSQL, for ``graph.ainvoke`` / ``graph.astream``.

    Stores exactly what `PostgresSaver` stores and runs the same plans. Given
    an ``AsyncConnectionPool``, concurrent calls run concurrently, each on its
    own connection.

    Args:
        conn: A ``psycopg.AsyncConnection`` or ``psycopg_pool.AsyncConnectionPool``
            that the caller owns; see `PostgresSaver`.
        serde: See `PostgresSaver`.
        schema: See `PostgresSaver`.
        append_deltas, append_cache_bytes: As for `PostgresSaver` (appended list items
            stored alone, on by default; bytes of lists remembered, default 64 MiB).

    Raises:
        ConfigurationError: For a bad ``schema``, ``append_deltas`` or
            ``append_cache_bytes``.
    """

    def __init__(self, conn: psycopg.AsyncConnection | AsyncConnectionPool, *,
                 serde: SerializerProtocol | None = None, schema: str = DEFAULT_SCHEMA,
                 append_deltas: bool = True, append_cache_bytes: int | None = None) -> None:
        super().__init__(serde=serde, append_deltas=append_deltas,
                         append_cache_bytes=append_cache_bytes)
        self.conn = conn
        self.plans = plans_for(schema)
        self.lock = asyncio.Lock()

    @classmethod
    @asynccontextmanager
    async def from_conn_string(cls, conn: str, *, serde: SerializerProtocol | None = None,
                               schema: str | None = None, pool_min_size: int | None = None,
                               pool_max_size: int | None = None,
                               pool_timeout: float | None = None,
                               pgbouncer: bool | None = None, append_deltas: bool | None = None,
                               append_cache_bytes: int | None = None,
                               **unknown: Any) -> AsyncIterator[AsyncPostgresSaver]:
        """Open a pool, set the schema up, yield a saver, close the pool.

        Arguments and errors as `PostgresSaver.from_conn_string`.
        """
        url, schema, options = pool_settings(
            conn, schema, pool_min_size, pool_max_size, pool_timeout, pgbouncer, unknown,
            append_deltas, append_cache_bytes,
        )
        with postgres_errors(url):
            first = await psycopg.AsyncConnection.connect(
                url, connect_timeout=options["connect_timeout"], **options["kwargs"]
            )
            await first.close()
            pool = AsyncConnectionPool(url, **options["pool"])
            await pool.open(wait=True, timeout=options["pool"]["timeout"])
        try:
            saver = cls(pool, serde=serde, schema=schema, **options["saver"])
            await saver.setup()
            yield saver
        finally:
            await aclose_lock_pool(pool)
            await pool.close()

    # --- the driver ---------------------------------------------------------------

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        if isinstance(self.conn, AsyncConnectionPool):
            async with self.conn.connection() as conn:
                yield conn
        else:
            async with self.lock:
                yield self.conn

    async def _run(self, make_plan: Callable[[], Plan[R]], *, transaction: bool = False) -> R:
        if not self.is_setup:
            await self.setup()
        return await self._drive(make_plan, transaction)

    async def _drive(self, make_plan: Callable[[], Plan[R]], transaction: bool) -> R:
        """Run a plan on one connection, retrying once on a dead idle connection;
        see `PostgresSaver._drive`."""
        for attempt in range(2):
            ran = 0
            try:
                with postgres_errors():
                    async with (
                        self._connection() as conn,
                        conn.cursor(row_factory=tuple_row, binary=True) as cur,
                    ):

                        async def execute(query: Query) -> Rows:
                            nonlocal ran
                            await cur.execute(
                                query.sql, query.params or None, binary=bool(query.params)
                            )
                            ran += 1
                            return list(await cur.fetchall()) if returns_rows(cur) else []

                        require_autocommit(conn)
                        if transaction:
                            async with conn.transaction():
                                return await arun(make_plan(), execute)
                        return await arun(make_plan(), execute)
            except BackendUnavailableError as exc:
                if attempt or not retryable(self.conn, exc, ran):
                    raise
                assert isinstance(self.conn, AsyncConnectionPool)
                await self.conn.check()  # after a restart every idle connection is dead
        raise AssertionError("unreachable")

    def _iterate(self, plan: Listing) -> AsyncIterator[Any]:
        async def execute(query: Query) -> Rows:
            return await self._run(partial(single, query))

        return aiterate(plan, execute)

    async def setup(self) -> None:
        """Create the schema and apply pending migrations; see `PostgresSaver.setup`."""
        await self._drive(self.plans.setup, transaction=True)
        self._setup_done()

    async def athread_lock_handle(self, thread_id: str, *,
                                  lease: float) -> AsyncPostgresThreadLock:
        """The cross-process lock of one thread; see `PostgresSaver.thread_lock_handle`."""
        return AsyncPostgresThreadLock(self, thread_id)

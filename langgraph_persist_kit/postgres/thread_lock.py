"""Per-thread locks of a PostgreSQL schema: session advisory locks on a held connection.

Owns: the advisory lock key of a thread and the connection its lock lives
on, sync and async; depends on: `_common` (error translation), psycopg.

A thread's lock is ``pg_try_advisory_lock(key)``, the key a hash of the
schema and the thread id, taken on one connection that stays out of the pool
for the whole run: borrowed from the saver's pool (or, for a saver on a single
connection, that connection, shared under the saver's lock) and given back
only after ``pg_advisory_unlock``. If unlocking fails, the connection is
closed rather than given back, and its session ends with its locks, so a lock
never goes back into a pool. A process that dies loses its connections and
PostgreSQL drops their locks at once. Taking and releasing are one round trip
each; borrowing a pooled connection is none.

Session locks need a real session: under PgBouncer in transaction pooling mode,
consecutive statements may run on different server connections, so the lock
would stay on one that another client gets next. Point the saver at
PostgreSQL, or at PgBouncer in session mode, to use these locks.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from langgraph_persist_kit.postgres._common import postgres_errors

log = logging.getLogger(__name__)

_TRY = "SELECT pg_try_advisory_lock(%s)"
_UNLOCK = "SELECT pg_advisory_unlock(%s)"


def advisory_key(text: str) -> int:
    """A signed 64-bit advisory lock key for ``text`` (a hash: the key space is shared)."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class _AdvisoryLock:
    """What both modes keep: the key, the pool (if any) and the borrowed connection."""

    def __init__(self, saver: Any, thread_id: str) -> None:
        self.saver = saver
        self.pool: Any = saver.conn if isinstance(
            saver.conn, (ConnectionPool, AsyncConnectionPool)) else None
        self.key = advisory_key(f"persist-kit thread {saver.plans.schema} {thread_id}")
        self.local_key = ("postgres", id(saver.conn), self.key)
        self.conn: Any = None  # the borrowed pooled connection
        self.held = False

    def _unlocked(self, done: Any, exc: BaseException | None) -> bool:
        """Whether an unlock went through; a failure is logged (the caller drops the
        connection, which ends its session and with it the lock)."""
        if exc is None and done:
            return True
        log.warning("could not unlock PostgreSQL advisory lock %s (%s); closing its "
                    "connection instead", self.key, exc or "it was not held")
        return False


class PostgresThreadLock(_AdvisoryLock):
    """A thread's advisory lock for a sync `PostgresSaver`."""

    def _call(self, sql: str) -> bool:
        if self.pool is None:
            with self.saver.lock:
                row = self.saver.conn.execute(sql, (self.key,)).fetchone()
        else:
            if self.conn is None:
                self.conn = self.pool.getconn()
            row = self.conn.execute(sql, (self.key,)).fetchone()
        return bool(row and row[0])

    def try_acquire(self) -> bool:
        """``pg_try_advisory_lock``: one round trip.

        Raises:
            BackendError: PostgreSQL failed (or the pool had no connection in time).
        """
        try:
            with postgres_errors():
                self.held = self._call(_TRY)
        except BaseException:
            self._give_back(broken=True)
            raise
        return self.held

    def release(self) -> None:
        """Unlock (one round trip), then give the connection back; never raises."""
        ok = not self.held
        try:
            if self.held:
                self.held = False
                ok = self._unlocked(self._call(_UNLOCK), None)
        except psycopg.Error as exc:
            self._unlocked(None, exc)
        finally:  # also when cancelled: a connection that may still lock goes, not back
            self._give_back(broken=not ok)

    def _give_back(self, *, broken: bool) -> None:
        if self.conn is None:
            return
        conn, self.conn = self.conn, None
        if broken:
            conn.close()  # its session ends, and every lock it held with it
        self.pool.putconn(conn)


class AsyncPostgresThreadLock(_AdvisoryLock):
    """A thread's advisory lock for an `AsyncPostgresSaver`; see `PostgresThreadLock`."""

    async def _call(self, sql: str) -> bool:
        if self.pool is None:
            async with self.saver.lock:
                cursor = await self.saver.conn.execute(sql, (self.key,))
                row = await cursor.fetchone()
        else:
            if self.conn is None:
                self.conn = await self.pool.getconn()
            cursor = await self.conn.execute(sql, (self.key,))
            row = await cursor.fetchone()
        return bool(row and row[0])

    async def try_acquire(self) -> bool:
        """``pg_try_advisory_lock``; see `PostgresThreadLock.try_acquire`."""
        try:
            with postgres_errors():
                self.held = await self._call(_TRY)
        except BaseException:
            await self._give_back(broken=True)
            raise
        return self.held

    async def release(self) -> None:
        """Unlock, then give the connection back; never raises."""
        ok = not self.held
        try:
            if self.held:
                self.held = False
                ok = self._unlocked(await self._call(_UNLOCK), None)
        except psycopg.Error as exc:
            self._unlocked(None, exc)
        finally:  # also when cancelled: a connection that may still lock goes, not back
            await self._give_back(broken=not ok)

    async def _give_back(self, *, broken: bool) -> None:
        if self.conn is None:
            return
        conn, self.conn = self.conn, None
        if broken:
            await conn.close()
        await self.pool.putconn(conn)

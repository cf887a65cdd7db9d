"""Per-thread locks of a PostgreSQL schema: session advisory locks on a held connection.

Owns: the advisory lock key of a thread, the pool of connections locks live on, and
taking and releasing a lock, sync and async.

A thread's lock is ``pg_try_advisory_lock(key)``, the key a hash of the
schema and the thread id, taken on a connection that stays out of its pool
for the whole run and goes back only after ``pg_advisory_unlock``. If
unlocking fails (or is cancelled), the connection is closed rather than given
back: its session ends, and its locks with it, so a lock never goes back into
a pool. A process that dies loses its connections, and PostgreSQL drops their
locks at once. Taking and releasing are one round trip each; borrowing an idle
pooled connection is none.

Lock connections come from a pool of their own beside the saver's (same
conninfo, ``autocommit``, opened on the first lock, up to `lock_pool_size`
connections, idle ones closed after 10 minutes): a run holds one lock
connection while its checkpoints go through the saver's connections, so runs
can never exhaust the saver's pool by holding locks. A caller waiting for a
busy lock gives its connection back between attempts. The lock pool closes
with ``from_conn_string``'s pool, or when the saver's pool or connection is
garbage collected (sync savers), or with the process.

Session locks need a real session: under PgBouncer in transaction pooling mode,
consecutive statements may run on different server connections, so the lock
would stay on one that another client gets next. Point the saver at
PostgreSQL, or at PgBouncer in session mode, to use these locks. A session
that ends during a run (``idle_session_timeout``, a network cut) drops its
lock without the run noticing; pair with `VersionedGraph` where that matters.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from langgraph_persist_kit._core.local_locks import holder_name
from langgraph_persist_kit.postgres._common import advisory_key, connection_args, postgres_errors

log = logging.getLogger(__name__)

_TRY = "SELECT pg_try_advisory_lock(%s)"
_UNLOCK = "SELECT pg_advisory_unlock(%s)"


def lock_pool_size(conn: Any) -> int:
    """The most lock connections beside ``conn`` (a saver's pool or connection): twice
    its pool's size, and at least 16; each locked run holds one."""
    return max(16, 2 * int(getattr(conn, "max_size", 0) or 0))


def _lock_pool_args(conn: Any) -> dict[str, Any]:
    """How to open the lock pool of a saver on ``conn`` (a pool or a connection)."""
    conninfo, kwargs = connection_args(conn)  # a pool's callable conninfo works here too
    timeout = getattr(conn, "timeout", 30.0)  # a pool's; 30 s beside a single connection
    kwargs.update(autocommit=True, row_factory=tuple_row,
                  application_name=f"persist-kit thread locks {holder_name()}"[:63])
    return {"conninfo": conninfo, "kwargs": kwargs, "min_size": 0, "open": False,
            "max_size": lock_pool_size(conn), "timeout": timeout,
            "name": "persist-kit-thread-locks"}


_pools: dict[int, tuple[Any, weakref.finalize]] = {}
_pools_guard = threading.Lock()


def _forget(key: int) -> None:
    with _pools_guard:
        _pools.pop(key, None)


def lock_pool(conn: Any) -> ConnectionPool:
    """The (lazily opened) sync lock pool of a saver on ``conn``."""
    with _pools_guard:
        if id(conn) not in _pools:
            pool = ConnectionPool(**_lock_pool_args(conn))
            pool.open(wait=False)

            def close(key: int = id(conn), pool: ConnectionPool = pool) -> None:
                _forget(key)
                pool.close()

            _pools[id(conn)] = (pool, weakref.finalize(conn, close))
        return _pools[id(conn)][0]


async def alock_pool(conn: Any) -> AsyncConnectionPool:
    """The (lazily opened) async lock pool of a saver on ``conn``, on the running loop."""
    with _pools_guard:
        found = _pools.get(id(conn))
        if found is None:
            pool = AsyncConnectionPool(**_lock_pool_args(conn))
            _pools[id(conn)] = found = (pool, weakref.finalize(conn, _forget, id(conn)))
    pool = found[0]
    if pool.closed:
        await pool.open(wait=False)
    return pool


def close_lock_pool(conn: Any) -> None:
    """Close the sync lock pool of a saver on ``conn``, if it has one."""
    with _pools_guard:
        found = _pools.pop(id(conn), None)
    if found is not None:
        found[1].detach()
        found[0].close()


async def aclose_lock_pool(conn: Any) -> None:
    """Close the async lock pool of a saver on ``conn``, if it has one."""
    with _pools_guard:
        found = _pools.pop(id(conn), None)
    if found is not None:
        found[1].detach()
        await found[0].close()


class _AdvisoryLock:
    """What both modes keep: the key and the borrowed connection while the lock is held."""

    def __init__(self, saver: Any, thread_id: str) -> None:
        self.saver = saver
        self.key = advisory_key(f"persist-kit thread {saver.plans.schema} {thread_id}")
        self.local_key = ("postgres", id(saver.conn), self.key)
        self.pool: Any = None
        self.conn: Any = None  # the lock connection, out of the lock pool while held
        self.held = False

    def _unlocked(self, reply: Any) -> bool:
        """Whether an unlock went through; if not, the caller closes the connection."""
        if reply and reply[0]:
            return True
        log.warning("PostgreSQL advisory lock %s was not held at unlock; closing its "
                    "connection", self.key)
        return False


class PostgresThreadLock(_AdvisoryLock):
    """A thread's advisory lock for a sync `PostgresSaver`."""

    def try_acquire(self) -> bool:
        """``pg_try_advisory_lock`` on a lock connection: one round trip.

        Raises:
            BackendError: PostgreSQL failed (or no lock connection came in time).
        """
        self.pool = lock_pool(self.saver.conn)
        with postgres_errors():
            conn = self.pool.getconn()
            try:
                self.held = bool(conn.execute(_TRY, (self.key,)).fetchone()[0])
            except BaseException:
                conn.close()  # it may hold the lock: its session goes with it
                self.pool.putconn(conn)
                raise
        if self.held:
            self.conn = conn
        else:
            self.pool.putconn(conn)  # a waiter holds no connection between attempts
        return self.held

    def release(self) -> None:
        """Unlock (one round trip), then give the connection back; never raises a
        store error (the connection is closed instead)."""
        if self.conn is None:
            return
        conn, self.conn, self.held = self.conn, None, False
        ok = False
        try:
            ok = self._unlocked(conn.execute(_UNLOCK, (self.key,)).fetchone())
        except psycopg.Error as exc:
            log.warning("could not unlock PostgreSQL advisory lock %s (%s); closing its "
                        "connection", self.key, exc)
        finally:  # also when interrupted: a connection that may still lock goes, not back
            if not ok:
                conn.close()
            self.pool.putconn(conn)


class AsyncPostgresThreadLock(_AdvisoryLock):
    """A thread's advisory lock for an `AsyncPostgresSaver`; see `PostgresThreadLock`."""

    async def try_acquire(self) -> bool:
        """``pg_try_advisory_lock`` on a lock connection; see `PostgresThreadLock`."""
        self.pool = await alock_pool(self.saver.conn)
        with postgres_errors():
            conn = await self.pool.getconn()
            try:
                cursor = await conn.execute(_TRY, (self.key,))
                self.held = bool((await cursor.fetchone())[0])
            except BaseException:
                await conn.close()
                await self.pool.putconn(conn)
                raise
        if self.held:
            self.conn = conn
        else:
            await self.pool.putconn(conn)
        return self.held

    async def release(self) -> None:
        """Unlock, then give the connection back; see `PostgresThreadLock.release`."""
        if self.conn is None:
            return
        conn, self.conn, self.held = self.conn, None, False
        ok = False
        try:
            ok = self._unlocked(await (await conn.execute(_UNLOCK, (self.key,))).fetchone())
        except psycopg.Error as exc:
            log.warning("could not unlock PostgreSQL advisory lock %s (%s); closing its "
                        "connection", self.key, exc)
        finally:
            if not ok:
                await conn.close()
            await self.pool.putconn(conn)

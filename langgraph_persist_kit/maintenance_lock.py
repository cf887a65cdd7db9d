"""A store-wide lock so that two maintenance runs on one store never overlap.

Owns: `maintenance_lock`, `MaintenanceLockedError` and how each backend holds
the lock; depends on: `errors`, each backend's error boundary, and the
saver's own connection (``conn`` / ``client``) and ``plans`` (where its
tables or keys live). Sync savers only: the ``persist-kit`` commands use
those, and the lock needs nothing from the saver's mode otherwise.

Every lock is released when the process holding it dies, without help:

- SQLite: ``flock`` on a sidecar file ``<database>.maintenance.lock`` next to
  the database; the kernel drops the lock when the process exits or is killed.
  The file itself stays (deleting it would let two runs lock two different
  files); it holds the current holder's pid and host, for messages.
- PostgreSQL: a session advisory lock (``pg_try_advisory_lock``) taken on a
  connection opened for the run alone; the server drops it when that
  connection ends. The key is derived from the schema, so the schemas of one
  database lock independently. Session locks need a real session: point the
  URL at PostgreSQL itself, not at PgBouncer in transaction pooling mode.
- Redis: the key ``<key_prefix>:maintenance`` set with ``NX`` and a lease (60 s
  by default) that a daemon thread renews every third of it; released by a
  compare-and-delete script. A dead holder's key expires within one lease.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from typing import Any

from langgraph_persist_kit._local_locks import LOCAL, holder_name
from langgraph_persist_kit.errors import ConfigurationError, PersistKitError

__all__ = ["DEFAULT_LEASE", "MaintenanceLockedError", "maintenance_lock"]

log = logging.getLogger(__name__)

DEFAULT_LEASE = 60.0
"""Seconds a Redis lock lives without renewal (the longest a dead holder blocks a store)."""

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class MaintenanceLockedError(PersistKitError):
    """Another maintenance run holds this store's maintenance lock; try again later."""


MaintenanceLockedError.__module__ = "langgraph_persist_kit.maintenance_lock"


def _busy(store: str, holder: str | None) -> MaintenanceLockedError:
    held_by = f" ({holder})" if holder else ""
    return MaintenanceLockedError(
        f"another maintenance run holds the maintenance lock of {store}{held_by}; "
        "this run did nothing"
    )


@contextmanager
def maintenance_lock(saver: Any, *, name: str = "maintenance",
                     lease: float = DEFAULT_LEASE) -> Iterator[None]:
    """Hold the store-wide, cross-process maintenance lock for the ``with`` block.

    Fails at once when another run (any process, any host) holds it; never
    waits. The lock is released on leaving the block, and by the backend when
    the holding process dies (see the module docstring). It excludes other
    maintenance runs only: graphs keep reading and writing the store.

    Args:
        saver: One of this package's sync savers (`SqliteSaver`,
            `PostgresSaver`, `RedisSaver`), set up.
        name: Which lock: runs with different names do not exclude each other
            (letters, digits, ``_``, ``.``, ``-``).
        lease: Redis only: seconds the lock key lives without renewal; a daemon
            thread renews it every ``lease / 3`` seconds while the block runs.

    Yields:
        Nothing; the lock is held inside the block.

    Raises:
        MaintenanceLockedError: Another run holds the lock.
        ConfigurationError: For a saver that is not one of this package's sync
            savers, a bad ``name`` or a ``lease`` under one second.
        BackendError: The store failed while taking the lock.
        OSError: The SQLite sidecar file could not be opened.

    Example:
        ```python
        with SqliteSaver.from_conn_string("agents.db") as saver:
            with maintenance_lock(saver):
                cleanup_expired(saver, older_than=timedelta(days=30))
        ```
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigurationError(f"lock name must be 1-64 letters, digits, _ . -, not {name!r}")
    conn = getattr(saver, "conn", None)
    if isinstance(conn, sqlite3.Connection):
        with _sqlite_lock(conn, name):
            yield
    elif hasattr(saver, "client") and hasattr(getattr(saver, "plans", None), "keys"):
        if not lease >= 1:
            raise ConfigurationError(f"lease must be at least 1 second, not {lease!r}")
        with _redis_lock(saver.client, saver.plans.keys.prefix, name, lease):
            yield
    elif conn is not None and hasattr(getattr(saver, "plans", None), "schema"):
        with _postgres_lock(conn, saver.plans.schema, name):
            yield
    else:
        raise ConfigurationError(
            f"maintenance_lock works on this package's sync savers (SqliteSaver, "
            f"PostgresSaver, RedisSaver), not {type(saver).__name__}"
        )


# --- SQLite: flock on a sidecar file ---------------------------------------------------


def _sqlite_file(conn: sqlite3.Connection) -> str:
    """The main database's file, or ``""`` for an in-memory database."""
    from langgraph_persist_kit.sqlite._common import DATABASE_LIST, main_file, sqlite_errors

    with sqlite_errors():
        return main_file(conn.execute(DATABASE_LIST))


@contextmanager
def _sqlite_lock(conn: sqlite3.Connection, name: str) -> Iterator[None]:
    path = _sqlite_file(conn)
    if not path:  # in memory: no other process can open it
        if not LOCAL.try_take(("maintenance", name, id(conn))):
            raise _busy("this in-memory SQLite database", None)
        try:
            yield
        finally:
            LOCAL.give_back(("maintenance", name, id(conn)))
        return
    try:
        import fcntl
    except ImportError as exc:  # Windows
        raise ConfigurationError("the SQLite maintenance lock needs fcntl (POSIX)") from exc
    sidecar = f"{path}.{name}.lock"
    fd = os.open(sidecar, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            with suppress(OSError):
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            raise _busy(f"SQLite database {path}", holder or None) from None
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{holder_name()} since {stamp}\n".encode(), 0)
        try:
            yield
        finally:
            with suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)  # closing also drops the flock


# --- PostgreSQL: a session advisory lock on a connection of its own --------------------

_PG_HOLDER = """
SELECT l.pid, host(a.client_addr), a.application_name
FROM pg_locks AS l LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.classid::bigint = %s AND l.objid::bigint = %s
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
"""Who holds a bigint advisory lock: pg_locks splits the key into classid (high 32
bits) and objid (low 32 bits), with objsubid 1."""


def _postgres_lock_key(schema: str, name: str = "maintenance") -> int:
    """The advisory lock key of ``schema``'s lock ``name``: a signed 64-bit int."""
    from langgraph_persist_kit.postgres._common import advisory_key

    return advisory_key(f"persist-kit {name} {schema}")


def _postgres_conninfo(conn: Any) -> tuple[str, dict[str, Any]]:
    """How to open another connection like ``conn`` (a sync pool or connection)."""
    import psycopg
    from psycopg_pool import ConnectionPool

    from langgraph_persist_kit.postgres._common import connection_args

    if isinstance(conn, (ConnectionPool, psycopg.Connection)):
        conninfo, kwargs = connection_args(conn)
        return (conninfo() if callable(conninfo) else conninfo) or "", kwargs
    raise ConfigurationError(
        f"maintenance_lock needs a sync PostgreSQL saver (psycopg ConnectionPool or "
        f"Connection), not one on {type(conn).__name__}"
    )


def _postgres_holder(conn: Any, key: int) -> str | None:
    """Who holds ``key``, e.g. ``persist-kit maintenance pid 7 on web-1; server pid 99 from
    10.0.0.5`` (the holder names itself in its connection's application name)."""
    found = conn.execute(_PG_HOLDER, ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF)).fetchone()
    if not found:
        return None
    pid, address, application = found
    server = f"server pid {pid}" + (f" from {address}" if address else "")
    return f"{application}; {server}" if application else server


@contextmanager
def _postgres_lock(conn: Any, schema: str, name: str) -> Iterator[None]:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict
    from psycopg.rows import tuple_row

    from langgraph_persist_kit.postgres._common import postgres_errors

    conninfo, kwargs = _postgres_conninfo(conn)
    given = conninfo_to_dict(conninfo)
    # whatever the saver's pool sets (dict_row, prepare_threshold=0): rows as tuples
    kwargs.update(autocommit=True, prepare_threshold=None, row_factory=tuple_row)
    kwargs.setdefault("connect_timeout", given.get("connect_timeout", 10))
    # names the holder for the message a second run prints (63 characters at most)
    kwargs["application_name"] = f"persist-kit {name} {holder_name()}"[:63]
    key = _postgres_lock_key(schema, name)
    with postgres_errors(conninfo):
        lock_conn = psycopg.connect(conninfo, **kwargs)
    try:
        with postgres_errors():
            row = lock_conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if not (row and row[0]):
                where = f'PostgreSQL schema "{schema}" of database {lock_conn.info.dbname}'
                raise _busy(where, _postgres_holder(lock_conn, key))
        try:
            yield
        finally:
            # a connection that broke during the run took its lock with it
            with suppress(psycopg.Error):
                lock_conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
    finally:
        lock_conn.close()


# --- Redis: a leased key, renewed while held (`redis.lease`) ---------------------------


@contextmanager
def _redis_lock(client: Any, prefix: str, name: str, lease: float) -> Iterator[None]:
    import redis
    from redis.cluster import RedisCluster

    from langgraph_persist_kit.redis.lease import Lease

    if not isinstance(client, (redis.Redis, RedisCluster)):
        raise ConfigurationError(
            f"maintenance_lock needs a sync Redis saver (redis.Redis or RedisCluster), not "
            f"one on {type(client).__name__}"
        )
    held = Lease(client, f"{prefix}:{name}", lease)
    if not held.try_acquire():
        raise _busy(f"Redis key prefix {prefix!r}", held.holder())
    try:
        yield
    finally:
        held.release()

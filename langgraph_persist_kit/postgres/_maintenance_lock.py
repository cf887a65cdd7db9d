"""The PostgreSQL store's maintenance lock (`maintenance_lock.maintenance_lock` asks for it).

Owns: a session advisory lock (``pg_try_advisory_lock``) taken on a connection opened
for the run alone; the server drops it when that connection ends. The key is derived
from the schema, so the schemas of one database lock independently. Session locks need
a real session: point the URL at PostgreSQL itself, not at PgBouncer in transaction
pooling mode.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool

from langgraph_persist_kit._core.local_locks import holder_name
from langgraph_persist_kit.errors import ConfigurationError, MaintenanceLockedError
from langgraph_persist_kit.postgres._common import advisory_key, connection_args, postgres_errors

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
    return advisory_key(f"persist-kit {name} {schema}")


def _postgres_conninfo(conn: Any) -> tuple[str, dict[str, Any]]:
    """How to open another connection like ``conn`` (a sync pool or connection)."""
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
def postgres_maintenance_lock(conn: Any, schema: str, name: str) -> Iterator[None]:
    """Hold the lock ``name`` of ``schema`` on a connection like ``conn`` (a sync pool or
    connection), or raise `MaintenanceLockedError` naming its holder."""
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
                raise MaintenanceLockedError.of(where, _postgres_holder(lock_conn, key))
        try:
            yield
        finally:
            # a connection that broke during the run took its lock with it
            with suppress(psycopg.Error):
                lock_conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
    finally:
        lock_conn.close()

"""The SQLite store's maintenance lock (`maintenance_lock.maintenance_lock` asks for it).

Owns: ``flock`` on a sidecar file ``<database>.<name>.lock`` next to the database; the
kernel drops the lock when the process exits or is killed. The file stays (deleting it
would let two runs lock two different files) and holds the current holder's pid and
host, for messages. An in-memory database is locked within its process.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone

from langgraph_persist_kit._core.local_locks import LOCAL, holder_name
from langgraph_persist_kit.errors import ConfigurationError, MaintenanceLockedError
from langgraph_persist_kit.sqlite._common import DATABASE_LIST, main_file, sqlite_errors


def _sqlite_file(conn: sqlite3.Connection) -> str:
    """The main database's file, or ``""`` for an in-memory database."""
    with sqlite_errors():
        return main_file(conn.execute(DATABASE_LIST))


@contextmanager
def sqlite_maintenance_lock(conn: sqlite3.Connection, name: str) -> Iterator[None]:
    """Hold the lock ``name`` of the database ``conn`` has open, or raise
    `MaintenanceLockedError` naming its holder."""
    path = _sqlite_file(conn)
    if not path:  # in memory: no other process can open it
        if not LOCAL.try_take(("maintenance", name, id(conn))):
            raise MaintenanceLockedError.of("this in-memory SQLite database", None)
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
            raise MaintenanceLockedError.of(f"SQLite database {path}", holder or None) from None
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

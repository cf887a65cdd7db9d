"""A store-wide lock so that two maintenance runs on one store never overlap.

Owns: `maintenance_lock`, which checks its arguments and asks the saver for its store's
lock through the hook ``maintenance_lock_handle(name, lease=...)``. Sync savers only:
the ``persist-kit`` commands use those, and the lock needs nothing from the saver's mode
otherwise.

Each backend holds the lock its own way, and every lock is released when the process
holding it dies, without help: SQLite ``flock`` on a sidecar file
(`sqlite.maintenance_lock`), a PostgreSQL session advisory lock on a connection of its
own (`postgres.maintenance_lock`), a renewed Redis lease (`redis.maintenance_lock`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from langgraph_persist_kit.errors import ConfigurationError, MaintenanceLockedError

__all__ = ["DEFAULT_LEASE", "MaintenanceLockedError", "maintenance_lock"]

DEFAULT_LEASE = 60.0
"""Seconds a Redis lock lives without renewal (the longest a dead holder blocks a store)."""

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


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
    if not lease >= 1:
        raise ConfigurationError(f"lease must be at least 1 second, not {lease!r}")
    hook = getattr(saver, "maintenance_lock_handle", None)
    if hook is None:
        raise ConfigurationError(
            f"maintenance_lock works on this package's sync savers (SqliteSaver, "
            f"PostgresSaver, RedisSaver), not {type(saver).__name__}"
        )
    with hook(name, lease=lease):
        yield

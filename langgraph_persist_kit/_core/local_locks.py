"""What every lock of this package does inside one process.

Owns: how a holder names itself and the registry of lock keys this process holds.

Store locks tell processes apart, not the threads or tasks of one process
(POSIX record locks belong to the process; a PostgreSQL session's advisory
locks stack), so every lock first takes its key in `LOCAL`, which callers of
one process share whatever their mode. A child made by ``fork()`` inherits no
store lock, so it starts with an empty registry.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Hashable

_HOST = socket.gethostname()


def holder_name() -> str:
    """Who takes a lock, for the message another caller gets: ``pid 123 on host``."""
    return f"pid {os.getpid()} on {_HOST}"


class LocalLocks:
    """Lock keys held in this process; taking one never waits."""

    def __init__(self) -> None:
        self._held: set[Hashable] = set()
        self._guard = threading.Lock()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget)

    def try_take(self, key: Hashable) -> bool:
        """Take ``key`` if no caller of this process holds it."""
        with self._guard:
            if key in self._held:
                return False
            self._held.add(key)
            return True

    def give_back(self, key: Hashable) -> None:
        with self._guard:
            self._held.discard(key)

    def _forget(self) -> None:
        self._guard = threading.Lock()
        self._held = set()


LOCAL = LocalLocks()

"""Per-thread locks of a SQLite database that exclude other processes.

Owns: the lock file beside a database and one byte of it per thread.

Each thread of ``agents.db`` locks one byte of ``agents.db.threads.lock``
(its offset a hash of the thread id) with a POSIX record lock, ``lockf``.
The kernel drops a process's record locks when it exits or is killed, so a
dead holder never blocks a thread. Record locks belong to the process, not to
a thread of it, so `LOCAL` excludes the callers of one process first, and this
module keeps one descriptor per lock file open for the life of the process:
closing any descriptor of a file drops every record lock the process holds on
it. The lock file stays (deleting it would let two callers lock two files).

An in-memory database cannot be opened by another process: its locks are `LOCAL` only.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from collections.abc import Hashable
from contextlib import suppress

from langgraph_persist_kit.errors import BackendError

_OFFSETS = 1 << 62
"""Byte offsets locks are spread over; two threads share one with odds of 1 in 2**62."""

_files: dict[str, int] = {}
_files_guard = threading.Lock()


def _forget_files() -> None:  # a forked child holds no record lock; its descriptors go
    global _files_guard
    _files_guard = threading.Lock()
    for fd in _files.values():
        with suppress(OSError):
            os.close(fd)  # drops only this (new) process's record locks: it has none
    _files.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_files)


def _lock_file(database: str) -> int:
    """The open descriptor of ``database``'s lock file, opened once per process.

    Raises:
        BackendError: The file cannot be opened (or created) for writing.
    """
    path = os.path.abspath(database) + ".threads.lock"
    with _files_guard:
        if path not in _files:
            try:
                _files[path] = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                raise BackendError(
                    f"cannot open the thread lock file {path} ({exc.strerror}): every "
                    "process that locks threads of this database must be able to write it"
                ) from exc
        return _files[path]


class SqliteThreadLock:
    """One thread's lock on one SQLite database; ``database`` is ``""`` when in memory.

    Both modes use it: taking a record lock without waiting is one system
    call, with no I/O to wait for.
    """

    def __init__(self, database: str, thread_id: str, memory_id: int) -> None:
        digest = hashlib.sha256(thread_id.encode("utf-8", "surrogatepass")).digest()
        self.offset = int.from_bytes(digest[:8], "big") % _OFFSETS
        self.database = database
        where = os.path.abspath(database) if database else memory_id
        self.local_key: Hashable = ("sqlite", where, self.offset)
        self.held = False

    def try_acquire(self) -> bool:
        """Lock the thread's byte if no other process has it.

        Raises:
            BackendError: The lock file could not be opened or locked.
        """
        if self.database:
            import fcntl

            fd = _lock_file(self.database)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, self.offset)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES):  # held by another process
                    return False
                raise BackendError(f"cannot lock a thread in {self.database}.threads.lock: "
                                   f"{exc.strerror}") from exc
        self.held = True
        return True

    def release(self) -> None:
        if self.held and self.database:
            import fcntl

            fcntl.lockf(_lock_file(self.database), fcntl.LOCK_UN, 1, self.offset)
        self.held = False

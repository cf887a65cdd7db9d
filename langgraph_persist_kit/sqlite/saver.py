"""`SqliteSaver`: the synchronous SQLite checkpoint saver.

Owns: running the SQLite plans on a ``sqlite3`` connection (the public methods come from
`SaverMethods`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol

from langgraph_persist_kit._core.modes import SyncOnly
from langgraph_persist_kit._core.plan import Listing, Plan, Query, R, Rows, Turn, iterate
from langgraph_persist_kit._core.saver import SaverMethods
from langgraph_persist_kit.sqlite import _common
from langgraph_persist_kit.sqlite._common import Synchronous, sqlite_errors
from langgraph_persist_kit.sqlite._maintenance_lock import sqlite_maintenance_lock
from langgraph_persist_kit.sqlite._plans import PLANS
from langgraph_persist_kit.sqlite._thread_lock import SqliteThreadLock


class SqliteSaver(SyncOnly, SaverMethods):
    """A checkpoint saver on a SQLite file, for ``graph.invoke`` / ``graph.stream``.

    Channel values are stored once per (thread, namespace, channel, version),
    so an unchanged field is not copied into every checkpoint. Writes run in
    ``BEGIN IMMEDIATE`` transactions on a WAL database, so several processes
    can write different threads of one file at once. Safe to share between
    threads: calls are serialised on one connection.

    Args:
        conn: An open ``sqlite3.Connection`` that the caller owns and closes.
            Open it with ``check_same_thread=False`` (LangGraph writes
            checkpoints from a background thread).
        serde: The serializer for checkpoints, channel values and writes;
            defaults to ``JsonPlusSerializer``. Pass an ``EncryptedSerializer``
            to encrypt them (metadata stays plain JSON, to stay filterable).
        append_deltas: Store a list value that extends the channel's previous
            value (a chat's ``messages``) as the items it appended only, rebuilt
            exactly on read; on by default. ``False`` stores every value whole,
            as before. Data stored with it on or off reads back the same either
            way, so it can be switched at any time.
        append_cache_bytes: The most bytes of list values the saver remembers to
            spot appends, least recently used first out (default 64 MiB,
            `deltas.DEFAULT_CACHE_BYTES`). A value not remembered is stored whole;
            0 remembers nothing. Unused when ``append_deltas`` is off.

    Raises:
        ConfigurationError: For a bad ``append_deltas`` or ``append_cache_bytes``.

    Example:
        ```python
        from langgraph_persist_kit.sqlite import SqliteSaver

        with SqliteSaver.from_conn_string("agents.db") as saver:
            graph = builder.compile(checkpointer=saver)
            graph.invoke(inputs, {"configurable": {"thread_id": "t-1"}})
        ```
    """

    batch_rest = _common.BATCH_REST

    def __init__(self, conn: sqlite3.Connection, *, serde: SerializerProtocol | None = None,
                 append_deltas: bool = True, append_cache_bytes: int | None = None) -> None:
        super().__init__(serde=serde, append_deltas=append_deltas,
                         append_cache_bytes=append_cache_bytes)
        self.conn = conn
        self.plans = PLANS
        self.lock = threading.RLock()
        self._database_file: str | None = None  # for thread locks, found once

    @classmethod
    @contextmanager
    def from_conn_string(cls, conn: str | os.PathLike[str], *,
                         serde: SerializerProtocol | None = None, busy_timeout: float | None = None,
                         synchronous: Synchronous | None = None,
                         append_deltas: bool | None = None, append_cache_bytes: int | None = None,
                         **unknown: Any) -> Iterator[SqliteSaver]:
        """Open a database, set its schema up, yield a saver, close the database.

        Args:
            conn: A file path, ``":memory:"``, ``"sqlite:///relative.db"`` or
                ``"sqlite:////absolute.db"``; a URL's query may set the options
                below but ``serde``
                (``?synchronous=normal&busy_timeout=5&append_deltas=false``).
            serde: See the class.
            busy_timeout: Seconds a write waits for another process's write
                transaction before failing (default 30; overrides the URL's).
            synchronous: ``"full"`` (default) or ``"normal"`` (overrides the URL's);
                see the README's durability notes.
            append_deltas: See the class (default ``True``; overrides the URL's,
                where it is ``true`` or ``false``).
            append_cache_bytes: See the class; bytes (default 64 MiB; overrides
                the URL's).
            **unknown: Refused: any other option is a `ConfigurationError` naming it.

        Raises:
            ConfigurationError: For a URL that is not SQLite, or an unknown or bad
                option.
            BackendError: When the file cannot be opened or migrated.
        """
        path, connect, pragmas, options = _common.open_settings(
            conn, busy_timeout, synchronous, unknown, append_deltas, append_cache_bytes)
        with sqlite_errors(path):
            connection = sqlite3.connect(path, **connect)
        try:
            with sqlite_errors():
                for pragma in pragmas:
                    connection.execute(pragma)
            saver = cls(connection, serde=serde, **options)
            saver.setup()
            yield saver
        finally:
            connection.close()

    # --- the driver ---------------------------------------------------------------

    def _execute(self, query: Query) -> Rows:
        return _common.execute(self.conn, query)

    def _run(self, make_plan: Callable[[], Plan[R]], *, transaction: bool = False) -> R:
        """Run a plan under the lock; writes in one ``BEGIN IMMEDIATE`` transaction."""
        if not self.is_setup:
            self.setup()
        return self._drive(make_plan(), transaction)

    def _drive(self, plan: Plan[R], transaction: bool) -> R:
        with self.lock, sqlite_errors():
            return _common.drive(self.conn, Turn(plan), transaction)

    def _iterate(self, plan: Listing) -> Iterator[Any]:
        """Drive an emitting plan; the lock is held per query, never across a yield."""

        def execute(query: Query) -> Rows:
            if not self.is_setup:
                self.setup()
            with self.lock, sqlite_errors():
                return self._execute(query)

        return iterate(plan, execute)

    def setup(self) -> None:
        """Create or migrate the schema. Idempotent; safe from several processes at once.

        Runs automatically on first use. Switches the file to WAL mode, then
        applies pending migrations in one ``BEGIN IMMEDIATE`` transaction.

        Raises:
            SchemaVersionError: The file was migrated by a newer version.
            BackendError: SQLite failed.
        """
        with self.lock, sqlite_errors():
            for delay in _common.journal_mode_retries():
                try:
                    self.conn.execute(_common.JOURNAL_MODE)
                    break
                except sqlite3.OperationalError as exc:
                    time.sleep(_common.retry_after(exc, delay))
        self._drive(self.plans.setup(), transaction=True)
        self.is_setup = True

    def thread_lock_handle(self, thread_id: str, *, lease: float) -> SqliteThreadLock:
        """The cross-process lock of one thread (see `concurrency.thread_lock`); no I/O
        but one ``PRAGMA`` the first time. ``lease`` is unused: the lock dies with its
        holder."""
        if self._database_file is None:
            with self.lock, sqlite_errors():
                self._database_file = _common.main_file(self.conn.execute(_common.DATABASE_LIST))
        return SqliteThreadLock(self._database_file, thread_id, id(self.conn))

    def maintenance_lock_handle(self, name: str, *, lease: float) -> AbstractContextManager[None]:
        """The store-wide maintenance lock ``name`` (see `maintenance_lock`): ``flock`` on
        ``<database>.<name>.lock``. ``lease`` is unused: the lock dies with its holder."""
        return sqlite_maintenance_lock(self.conn, name)

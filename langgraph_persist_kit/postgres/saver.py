"""`PostgresSaver`: the synchronous PostgreSQL checkpoint saver.

Owns: running the Postgres plans on a psycopg connection or pool.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from typing import Any

import psycopg
from langgraph.checkpoint.serde.base import SerializerProtocol
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool

from langgraph_persist_kit._core.modes import SyncOnly
from langgraph_persist_kit._core.plan import Listing, Plan, Query, R, Rows, iterate, run, single
from langgraph_persist_kit._core.saver import SaverMethods
from langgraph_persist_kit.errors import BackendUnavailableError
from langgraph_persist_kit.postgres._common import (
    DEFAULT_SCHEMA,
    pool_settings,
    postgres_errors,
    require_autocommit,
    retryable,
    returns_rows,
)
from langgraph_persist_kit.postgres._maintenance_lock import postgres_maintenance_lock
from langgraph_persist_kit.postgres._plans import plans_for
from langgraph_persist_kit.postgres._thread_lock import PostgresThreadLock, close_lock_pool


class PostgresSaver(SyncOnly, SaverMethods):
    """A checkpoint saver on PostgreSQL, for ``graph.invoke`` / ``graph.stream``.

    Given a ``ConnectionPool``, every call borrows its own connection, so
    concurrent calls run concurrently (no saver-wide lock). ``put`` and
    ``put_writes`` are one statement each (one round trip, atomic); deletes,
    copies and prunes are one transaction; ``get_tuple`` is one query.

    Args:
        conn: A ``psycopg.Connection`` or ``psycopg_pool.ConnectionPool`` that
            the caller owns and closes. A single connection is shared under a
            lock. Connections must be ``autocommit=True`` (the saver opens
            transactions where it needs them). Under PgBouncer transaction pooling, open them with
            ``prepare_threshold=None``.
        serde: The serializer for checkpoints, channel values and pending
            writes (e.g. ``EncryptedSerializer``); metadata stays plain JSONB.
        schema: The schema holding the tables (created by `setup`); savers
            on different schemas never see each other's threads.
        append_deltas: Store a growing list as the items it appended, on by
            default; ``False`` stores every value whole. As for `SqliteSaver`;
            see ``docs/storage.md``.
        append_cache_bytes: Bytes of list values remembered to spot appends
            (default 64 MiB); as for `SqliteSaver`.

    Raises:
        ConfigurationError: For a bad ``schema``, ``append_deltas`` or
            ``append_cache_bytes``.

    Example:
        ```python
        from langgraph_persist_kit.postgres import PostgresSaver

        with PostgresSaver.from_conn_string("postgresql://app@db/agents") as saver:
            graph = builder.compile(checkpointer=saver)
        ```
    """

    def __init__(self, conn: psycopg.Connection | ConnectionPool, *,
                 serde: SerializerProtocol | None = None, schema: str = DEFAULT_SCHEMA,
                 append_deltas: bool = True, append_cache_bytes: int | None = None) -> None:
        super().__init__(serde=serde, append_deltas=append_deltas,
                         append_cache_bytes=append_cache_bytes)
        self.conn = conn
        self.plans = plans_for(schema)
        self.lock = threading.Lock()

    @classmethod
    @contextmanager
    def from_conn_string(cls, conn: str, *, serde: SerializerProtocol | None = None,
                         schema: str | None = None, pool_min_size: int | None = None,
                         pool_max_size: int | None = None, pool_timeout: float | None = None,
                         pgbouncer: bool | None = None,
                         append_deltas: bool | None = None, append_cache_bytes: int | None = None,
                         **unknown: Any) -> Iterator[PostgresSaver]:
        """Open a connection pool, set the schema up, yield a saver, close the pool.

        Args:
            conn: A ``postgresql://`` URL; ``?schema=NAME`` in it picks the schema, and
                every option below may be in its query too (``?pool_max_size=20``,
                ``?pgbouncer=true``, ``?append_deltas=false``); a keyword wins.
            serde: See the class.
            schema: See the class; overrides the URL's ``schema``; default ``"public"``.
            pool_min_size: Connections kept open (default 1).
            pool_max_size: The most connections open at once (default 10).
            pool_timeout: Seconds a call waits for a free connection (and the
                pool for its first one) before failing (default 30).
            pgbouncer: ``True`` behind PgBouncer in transaction pooling mode:
                no server-side prepared statements (default ``False``).
            append_deltas: See the class (default ``True``); overrides the URL's,
                where it is ``true`` or ``false``.
            append_cache_bytes: See the class; bytes (default 64 MiB); overrides
                the URL's.
            **unknown: Refused: any other option is a `ConfigurationError` naming it.

        Raises:
            ConfigurationError: For a URL that is not PostgreSQL, a bad schema or
                append option, or an unknown option.
            BackendUnavailableError: When the server cannot be reached.
            SchemaVersionError: The schema was migrated by a newer version.
        """
        url, schema, options = pool_settings(
            conn, schema, pool_min_size, pool_max_size, pool_timeout, pgbouncer, unknown,
            append_deltas, append_cache_bytes,
        )
        with postgres_errors(url):
            # one plain connection first: a wrong URL fails at once, with libpq's reason
            psycopg.connect(url, connect_timeout=options["connect_timeout"],
                            **options["kwargs"]).close()
            pool = ConnectionPool(url, **options["pool"])
            pool.open(wait=True, timeout=options["pool"]["timeout"])
        try:
            saver = cls(pool, serde=serde, schema=schema, **options["saver"])
            saver.setup()
            yield saver
        finally:
            close_lock_pool(pool)
            pool.close()

    # --- the driver ---------------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        if isinstance(self.conn, ConnectionPool):
            with self.conn.connection() as conn:
                yield conn
        else:
            with self.lock:
                yield self.conn

    def _run(self, make_plan: Callable[[], Plan[R]], *, transaction: bool = False) -> R:
        if not self.is_setup:
            self.setup()
        return self._drive(make_plan, transaction)

    def _drive(self, make_plan: Callable[[], Plan[R]], transaction: bool) -> R:
        """Run a plan on one connection; in a transaction when asked or not autocommit.

        A pooled connection that the server closed while it sat idle (a restart,
        an idle timeout) fails on its first statement. Nothing ran then, so the
        pool checks its idle connections (dropping the dead ones) and the plan
        runs once more: no round trip is spent checking connections before use.
        """
        for attempt in range(2):
            ran = 0
            try:
                with (
                    postgres_errors(),
                    self._connection() as conn,
                    conn.cursor(row_factory=tuple_row, binary=True) as cur,
                ):

                    def execute(query: Query) -> Rows:
                        nonlocal ran
                        cur.execute(query.sql, query.params or None, binary=bool(query.params))
                        ran += 1
                        return list(cur.fetchall()) if returns_rows(cur) else []

                    require_autocommit(conn)
                    if transaction:
                        with conn.transaction():
                            return run(make_plan(), execute)
                    return run(make_plan(), execute)
            except BackendUnavailableError as exc:
                if attempt or not retryable(self.conn, exc, ran):
                    raise
                assert isinstance(self.conn, ConnectionPool)
                self.conn.check()  # after a restart every idle connection is dead: drop them all
        raise AssertionError("unreachable")

    def _iterate(self, plan: Listing) -> Iterator[Any]:
        """Drive an emitting plan; a connection per page, never held across a yield."""

        def execute(query: Query) -> Rows:
            return self._run(partial(single, query))

        return iterate(plan, execute)

    def setup(self) -> None:
        """Create the schema and apply pending migrations. Idempotent and safe from
        several processes at once (a transaction-scoped advisory lock).

        Raises:
            SchemaVersionError: The schema was migrated by a newer version.
            BackendError: PostgreSQL failed.
        """
        self._drive(self.plans.setup, transaction=True)
        self.is_setup = True

    def thread_lock_handle(self, thread_id: str, *, lease: float) -> PostgresThreadLock:
        """The cross-process lock of one thread (see `concurrency.thread_lock`); no I/O.
        ``lease`` is unused: the lock dies with its holder's session."""
        return PostgresThreadLock(self, thread_id)

    def maintenance_lock_handle(self, name: str, *, lease: float) -> AbstractContextManager[None]:
        """The store-wide maintenance lock ``name`` of the saver's schema (see
        `maintenance_lock`): a session advisory lock on a connection of its own. ``lease``
        is unused: the lock dies with that session."""
        schema: str = self.plans.schema  # type: ignore[attr-defined]  # PostgresPlans
        return postgres_maintenance_lock(self.conn, schema, name)

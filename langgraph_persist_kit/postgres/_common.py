"""What the sync and async Postgres savers share: URLs, pool options, error translation.

Owns: how connections are opened and which driver errors mean "unavailable";
depends on: `errors`, psycopg.
"""

from __future__ import annotations

import hashlib
import re
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolClosed, PoolTimeout

from langgraph_persist_kit._urls import redact, take_query_param
from langgraph_persist_kit.errors import (
    BackendUnavailableError,
    ConfigurationError,
    translate_errors,
)

DEFAULT_SCHEMA = "public"


def check_url(url: str) -> str:
    """``url`` if it is a ``postgresql://`` (or ``postgres://``) URL.

    Raises:
        ConfigurationError: Otherwise.
    """
    if not isinstance(url, str) or not re.match(r"^postgres(ql)?://", url, re.IGNORECASE):
        raise ConfigurationError(
            f"{url!r} is not a PostgreSQL URL: use postgresql://user:password@host:5432/dbname"
        )
    return url


def connection_kwargs(pgbouncer: bool) -> dict[str, Any]:
    """Settings for every connection the savers open.

    ``autocommit``: each single-statement write commits on its own and plans
    that need a transaction open one explicitly. ``prepare_threshold=None``
    under PgBouncer's transaction pooling, where a server-side prepared
    statement may not exist on the next transaction's server connection.
    """
    kwargs: dict[str, Any] = {"autocommit": True}
    if pgbouncer:
        kwargs["prepare_threshold"] = None
    return kwargs


def pool_settings(
    conn: str,
    schema: str | None,
    min_size: int,
    max_size: int,
    timeout: float,
    pgbouncer: bool,
) -> tuple[str, str, dict[str, Any]]:
    """What ``from_conn_string`` opens: ``(url, schema, options)``.

    ``options`` holds ``kwargs`` (every connection's settings),
    ``connect_timeout`` (whole seconds, for the first connection) and ``pool``
    (the pool's arguments; the pool is opened by the caller).

    Raises:
        ConfigurationError: For a URL that is not PostgreSQL.
    """
    url, url_schema = take_query_param(check_url(conn), "schema")
    kwargs = connection_kwargs(pgbouncer)
    pool = {"min_size": min_size, "max_size": max_size, "timeout": timeout, "kwargs": kwargs,
            "open": False}
    options = {"kwargs": kwargs, "connect_timeout": max(1, int(timeout)), "pool": pool}
    return url, schema or url_schema or DEFAULT_SCHEMA, options


def require_autocommit(conn: psycopg.Connection | psycopg.AsyncConnection) -> None:
    """Refuse a connection that is not in autocommit mode.

    Each write of the savers is one statement or one explicit transaction; on
    a non-autocommit connection they would join (and never commit) whatever
    transaction the caller left open.

    Raises:
        ConfigurationError: When ``conn.autocommit`` is false.
    """
    if not conn.autocommit:
        raise ConfigurationError(
            "PostgreSQL connections given to the savers must be opened with "
            "autocommit=True (pools: kwargs={'autocommit': True})"
        )


def _unavailable(exc: BaseException) -> bool:
    """A failure to reach the server rather than an error it reported."""
    state = getattr(exc, "sqlstate", None)
    return isinstance(exc, psycopg.OperationalError) and (
        state is None or state.startswith(("08", "57P"))
    )


def postgres_errors(url: str | None = None) -> AbstractContextManager[None]:
    """Translate psycopg errors into `BackendError` / `BackendUnavailableError`."""
    where = f"PostgreSQL at {redact(url)}" if url else "PostgreSQL"
    return translate_errors(psycopg.Error, what=where, unavailable=_unavailable)


def retryable(conn: object, exc: BackendUnavailableError, statements_done: int) -> bool:
    """Whether a failed call may run again on a fresh pooled connection.

    Only when ``conn`` is a pool, no statement of the call completed, and the
    failure is the borrowed connection being dead (not the pool timing out or
    being closed). Re-running is safe even if the server did run a statement
    whose reply was lost: every plan is idempotent (upserts, deletes, reads)
    or ran in a transaction that the dead connection rolled back.
    """
    return (
        isinstance(conn, (ConnectionPool, AsyncConnectionPool))
        and statements_done == 0
        and not isinstance(exc.__cause__, (PoolTimeout, PoolClosed))
    )


def advisory_key(text: str) -> int:
    """A signed 64-bit advisory lock key for ``text`` (a hash: the key space is shared)."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def connection_args(conn: Any) -> tuple[Any, dict[str, Any]]:
    """``(conninfo, kwargs)`` to open more connections like ``conn`` (a saver's pool or
    connection, either mode), for locks held on connections of their own.

    A pool's ``conninfo`` is returned as the pool has it: a string, or a callable of
    the pool's kind; a pool's ``kwargs`` only when it is a dict.
    """
    if isinstance(conn, (ConnectionPool, AsyncConnectionPool)):
        return conn.conninfo, dict(conn.kwargs) if isinstance(conn.kwargs, dict) else {}
    return conn.info.dsn, {"password": conn.info.password} if conn.info.password else {}

"""What the sync and async Postgres savers share: conninfo, schema names, pool options,
error translation.

Owns: how connections are opened and which driver errors mean "unavailable".
"""

from __future__ import annotations

import hashlib
import re
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import ExecStatus
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolClosed, PoolTimeout

from langgraph_persist_kit._core.checks import (
    APPEND_OPTIONS,
    append_options,
    refuse_unknown,
    url_flag,
)
from langgraph_persist_kit._core.urls import quote_userinfo, redact, scrub, take_query_param
from langgraph_persist_kit.errors import (
    BackendUnavailableError,
    ConfigurationError,
    translate_errors,
)

DEFAULT_SCHEMA = "public"


_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def check_schema(schema: object) -> str:
    """``schema`` if it is a plain identifier: letters, digits and ``_``, not starting
    with a digit, at most 63 characters (nothing else: no trailing newline either).

    Raises:
        ConfigurationError: Otherwise.
    """
    if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
        raise ConfigurationError(
            f"schema must be a plain identifier (letters, digits, _; at most 63), not {schema!r}"
        )
    return schema


POOL_DEFAULTS: dict[str, Any] = {
    "pool_min_size": 1, "pool_max_size": 10, "pool_timeout": 30.0, "pgbouncer": False,
}
"""The pool options of ``from_conn_string``, in a URL's query or as keywords, and their
defaults."""

URL_OPTIONS = ("schema", *POOL_DEFAULTS, *APPEND_OPTIONS)
"""A PostgreSQL URL's query parameters that are ours, taken out before psycopg sees it."""


def check_conninfo(conn: object) -> tuple[str, dict[str, str]]:
    """``(conninfo for psycopg, our options from the URL)`` of a ``from_conn_string`` conn.

    Accepts what psycopg accepts: a ``postgresql://`` / ``postgres://`` URL
    (`URL_OPTIONS` in its query, ``?schema=NAME&append_deltas=false``, are ours, taken
    out before psycopg sees it; a raw ``@`` in its password is encoded, as redis-py and
    browsers read it) or a libpq ``key=value`` string (``"host=db dbname=app user=me"``;
    our options are given as keyword arguments: libpq has no such keys).

    Raises:
        ConfigurationError: For a non-string, a URL of another scheme, a bad schema,
            or a conninfo libpq cannot parse (an unknown option is named); the
            message never holds the password.
    """
    if not isinstance(conn, str):
        raise ConfigurationError(
            f"a PostgreSQL conn must be a URL or key=value string, not {type(conn).__name__}"
        )
    ours: dict[str, str] = {}
    if "://" in conn.split("=", 1)[0]:  # a URL (a key=value string has "=" before any "://")
        if not re.match(r"\s*postgres(ql)?://", conn, re.IGNORECASE):
            raise ConfigurationError(
                f"{redact(conn)!r} is not a PostgreSQL URL: use "
                "postgresql://user:password@host:5432/dbname or host=... dbname=... user=..."
            )
        conn = quote_userinfo(conn)
        for name in URL_OPTIONS:
            conn, value = take_query_param(conn, name)
            if value is not None:
                ours[name] = value
    try:
        conninfo_to_dict(conn)  # libpq's own parser: every form psycopg accepts
    except psycopg.ProgrammingError as exc:
        hint = "".join(f"; {name} is not a libpq option: pass {name}=... to from_conn_string"
                       for name in URL_OPTIONS if f'"{name}"' in str(exc))
        raise ConfigurationError(
            f"not a valid PostgreSQL conninfo {redact(conn)!r}: "
            f"{scrub(' '.join(str(exc).split()), conn)}{hint}"
        ) from None  # the driver's exception would repeat the unmasked text
    if "schema" in ours:
        check_schema(ours["schema"])
    return conn, ours


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


KEYWORDS = ("serde", "schema", "pool_min_size", "pool_max_size", "pool_timeout", "pgbouncer",
            *APPEND_OPTIONS)
"""What ``from_conn_string`` takes besides the conninfo."""


def pool_settings(
    conn: str,
    schema: str | None,
    min_size: int | None,
    max_size: int | None,
    timeout: float | None,
    pgbouncer: bool | None,
    unknown: dict[str, Any],
    append_deltas: bool | None = None,
    append_cache_bytes: int | None = None,
) -> tuple[str, str, dict[str, Any]]:
    """What ``from_conn_string`` opens: ``(url, schema, options)``; a keyword that is not
    ``None`` wins over the URL's option, which wins over `POOL_DEFAULTS`.

    ``options`` holds ``kwargs`` (every connection's settings),
    ``connect_timeout`` (whole seconds, for the first connection), ``pool``
    (the pool's arguments; the pool is opened by the caller) and ``saver`` (the
    saver's ``append_deltas`` / ``append_cache_bytes``).

    Raises:
        ConfigurationError: For a conninfo that is not PostgreSQL, a bad schema or
            append option, or ``unknown`` keywords (named).
    """
    refuse_unknown(unknown, KEYWORDS, "PostgreSQL keyword")
    url, from_url = check_conninfo(conn)
    min_size, max_size, timeout, pgbouncer = (
        _pool_option(name, keyword, from_url)
        for name, keyword in zip(POOL_DEFAULTS, (min_size, max_size, timeout, pgbouncer),
                                 strict=True))
    kwargs = connection_kwargs(pgbouncer)
    pool = {"min_size": min_size, "max_size": max_size, "timeout": timeout, "kwargs": kwargs,
            "open": False}
    options = {"kwargs": kwargs, "connect_timeout": max(1, int(timeout)), "pool": pool,
               "saver": append_options(from_url, append_deltas, append_cache_bytes)}
    chosen = schema if schema is not None else from_url.get("schema")
    return url, check_schema(DEFAULT_SCHEMA if chosen is None else chosen), options


def _pool_option(name: str, keyword: Any, from_url: dict[str, str]) -> Any:
    """One pool option: the keyword, else the URL's (``?pool_max_size=20``), else the
    default.

    Raises:
        ConfigurationError: For a URL value of the wrong type, naming the option.
    """
    if keyword is not None:
        return keyword
    if name not in from_url:
        return POOL_DEFAULTS[name]
    text = from_url[name]
    try:
        value = url_flag(text) if name == "pgbouncer" else (
            float(text) if name == "pool_timeout" else int(text))
    except ValueError:
        value = None
    if value is None:
        kind = {"pgbouncer": "true or false", "pool_timeout": "seconds"}
        raise ConfigurationError(
            f"{name} in the URL must be {kind.get(name, 'a whole number')}, not {text!r}"
        )
    return value


def returns_rows(cur: psycopg.Cursor[Any] | psycopg.AsyncCursor[Any]) -> bool:
    """Whether the statement just run returned rows (its result, not ``description``,
    which builds a column object per column at every call)."""
    result = cur.pgresult
    return result is not None and result.status == ExecStatus.TUPLES_OK


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
    """Translate psycopg errors into `BackendError` / `BackendUnavailableError`.

    Args:
        url: The conninfo connected to, if any: named in the message with its
            secrets masked, and its secrets masked in the driver's message too.
    """
    where = f"PostgreSQL at {redact(url)}" if url else "PostgreSQL"
    return translate_errors(psycopg.Error, what=where, unavailable=_unavailable,
                            clean=lambda message: scrub(message, url))


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

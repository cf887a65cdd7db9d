"""What the sync and async Postgres savers share: URLs, pool options, error translation.

Owns: how connections are opened and which driver errors mean "unavailable";
depends on: `errors`, psycopg.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from langgraph_persist_kit.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    PersistKitError,
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


def split_schema(url: str) -> tuple[str, str | None]:
    """Take our own ``schema=NAME`` query parameter out of a URL (psycopg would reject it).

    ``postgresql://host/db?schema=tenant_a&sslmode=require`` gives
    ``("postgresql://host/db?sslmode=require", "tenant_a")``.
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in query if key == "schema"]
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    return urlunsplit(parts._replace(query=rest)), (schemas[-1] if schemas else None)


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


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


def _unavailable(exc: psycopg.Error) -> bool:
    """A failure to reach the server rather than an error it reported."""
    state = exc.sqlstate
    return isinstance(exc, psycopg.OperationalError) and (
        state is None or state.startswith(("08", "57P"))
    )


@contextmanager
def postgres_errors(url: str | None = None) -> Iterator[None]:
    """Translate psycopg errors into `BackendError` / `BackendUnavailableError`."""
    where = f"PostgreSQL at {redact(url)}" if url else "PostgreSQL"
    try:
        yield
    except PersistKitError:
        raise
    except psycopg.Error as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        if _unavailable(exc):
            raise BackendUnavailableError(f"{where} is unavailable: {message}") from exc
        raise BackendError(f"{where} failed: {message}") from exc


class Attempt(NamedTuple):
    number: int
    last: bool


def retry_attempts(conn: object) -> list[Attempt]:
    """Two attempts on a pool (a dead idle connection is replaced), one on a lone connection."""
    count = 2 if isinstance(conn, (ConnectionPool, AsyncConnectionPool)) else 1
    return [Attempt(n, n == count - 1) for n in range(count)]

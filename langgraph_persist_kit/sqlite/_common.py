"""What the sync and async SQLite savers share: options, pragmas, error translation, and
running a plan on a ``sqlite3`` connection.

Owns: SQLite connection settings (keywords and URL options, the saver's own too), error
translation and `drive` (a plan's statements, its transaction, its commit or rollback).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import AbstractContextManager
from typing import Any, Literal

from langgraph_persist_kit._core.checks import APPEND_OPTIONS, append_options, refuse_unknown
from langgraph_persist_kit._core.plan import Query, R, Rows, Turn, finish
from langgraph_persist_kit._core.urls import sqlite_target
from langgraph_persist_kit.errors import ConfigurationError, translate_errors

Synchronous = Literal["full", "normal"]

DEFAULT_BUSY_TIMEOUT = 30.0
"""Seconds a writer waits for another process's write transaction to finish."""


def connect_kwargs(busy_timeout: float) -> dict[str, Any]:
    """Arguments for ``sqlite3.connect`` / ``aiosqlite.connect``.

    ``isolation_level=None``: the savers issue ``BEGIN IMMEDIATE`` themselves, so
    a write transaction takes the write lock up front and waits for it (up to
    ``busy_timeout``) instead of failing with "database is locked" later.
    """
    if busy_timeout < 0:
        raise ConfigurationError(f"busy_timeout must be >= 0 seconds, not {busy_timeout}")
    return {"timeout": busy_timeout, "isolation_level": None, "check_same_thread": False}


OPTIONS = ("busy_timeout", "synchronous", *APPEND_OPTIONS)
"""What ``from_conn_string`` takes besides ``serde``, as keywords or in a URL's query."""


def open_settings(conn: str | os.PathLike[str], busy_timeout: float | None,
                  synchronous: Synchronous | None, unknown: dict[str, Any],
                  append_deltas: bool | None = None, append_cache_bytes: int | None = None,
                  ) -> tuple[str, dict[str, Any], list[str], dict[str, Any]]:
    """``(path, connect keywords, pragmas, saver keywords)`` for ``from_conn_string``: its
    keywords win over the URL's options
    (``sqlite:///a.db?synchronous=normal&busy_timeout=5&append_deltas=false``).

    Raises:
        ConfigurationError: For an option no SQLite saver takes (``unknown`` keywords,
            or in the URL), a bad value, or a conn that is not SQLite.
    """
    refuse_unknown(unknown, ("serde", *OPTIONS), "SQLite keyword")
    path, query = sqlite_target(conn)
    refuse_unknown(query, OPTIONS, "SQLite URL")
    saver_options = append_options(query, append_deltas, append_cache_bytes)
    if busy_timeout is None:
        text = query.get("busy_timeout", str(DEFAULT_BUSY_TIMEOUT))
        try:
            busy_timeout = float(text)
        except ValueError:
            raise ConfigurationError(f"busy_timeout must be seconds, not {text!r}") from None
    if not busy_timeout >= 0:
        raise ConfigurationError(f"busy_timeout must be seconds >= 0, not {busy_timeout!r}")
    chosen = synchronous or query.get("synchronous", "full")
    pragmas = connection_pragmas(chosen)  # type: ignore[arg-type]
    return path, connect_kwargs(busy_timeout), pragmas, saver_options


def connection_pragmas(synchronous: Synchronous) -> list[str]:
    """Per-connection settings.

    ``synchronous="full"`` (the default, as the official SqliteSaver) syncs the
    WAL on every commit; ``"normal"`` is faster and cannot corrupt the file, but a
    power loss may drop the last transactions.
    """
    if synchronous not in ("full", "normal"):
        raise ConfigurationError(f"synchronous must be 'full' or 'normal', not {synchronous!r}")
    return [f"PRAGMA synchronous={synchronous.upper()}"]


JOURNAL_MODE = "PRAGMA journal_mode=WAL"
"""Readers never block the writer; set by `setup()`, kept by the file."""


def journal_mode_retries() -> list[float | None]:
    """Seconds to sleep between attempts at `JOURNAL_MODE`, ``None`` after the last.

    Switching a fresh file to WAL needs it to itself, and SQLite answers
    "database is locked" at once, without its busy handler, when another
    process holds it at that moment (several processes starting on one new
    file). So `setup()` retries for up to `DEFAULT_BUSY_TIMEOUT` seconds.
    """
    delays: list[float | None] = []
    delay, waited = 0.005, 0.0
    while waited < DEFAULT_BUSY_TIMEOUT:
        delays.append(delay)
        waited += delay
        delay = min(delay * 2, 0.1)
    return [*delays, None]


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused because another connection holds the file."""
    return "locked" in str(exc) or "busy" in str(exc)


def retry_after(exc: sqlite3.OperationalError, delay: float | None) -> float:
    """The pause before the next attempt at `JOURNAL_MODE` (see `journal_mode_retries`).

    Raises:
        sqlite3.OperationalError: ``exc`` again, unless the file was busy and
            attempts are left.
    """
    if delay is None or not is_busy(exc):
        raise exc
    return delay

BEGIN = "BEGIN IMMEDIATE"


def refuse_open_transaction(in_transaction: bool) -> None:
    """Refuse to run on a connection with a transaction the caller left open.

    Committing it would commit the caller's work; joining it would leave ours
    uncommitted.

    Raises:
        ConfigurationError: When ``in_transaction``.
    """
    if in_transaction:
        raise ConfigurationError(
            "the SQLite connection has an open transaction: commit or roll it back before "
            "calling the saver, or open the connection with isolation_level=None"
        )


def execute(conn: sqlite3.Connection, query: Query) -> Rows:
    """One statement's rows."""
    return conn.execute(query.sql, query.params).fetchall()


class CancelledWrite(Exception):
    """Raised in `drive` when the caller was cancelled before the commit: rolled back."""


def drive(conn: sqlite3.Connection, turn: Turn[R], transaction: bool,
          cancelled: threading.Event | None = None) -> R:
    """Drive a started plan (``Turn(plan)``: its encoding done, by the caller) on ``conn``;
    a write in one ``BEGIN IMMEDIATE`` transaction, committed, or rolled back on any error,
    so it is atomic.

    Both savers call it: the sync one under its lock, the async one as one call in
    aiosqlite's thread (one hop for the whole plan, not one per statement). The async
    saver starts the plan on its event loop first, so values are serialised there, never
    while a graph's nodes run (they may change them in place). ``cancelled`` is set when
    the async caller was cancelled: a write not yet committed is then rolled back.

    Raises:
        ConfigurationError: The connection has a transaction the caller left open.
        CancelledWrite: ``cancelled`` was set before the commit (nothing is stored).
    """
    refuse_open_transaction(conn.in_transaction)
    try:
        if transaction:
            conn.execute(BEGIN)
        result = finish(turn, lambda query: execute(conn, query))
        if cancelled is not None and cancelled.is_set():
            raise CancelledWrite("the caller was cancelled before the commit")
        if conn.in_transaction:  # ours, or an implicit one in legacy mode
            conn.commit()
        return result
    except BaseException:
        conn.rollback()  # a no-op when nothing is open
        raise


def sqlite_errors(path: str | None = None) -> AbstractContextManager[None]:
    """Translate ``sqlite3`` errors into `BackendError` (original as ``__cause__``).

    With the ``path`` being opened: where its directory does not exist, the message
    says so (sqlite3 itself only says "unable to open database file").
    """
    def explain(message: str) -> str:
        folder = os.path.dirname(os.path.abspath(path)) if path and path != ":memory:" else ""
        if folder and not os.path.isdir(folder):
            return (f"{message}: cannot create the SQLite database {path!r}: the directory "
                    f"{folder!r} does not exist (no directory to create the file in: create "
                    "it first)")
        return message

    return translate_errors(sqlite3.Error, what="SQLite", clean=explain)


DATABASE_LIST = "PRAGMA database_list"


def main_file(database_list: Any) -> str:
    """The main database's file from ``PRAGMA database_list`` rows; ``""`` in memory."""
    for _seq, schema, path in database_list:
        if schema == "main":
            return str(path or "")
    return ""


BATCH_REST = 0.1
"""Seconds maintenance rests between batches at least: SQLite's busy handler polls a
waiting writer every 100 ms at most, so a shorter rest could starve it."""

"""Counting what a run sends to its store, by patching the client libraries in this process.

Only while `counting` is active (never while timing):

* PostgreSQL: every ``psycopg.Cursor.execute`` / ``AsyncCursor.execute`` is one statement and
  one round trip (the savers and the lock run autocommit statements, no pipeline mode);
  ``Connection.execute`` goes through it, and a pool borrowing or returning a connection
  runs none (the savers' pools have no ``check`` / ``reset``).
* Redis: every ``send_command`` of a redis-py connection (sync and asyncio) is one command and
  one round trip; every ``pack_commands`` is one pipeline, one round trip, counted once with
  the name of each command in it. An ``EVALSHA`` answered ``NOSCRIPT`` counts too; what
  redis-py sends on opening a connection (``HELLO``, ``AUTH``, ``CLIENT SETINFO``,
  ``SELECT``, ``READONLY``) does not: a pool may open one at any time, locked or not.
* SQLite has no server: a run's SQL statements (``set_trace_callback`` on the saver's
  connection) and the lock's ``fcntl.lockf`` system calls are counted, none is a round trip.
"""

from __future__ import annotations

import fcntl
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Tally:
    """Round trips seen, and each call by name (``SQL INSERT``, ``SET``, ``lockf(LOCK_UN)``)."""

    trips: int = 0
    names: Counter[str] = field(default_factory=Counter)

    def add(self, name: str, trip: bool = True) -> None:
        self.names[name] += 1
        self.trips += trip

    def snapshot(self) -> Tally:
        return Tally(self.trips, Counter(self.names))

    def since(self, before: Tally) -> Tally:
        names = Counter(self.names)
        names.subtract(before.names)
        return Tally(self.trips - before.trips, +names)


def pg_label(query: Any) -> str:
    """A statement's name: the ``pg_*`` function it calls (the lock's), else its first words."""
    text = query.decode() if isinstance(query, bytes) else query if isinstance(query, str) \
        else repr(query)
    found = re.search(r"\bpg_\w+", text)
    return found.group(0) if found else " ".join(text.split())[:48]


def redis_label(name: Any) -> str:
    return (name.decode() if isinstance(name, bytes) else str(name)).upper()


CONNECTION_SETUP = {"HELLO", "AUTH", "CLIENT", "SELECT", "READONLY"}
"""Commands redis-py's ``on_connect`` sends; connection set-up, not a run's traffic."""


def _patch(stack: ExitStack, owner: Any, attr: str, wrap: Callable[[Any], Any]) -> None:
    original = getattr(owner, attr)
    setattr(owner, attr, wrap(original))
    stack.callback(setattr, owner, attr, original)


def _patch_postgres(stack: ExitStack, tally: Tally) -> None:
    import psycopg

    def sync(original: Any) -> Any:
        def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            tally.add(pg_label(query))
            return original(self, query, *args, **kwargs)
        return execute

    def asyn(original: Any) -> Any:
        async def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            tally.add(pg_label(query))
            return await original(self, query, *args, **kwargs)
        return execute

    _patch(stack, psycopg.Cursor, "execute", sync)
    _patch(stack, psycopg.AsyncCursor, "execute", asyn)


def _patch_redis(stack: ExitStack, tally: Tally) -> None:
    import redis.asyncio.connection as aconnection
    import redis.connection as connection

    def send(original: Any) -> Any:
        def send_command(self: Any, *args: Any, **kwargs: Any) -> Any:
            if redis_label(args[0]) not in CONNECTION_SETUP:
                tally.add(redis_label(args[0]))
            return original(self, *args, **kwargs)
        return send_command

    def asend(original: Any) -> Any:
        async def send_command(self: Any, *args: Any, **kwargs: Any) -> Any:
            if redis_label(args[0]) not in CONNECTION_SETUP:
                tally.add(redis_label(args[0]))
            return await original(self, *args, **kwargs)
        return send_command

    def pipeline(original: Any) -> Any:
        def pack_commands(self: Any, commands: Any) -> Any:
            commands = list(commands)
            tally.trips += 1
            for command in commands:
                tally.add(redis_label(command[0]), trip=False)
            return original(self, commands)
        return pack_commands

    _patch(stack, connection.AbstractConnection, "send_command", send)
    _patch(stack, connection.AbstractConnection, "pack_commands", pipeline)
    _patch(stack, aconnection.AbstractConnection, "send_command", asend)
    _patch(stack, aconnection.AbstractConnection, "pack_commands", pipeline)


def _patch_lockf(stack: ExitStack, tally: Tally) -> None:
    def wrap(original: Any) -> Any:
        def lockf(fd: Any, cmd: int, *args: Any) -> Any:
            tally.add("lockf(LOCK_UN)" if cmd == fcntl.LOCK_UN else "lockf(LOCK_EX|LOCK_NB)",
                      trip=False)
            return original(fd, cmd, *args)
        return lockf

    _patch(stack, fcntl, "lockf", wrap)


@contextmanager
def counting(backend: str) -> Iterator[Tally]:
    """Count what this process sends to ``backend``'s store while the block runs (SQLite:
    the lock's system calls; its statements are counted by `trace_sqlite`)."""
    tally = Tally()
    with ExitStack() as stack:
        {"postgres": _patch_postgres, "redis": _patch_redis,
         "sqlite": _patch_lockf}[backend](stack, tally)
        yield tally


def sqlite_tracer(tally: Tally) -> Callable[[str], None]:
    """A ``set_trace_callback`` callback counting each SQL statement by its first word."""
    def trace(statement: str) -> None:
        words = statement.split(None, 1)
        tally.add(f"SQL {words[0].upper() if words else '?'}", trip=False)
    return trace

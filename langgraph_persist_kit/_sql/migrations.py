"""Numbered, append-only schema migrations and the plan that applies them.

Owns: finding migration files and deciding which to apply.

A backend keeps its migrations as ``migrations/NNNN_name.sql`` files. `setup()`
runs `migrate` inside one transaction that the backend makes exclusive
(SQLite ``BEGIN IMMEDIATE``, a Postgres advisory lock), so concurrent
``setup()`` calls from several processes apply each migration exactly once,
each in the same transaction as its record in the version table.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.resources import files

from langgraph_persist_kit._core.plan import Query, SqlPlan
from langgraph_persist_kit.errors import SchemaVersionError

_FILENAME = re.compile(r"^(\d{4})_(\w+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def load_migrations(package: str, split: Callable[[str], list[str]]) -> list[Migration]:
    """Read ``package``'s migration files in version order.

    Args:
        package: The dotted package holding the ``.sql`` files.
        split: Turns one file's text into the statements to execute.
    """
    found = []
    for entry in files(package).iterdir():
        match = _FILENAME.match(entry.name)
        if match:
            text = entry.read_text(encoding="utf-8")
            found.append(Migration(int(match[1]), match[2], tuple(split(text))))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations of {package} are not numbered 1..n: {versions}")
    return found


def refuse_newer(applied: set[int], migrations: list[Migration]) -> None:
    """Raise `SchemaVersionError` when the store records a version this code does not know."""
    newest_known = migrations[-1].version
    if applied and max(applied) > newest_known:
        raise SchemaVersionError(
            f"the store is at schema version {max(applied)}, but this version of "
            f"langgraph-persist-kit knows only up to {newest_known}: upgrade the package"
        )


def migrate(migrations: list[Migration], queries: Mapping[str, str]) -> SqlPlan[int]:
    """Apply the migrations not yet recorded; return how many were applied.

    Uses the queries ``create_migrations_table``, ``select_migrations`` and
    ``insert_migration`` of the backend.

    Raises:
        SchemaVersionError: The store records a version newer than this code knows.
    """
    yield Query(queries["create_migrations_table"])
    rows = yield Query(queries["select_migrations"])
    applied = {int(row[0]) for row in rows}
    refuse_newer(applied, migrations)
    count = 0
    for migration in migrations:
        if migration.version in applied:
            continue
        for statement in migration.statements:
            yield Query(statement)
        yield Query(
            queries["insert_migration"], (migration.version, migration.name, time.time())
        )
        count += 1
    return count

"""Counting a PostgreSQL saver's round trips (test_postgres_storage.py, test_sessions.py)."""

from __future__ import annotations

from typing import Any

import psycopg


class CountingCursor(psycopg.Cursor):
    executed = 0

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        CountingCursor.executed += 1
        return super().execute(*args, **kwargs)


def count_round_trips(action: Any) -> int:
    CountingCursor.executed = 0
    action()
    return CountingCursor.executed

"""Named SQL blocks, read from a backend's ``queries.sql`` at import.

Owns: the format of ``queries.sql``.

A block starts with a line ``-- name --``, then one or more ``--`` lines saying
what it does, then the statement::

    -- insert_checkpoint --
    -- One checkpoint row; a re-put of the same id replaces it.
    INSERT OR REPLACE INTO checkpoints ...
"""

from __future__ import annotations

import re
from importlib.resources import files

_BLOCK = re.compile(r"^-- (\w+) --$", re.MULTILINE)


def load_queries(package: str, filename: str = "queries.sql") -> dict[str, str]:
    """Parse ``package/filename`` into ``{name: sql}``."""
    text = files(package).joinpath(filename).read_text(encoding="utf-8")
    parts = _BLOCK.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.strip().splitlines() if not line.startswith("--")]
        sql = "\n".join(lines).strip().rstrip(";")
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice in {package}/{filename}")
        queries[name] = sql
    return queries

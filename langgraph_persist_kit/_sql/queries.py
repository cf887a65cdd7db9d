"""Named SQL blocks, read from a backend's ``queries.sql`` and ``upkeep.sql`` at import.

Owns: the format of those files (and of Redis's ``scripts.lua``).

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


def load_queries(package: str, *filenames: str) -> dict[str, str]:
    """Parse ``package/<filename>`` for each of ``filenames`` (default ``queries.sql``
    and ``upkeep.sql``) into one ``{name: sql}``.

    Raises:
        ValueError: When a name is defined twice, in one file or across them.
    """
    queries: dict[str, str] = {}
    for filename in filenames or ("queries.sql", "upkeep.sql"):
        text = files(package).joinpath(filename).read_text(encoding="utf-8")
        parts = _BLOCK.split(text)
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            lines = [line for line in body.strip().splitlines() if not line.startswith("--")]
            if name in queries:
                raise ValueError(f"query {name!r} is defined twice in {package} ({filename})")
            queries[name] = "\n".join(lines).strip().rstrip(";")
    return queries

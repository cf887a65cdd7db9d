"""Reading store URLs.

Owns: what each backend accepts as ``conn`` / URL; depends on: `errors`.
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote, urlsplit, urlunsplit

from langgraph_persist_kit.errors import ConfigurationError

SQLITE_SCHEME = "sqlite://"


def backend_of(url: str) -> str:
    """``"sqlite"``, ``"postgres"`` or ``"redis"`` for a store URL.

    Raises:
        ConfigurationError: For a URL of no known backend.
    """
    lowered = url.lower()
    if lowered.startswith(SQLITE_SCHEME):
        return "sqlite"
    if lowered.startswith(("postgresql://", "postgres://")):
        return "postgres"
    if lowered.startswith(("redis://", "rediss://")):
        return "redis"
    raise ConfigurationError(
        f"unknown store URL {url!r}: use sqlite:///relative.db, sqlite:////absolute.db, "
        "postgresql://user@host/db, redis://host:6379/0 or rediss://..."
    )


def sqlite_path(conn: str | os.PathLike[str]) -> str:
    """The file path (or ``":memory:"``) that a SQLite ``conn`` names.

    Accepts a ``pathlib.Path``, ``"agents.db"``, ``":memory:"``, ``"sqlite:///relative.db"``,
    ``"sqlite:////absolute.db"`` and ``"sqlite:///:memory:"``.

    Raises:
        ConfigurationError: For another scheme or an empty path.
    """
    if isinstance(conn, os.PathLike):
        conn = os.fspath(conn)
    if not isinstance(conn, str):
        raise ConfigurationError(f"a SQLite conn must be a path or URL string, not {conn!r}")
    if "://" in conn:
        if not conn.lower().startswith(SQLITE_SCHEME + "/"):
            raise ConfigurationError(
                f"{conn!r} is not a SQLite URL: use sqlite:///relative.db or sqlite:////abs.db"
            )
        conn = conn[len(SQLITE_SCHEME) + 1 :]
    if not conn:
        raise ConfigurationError("the SQLite URL names no file: use sqlite:///agents.db")
    return conn


def take_query_param(url: str, name: str) -> tuple[str, str | None]:
    """Take one of our own query parameters out of a URL (drivers would reject it).

    ``postgresql://host/db?schema=tenant_a&sslmode=require`` with ``"schema"``
    gives ``("postgresql://host/db?sslmode=require", "tenant_a")``.
    """
    parts = urlsplit(url)
    items = parts.query.split("&") if parts.query else []
    ours = [item for item in items if item.split("=", 1)[0] == name]
    if not ours:
        return url, None  # untouched: other parameters keep their exact encoding
    rest = "&".join(item for item in items if item not in ours)
    value = unquote(ours[-1].split("=", 1)[1] if "=" in ours[-1] else "")
    return urlunsplit(parts._replace(query=rest)), value


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)

"""The official LangGraph savers' stores, named by URL, so threads move in and out.

Owns: the ``langgraph-*`` URL schemes and `official_saver_from_url`, which opens the
official sync saver of a store. ``persist-kit copy`` takes these URLs on either side;
in Python, pass the saver to `copy_threads`. README, "Switching from the official
savers".

- ``langgraph-sqlite:///relative.db``, ``langgraph-sqlite:////abs.db``: ``SqliteSaver``
  (package ``langgraph-checkpoint-sqlite``);
- ``langgraph-postgres://user@host/db`` (or ``langgraph-postgresql://``):
  ``PostgresSaver`` (``langgraph-checkpoint-postgres``);
- ``langgraph-plainredis://host:6379/0?prefix=lg`` (TLS: ``langgraph-plainrediss://``):
  ``RedisSaver`` (``langgraph-checkpoint-plainredis``).

Everything after the ``langgraph-`` prefix is the URL the official saver takes, except
``prefix`` (plainredis's key prefix, default ``lg``).
"""

from __future__ import annotations

import importlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.base import SerializerProtocol

from langgraph_persist_kit._core.urls import redact, scrub, sqlite_path, take_query_param
from langgraph_persist_kit.errors import ConfigurationError, translate_errors

__all__ = ["OFFICIAL_SCHEMES", "is_official_url", "official_saver_from_url"]

PREFIX = "langgraph-"
OFFICIAL_SCHEMES = {  # scheme -> (the URL's scheme for the official saver, its package)
    "langgraph-sqlite": ("sqlite", "langgraph-checkpoint-sqlite"),
    "langgraph-postgres": ("postgresql", "langgraph-checkpoint-postgres"),
    "langgraph-postgresql": ("postgresql", "langgraph-checkpoint-postgres"),
    "langgraph-plainredis": ("redis", "langgraph-checkpoint-plainredis"),
    "langgraph-plainrediss": ("rediss", "langgraph-checkpoint-plainredis"),
}


def is_official_url(url: object) -> bool:
    """Whether ``url`` names an official saver's store (a ``langgraph-*`` scheme)."""
    return isinstance(url, str) and url.lower().startswith(PREFIX) and "://" in url


@contextmanager
def official_saver_from_url(url: str, *, serde: SerializerProtocol | None = None,
                            create: bool = False) -> Iterator[BaseCheckpointSaver]:
    """The official sync saver of the store ``url`` names, closed afterwards.

    Args:
        url: A ``langgraph-*`` URL (see the module's list).
        serde: The saver's serializer (``None``: the saver's default). The command
            line passes a strict one, so nothing read builds arbitrary objects.
        create: Whether a SQLite file that does not exist may be created (a copy's
            target); otherwise it is refused, so a typo leaves no empty file.

    Yields:
        The saver. Only a target (``create``) is set up (the official saver's
        ``setup()``: its tables created if missing); a source is only read, so a
        read-only role works and a wrong database is not given tables.

    Raises:
        ConfigurationError: For an unknown ``langgraph-*`` scheme, a SQLite file that
            does not exist (unless ``create``), or when the official saver's package
            is not installed (the message names it).
        BackendError: For a driver error while the store is open (secrets masked).
    """
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in OFFICIAL_SCHEMES:
        raise ConfigurationError(
            f"unknown official store URL {redact(url)!r}: use "
            + ", ".join(f"{name}://..." for name in OFFICIAL_SCHEMES)
        )
    target, package = OFFICIAL_SCHEMES[scheme.lower()]
    inner = f"{target}://{rest}"
    errors = translate_errors(_driver_errors(target), what=f"the official store {redact(url)}",
                              clean=lambda message: scrub(message, url))
    with errors, _open(target, package, url, inner, create) as saver:
        if serde is not None:
            saver.serde = serde
        if create and hasattr(saver, "setup"):  # a copy's target: its tables (not plainredis)
            saver.setup()
        yield saver


def _open(target: str, package: str, url: str, inner: str,
          create: bool) -> AbstractContextManager[Any]:
    """The official saver's own opener (nothing set up, nothing created)."""
    if target == "sqlite":
        path = sqlite_path(inner)
        if not create and path != ":memory:" and not os.path.exists(path):
            raise ConfigurationError(f"no SQLite database at {path!r} (from {redact(url)!r})")
        return _load(package, "langgraph.checkpoint.sqlite", "SqliteSaver").from_conn_string(path)
    if target == "postgresql":
        if take_query_param(inner, "schema")[1] is not None:
            raise ConfigurationError(
                "the official PostgreSQL saver has no schema option: name the schema in the "
                "connection's search_path instead, ?options=-csearch_path%3DNAME"
            )
        saver_class = _load(package, "langgraph.checkpoint.postgres", "PostgresSaver")
        return saver_class.from_conn_string(inner)
    return _plainredis(package, url, inner)


@contextmanager
def _plainredis(package: str, url: str, inner: str) -> Iterator[Any]:
    saver_class = _load(package, "langgraph_checkpoint_plainredis", "RedisSaver")
    inner, prefix = take_query_param(inner, "prefix")
    try:
        saver = saver_class(url=inner, **({"prefix": prefix} if prefix else {}))
        saver.client.ping()  # it connects lazily: fail here, before a copy opens its target
    except (ValueError, TypeError) as exc:  # redis-py's reading of the URL
        raise ConfigurationError(
            f"not a valid plainredis URL {redact(url)!r}: {scrub(str(exc), url)}"
        ) from None
    try:
        yield saver
    finally:
        saver.close()


def _driver_errors(target: str) -> tuple[type[BaseException], ...]:
    """The driver's errors for `translate_errors` (drivers the official savers use)."""
    if target == "sqlite":
        return (sqlite3.Error,)
    module = "psycopg" if target == "postgresql" else "redis"
    try:
        found = importlib.import_module(module)
    except ImportError:
        return ()
    return (found.Error if module == "psycopg" else found.RedisError,)


def _load(package: str, module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise ConfigurationError(
            f"reading and writing this store needs the official saver: pip install {package}"
        ) from exc

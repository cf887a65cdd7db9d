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
from contextlib import contextmanager
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
    """The official sync saver of the store ``url`` names, set up, closed afterwards.

    Args:
        url: A ``langgraph-*`` URL (see the module's list).
        serde: The saver's serializer (``None``: the saver's default). The command
            line passes a strict one, so nothing read builds arbitrary objects.
        create: Whether a SQLite file that does not exist may be created (a copy's
            target); otherwise it is refused, so a typo leaves no empty file.

    Yields:
        The saver, its tables created where the official saver's ``setup()`` does so.

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
    with errors, _open(target, package, inner, serde, create) as saver:
        yield saver


@contextmanager
def _open(target: str, package: str, inner: str, serde: SerializerProtocol | None,
          create: bool) -> Iterator[BaseCheckpointSaver]:
    if target == "sqlite":
        with _sqlite(inner, serde, create) as saver:
            yield saver
    elif target == "postgresql":
        saver_class = _load(package, "langgraph.checkpoint.postgres", "PostgresSaver")
        with saver_class.from_conn_string(inner) as saver:
            if serde is not None:
                saver.serde = serde
            saver.setup()
            yield saver
    else:
        saver_class = _load(package, "langgraph_checkpoint_plainredis", "RedisSaver")
        inner, prefix = take_query_param(inner, "prefix")
        saver = saver_class(url=inner, serde=serde, **({"prefix": prefix} if prefix else {}))
        try:
            yield saver
        finally:
            saver.client.close()


@contextmanager
def _sqlite(url: str, serde: SerializerProtocol | None,
            create: bool) -> Iterator[BaseCheckpointSaver]:
    path = sqlite_path(url)
    if not create and path != ":memory:" and not os.path.exists(path):
        raise ConfigurationError(f"no SQLite database at {path!r} (from {redact(url)!r})")
    saver_class = _load("langgraph-checkpoint-sqlite", "langgraph.checkpoint.sqlite",
                        "SqliteSaver")
    with saver_class.from_conn_string(path) as saver:
        if serde is not None:
            saver.serde = serde
        saver.setup()
        yield saver


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

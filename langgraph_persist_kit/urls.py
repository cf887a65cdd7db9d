"""`saver_from_url` / `async_saver_from_url`: a saver for whatever store a URL names.

Owns: dispatching URLs to backends.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from langgraph_persist_kit._core.urls import backend_of


def saver_from_url(url: str, **options: Any) -> AbstractContextManager[BaseCheckpointSaver]:
    """The sync saver's ``from_conn_string(url, **options)`` for the backend ``url`` names.

    Args:
        url: ``sqlite:///relative.db``, ``sqlite:////absolute.db``,
            ``postgresql://user:password@host:5432/db``, ``redis://host:6379/0``
            or ``rediss://...`` (standalone or cluster).
        **options: Passed to ``from_conn_string`` (e.g. ``serde=``,
            ``append_deltas=False``); each backend's own options may also be in
            ``url``'s query (``?append_deltas=false``), a keyword winning.

    Returns:
        A context manager yielding a ready saver.

    Raises:
        ConfigurationError: For an unknown URL.
    """
    backend = backend_of(url)
    if backend == "sqlite":
        from langgraph_persist_kit.sqlite import SqliteSaver

        return SqliteSaver.from_conn_string(url, **options)
    if backend == "postgres":
        from langgraph_persist_kit.postgres import PostgresSaver

        return PostgresSaver.from_conn_string(url, **options)
    from langgraph_persist_kit.redis import RedisSaver

    return RedisSaver.from_conn_string(url, **options)


def async_saver_from_url(
    url: str, **options: Any
) -> AbstractAsyncContextManager[BaseCheckpointSaver]:
    """The async saver's ``from_conn_string(url, **options)``; see `saver_from_url`."""
    backend = backend_of(url)
    if backend == "sqlite":
        from langgraph_persist_kit.sqlite import AsyncSqliteSaver

        return AsyncSqliteSaver.from_conn_string(url, **options)
    if backend == "postgres":
        from langgraph_persist_kit.postgres import AsyncPostgresSaver

        return AsyncPostgresSaver.from_conn_string(url, **options)
    from langgraph_persist_kit.redis import AsyncRedisSaver

    return AsyncRedisSaver.from_conn_string(url, **options)

"""The LangGraph Agent Server's checkpointer: ``langgraph dev``, ``langgraph up`` and
LangSmith deployments name it in ``langgraph.json``::

    "checkpointer": {"path": "langgraph_persist_kit.server.checkpointer"}

Owns: `checkpointer` (the async saver for the store URL in ``PERSIST_KIT_URL``) and
`server_serde` (the server's serializer, so ``langgraph.json``'s ``serde`` settings
apply). README, "Agent Server".
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.base import SerializerProtocol

from langgraph_persist_kit._core.urls import redact
from langgraph_persist_kit.errors import ConfigurationError, PersistKitError
from langgraph_persist_kit.urls import async_saver_from_url

__all__ = ["URL_VARIABLE", "checkpointer", "server_serde"]

URL_VARIABLE = "PERSIST_KIT_URL"
"""The environment variable holding the store's URL, options in its query."""

logger = logging.getLogger(__name__)


def server_serde() -> SerializerProtocol | None:
    """The Agent Server's serializer (``langgraph_api.serde.Serializer``), built with the
    ``serde`` settings of ``langgraph.json`` (``allowed_json_modules``,
    ``pickle_fallback``); ``None`` where ``langgraph_api`` is not installed.

    The server leaves a custom checkpointer's serializer as it is, so the checkpointer
    must build this one itself. Outside a server (where ``Serializer()`` can fail for
    want of the server's settings) a warning is logged and ``None`` returned: the
    saver then uses LangGraph's default serializer.
    """
    try:
        from langgraph_api.serde import Serializer
    except ImportError:
        return None
    try:
        return Serializer()
    except Exception as exc:  # the server's settings module refuses to load
        logger.warning("langgraph_api.serde.Serializer() failed (%s); the checkpointer "
                       "uses LangGraph's default serializer", type(exc).__name__)
        return None


@asynccontextmanager
async def checkpointer() -> AsyncIterator[BaseCheckpointSaver]:
    """The async saver for the store at ``$PERSIST_KIT_URL``, set up, closed on exit.

    The URL is any that `async_saver_from_url` takes, options as query parameters:
    ``sqlite:////data/checkpoints.db``,
    ``postgresql://user:password@host:5432/db?schema=agents&pool_max_size=20``,
    ``redis://host:6379/0?key_prefix=agents``. The serializer is `server_serde`'s
    where ``langgraph_api`` is importable. The server enters this once at startup
    and leaves it at shutdown.

    Yields:
        The ready async saver (``AsyncSqliteSaver``, ``AsyncPostgresSaver`` or
        ``AsyncRedisSaver``).

    Raises:
        ConfigurationError: When ``PERSIST_KIT_URL`` is unset or empty, or names no
            backend or an unknown option (the message names the variable, with any
            password masked).
        BackendError: When the store cannot be opened or set up.
    """
    url = os.environ.get(URL_VARIABLE, "").strip()
    if not url:
        raise ConfigurationError(
            f"{URL_VARIABLE} is not set: set it to the store's URL for the Agent Server's "
            "checkpointer, e.g. sqlite:////data/checkpoints.db, "
            "postgresql://user@host:5432/db or redis://host:6379/0"
        )
    serde = server_serde()
    options = {} if serde is None else {"serde": serde}
    async with AsyncExitStack() as stack:
        try:
            saver = await stack.enter_async_context(async_saver_from_url(url, **options))
        except PersistKitError as exc:  # the message names the URL, masked, where it matters
            raise type(exc)(f"{URL_VARIABLE}: {exc}") from exc
        logger.info("persist-kit checkpointer: %s at %s, serializer %s.%s", type(saver).__name__,
                    redact(url), type(saver.serde).__module__, type(saver.serde).__qualname__)
        yield saver

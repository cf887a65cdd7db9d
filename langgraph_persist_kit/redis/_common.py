"""What both Redis savers share: clients, plans, errors, and sending requests.

Owns: the saver's state on a client, the error boundary, and how a `Batch` is sent (a
pipeline, or one call at a time where a cluster pipeline cannot carry scripts).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import redis

from langgraph_persist_kit._core.urls import redact, scrub
from langgraph_persist_kit.errors import ConfigurationError, translate_errors
from langgraph_persist_kit.redis._keys import DEFAULT_PREFIX
from langgraph_persist_kit.redis._options import POOL_EXHAUSTED
from langgraph_persist_kit.redis._plans import RedisPlans
from langgraph_persist_kit.redis._pools import is_cluster
from langgraph_persist_kit.redis._protocol import SCRIPTS, Batch, Script


def make_plans(key_prefix: str, ttl: timedelta | float | None,
               refresh_on_read: bool) -> RedisPlans:
    """Plans for the saver options.

    Raises:
        ConfigurationError: For a bad prefix or a TTL that is not positive.
    """
    ttl_ms = 0
    if ttl is not None:
        seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
        if not seconds > 0:
            raise ConfigurationError(f"ttl must be a positive timedelta or seconds, not {ttl!r}")
        ttl_ms = max(1, round(seconds * 1000))
    return RedisPlans(key_prefix or DEFAULT_PREFIX, ttl_ms, refresh_on_read)


def check_client(client: Any) -> None:
    """Refuse clients the saver cannot use.

    Raises:
        ConfigurationError: For something that is not a redis-py client, or
            one that decodes replies to ``str`` (the saver stores bytes).
    """
    if not hasattr(client, "register_script"):
        raise ConfigurationError(
            f"expected a redis-py client (redis.Redis, redis.asyncio.Redis or a cluster "
            f"client), not {type(client).__name__}"
        )
    if client.get_connection_kwargs().get("decode_responses"):
        raise ConfigurationError(
            "the Redis client decodes responses: open it with decode_responses=False"
        )


class RedisClientMixin:
    """The state both Redis savers keep: the client, the plans, the registered scripts."""

    plans: Any  # RedisPlans, a StorePlans for the saver methods

    def _use_client(self, client: Any, key_prefix: str, ttl: timedelta | float | None,
                    refresh_on_read: bool) -> None:
        check_client(client)
        self.client = client
        self.plans = make_plans(key_prefix, ttl, refresh_on_read)
        self.scripts = {name: client.register_script(source) for name, source in SCRIPTS.items()}

    def _fill_pipeline(self, batch: Batch) -> Any:
        """A pipeline holding ``batch``; scripts go by SHA (no SCRIPT EXISTS round trip)."""
        pipe = self.client.pipeline(transaction=False)
        for request in batch.requests:
            if isinstance(request, Script):
                script = self.scripts[request.name]
                pipe.evalsha(script.sha, len(request.keys), *request.keys, *request.args)
            else:
                pipe.execute_command(*request.args)
        return pipe


def cluster_enabled(info: dict[str, Any]) -> bool:
    """Whether ``INFO cluster`` says the server is a cluster node."""
    return bool(int(info.get("cluster_enabled", 0)))


def redis_errors(url: str | None = None) -> Any:
    """Translate redis-py errors into `BackendError` / `BackendUnavailableError`."""
    return translate_errors(
        redis.RedisError,
        what="Redis" + (f" at {redact(url)}" if url else ""),
        unavailable=lambda exc: isinstance(exc, (redis.ConnectionError, redis.TimeoutError)),
        clean=lambda message: _explain(scrub(message, url)),
    )


def _explain(message: str) -> str:
    """redis-py's message, or what to do when the pool had no free connection in time."""
    if message == POOL_EXHAUSTED:
        return ("no free connection within pool_timeout (every one of pool_max_size was busy); "
                "raise pool_max_size or pool_timeout")
    return message


def batches_pipeline(client: Any, batch: Batch) -> bool:
    """Whether a batch can go as one pipeline: a cluster pipeline refuses scripts."""
    return not (is_cluster(client) and any(isinstance(r, Script) for r in batch.requests))


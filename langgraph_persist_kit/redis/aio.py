"""`AsyncRedisSaver`: the asyncio Redis checkpoint saver.

Owns: running the Redis plans on a ``redis.asyncio`` client (standalone or cluster).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import redis
import redis.asyncio as aredis
from langgraph.checkpoint.serde.base import SerializerProtocol
from redis.asyncio.cluster import RedisCluster

from langgraph_persist_kit._core.aio import AsyncSaverMethods
from langgraph_persist_kit._core.modes import AsyncOnly
from langgraph_persist_kit._core.plan import Listing, Plan, R, aiterate, arun
from langgraph_persist_kit.redis._common import (
    RedisClientMixin,
    batches_pipeline,
    cluster_enabled,
    redis_errors,
)
from langgraph_persist_kit.redis._keys import DEFAULT_PREFIX
from langgraph_persist_kit.redis._lease import AsyncLease
from langgraph_persist_kit.redis._options import driver_configuration_errors, read_settings
from langgraph_persist_kit.redis._pools import (
    apipeline_slot,
    async_cluster_client,
    async_standalone_client,
)
from langgraph_persist_kit.redis._protocol import Batch, Command, Script


class AsyncRedisSaver(AsyncOnly, RedisClientMixin, AsyncSaverMethods):
    """The asyncio twin of `RedisSaver`, for ``graph.ainvoke`` / ``graph.astream``.

    Args:
        client: A ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``
            the caller owns and closes, opened with ``decode_responses=False``.
        serde, key_prefix, ttl, refresh_on_read: As for `RedisSaver`.
        append_deltas, append_cache_bytes: As for `RedisSaver` (appended list items
            stored alone, on by default; bytes of lists remembered, default 64 MiB).

    Raises:
        ConfigurationError: As for `RedisSaver`.
    """

    def __init__(self, client: aredis.Redis | RedisCluster, *,
                 serde: SerializerProtocol | None = None, key_prefix: str = DEFAULT_PREFIX,
                 ttl: timedelta | float | None = None, refresh_on_read: bool = False,
                 append_deltas: bool = True, append_cache_bytes: int | None = None) -> None:
        super().__init__(serde=serde, append_deltas=append_deltas,
                         append_cache_bytes=append_cache_bytes)
        self._use_client(client, key_prefix, ttl, refresh_on_read)

    @classmethod
    @asynccontextmanager
    async def from_conn_string(cls, conn: str, *, serde: SerializerProtocol | None = None,
                               key_prefix: str | None = None, ttl: timedelta | float | None = None,
                               refresh_on_read: bool | None = None,
                               pool_max_size: int | None = None, pool_timeout: float | None = None,
                               append_deltas: bool | None = None,
                               append_cache_bytes: int | None = None,
                               **options: Any) -> AsyncIterator[AsyncRedisSaver]:
        """Connect, check the key space, yield a saver, close the client; see
        `RedisSaver.from_conn_string` (the same options, URL and errors)."""
        settings = read_settings(conn, {
            "key_prefix": key_prefix, "ttl": ttl, "refresh_on_read": refresh_on_read,
            "pool_max_size": pool_max_size, "pool_timeout": pool_timeout,
            "append_deltas": append_deltas, "append_cache_bytes": append_cache_bytes, **options})
        with redis_errors(conn), driver_configuration_errors():
            client: Any = async_standalone_client(settings)
            try:
                if cluster_enabled(await client.info("cluster")):
                    await client.aclose()
                    client = async_cluster_client(settings)
                    await client.initialize()
            except BaseException:
                await client.aclose()
                raise
        try:
            saver = cls(client, serde=serde, key_prefix=settings.key_prefix or DEFAULT_PREFIX,
                        ttl=settings.ttl, refresh_on_read=settings.refresh_on_read,
                        append_deltas=settings.append_deltas,
                        append_cache_bytes=settings.append_cache_bytes)
            await saver.setup()
            yield saver
        finally:
            await client.aclose()

    # --- the driver ---------------------------------------------------------------

    async def _execute(self, request: Any) -> Any:
        if isinstance(request, Script):
            return await self.scripts[request.name](keys=request.keys, args=request.args)
        if isinstance(request, Command):
            return await self.client.execute_command(*request.args)
        assert isinstance(request, Batch)
        if not batches_pipeline(self.client, request):
            return list(await asyncio.gather(*(self._execute(r) for r in request.requests)))
        return await self._pipeline(request)

    async def _pipeline(self, batch: Batch) -> list[Any]:
        """Send a batch as one pipeline. Scripts go by SHA; should the server have
        lost them (a restart, SCRIPT FLUSH), they are loaded and the batch sent
        again: batches are reads and idempotent deletes."""
        for attempt in range(2):
            try:
                async with apipeline_slot(self.client):
                    return list(await self._fill_pipeline(batch).execute())
            except redis.exceptions.NoScriptError:
                if attempt:
                    raise
                for script in self.scripts.values():
                    await self.client.script_load(script.script)
        raise AssertionError("unreachable")

    async def _run(self, make_plan: Callable[[], Plan[R]], *, transaction: bool = False) -> R:
        """Run a plan; every request is atomic on its own (a script or a read)."""
        if not self.is_setup:
            await self.setup()
        with redis_errors():
            return await arun(make_plan(), self._execute)

    def _iterate(self, plan: Listing) -> AsyncIterator[Any]:
        async def execute(request: Any) -> Any:
            if not self.is_setup:
                await self.setup()
            with redis_errors():
                return await self._execute(request)

        return aiterate(plan, execute)

    async def setup(self) -> None:
        """Record the key layout's version; see `RedisSaver.setup`."""
        with redis_errors():
            await arun(self.plans.setup(), self._execute)
        self._setup_done()

    async def athread_lock_handle(self, thread_id: str, *, lease: float) -> AsyncLease:
        """The cross-process lock of one thread; see `RedisSaver.thread_lock_handle`."""
        return AsyncLease(self.client, self.plans.keys.lock_key(thread_id), lease)

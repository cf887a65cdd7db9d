"""The connection pools of the Redis savers: calls wait for a free connection.

Owns: opening clients from `options.Settings`. A standalone client gets redis-py's
blocking pool; a cluster client, whose node pools fail at once when full, gets
`PoolSlots`: at most ``pool_max_size`` calls in flight, each waiting up to
``pool_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any

import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from langgraph_persist_kit.redis._options import POOL_EXHAUSTED, Settings

_holding: ContextVar[bool] = ContextVar("persist_kit_redis_slot", default=False)


class PoolSlots:
    """At most ``size`` calls in flight on one cluster client, a caller waiting up to
    ``timeout`` seconds for a slot.

    redis-py's cluster clients fail at once (``MaxConnectionsError``) when a node's
    pool is full; with a slot per call (one connection per node at most) and
    ``size`` connections per node, a node's pool is never full. A call made while
    holding a slot (redis-py retrying inside a pipeline) takes no second one.
    """

    def __init__(self, size: int, timeout: float) -> None:
        self.timeout = timeout
        self._threads = threading.BoundedSemaphore(size)
        self._size = size
        self._tasks: asyncio.Semaphore | None = None

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold a slot for a sync call.

        Raises:
            redis.ConnectionError: No slot came free within ``timeout``.
        """
        if _holding.get():
            yield
            return
        if not self._threads.acquire(timeout=self.timeout):
            raise redis.ConnectionError(POOL_EXHAUSTED)
        token = _holding.set(True)
        try:
            yield
        finally:
            _holding.reset(token)
            self._threads.release()

    @asynccontextmanager
    async def ahold(self) -> AsyncIterator[None]:
        """Hold a slot for an async call; see `hold`."""
        if _holding.get():
            yield
            return
        if self._tasks is None:
            self._tasks = asyncio.Semaphore(self._size)
        try:
            await asyncio.wait_for(self._tasks.acquire(), self.timeout)
        except asyncio.TimeoutError:
            raise redis.ConnectionError(POOL_EXHAUSTED) from None
        token = _holding.set(True)
        try:
            yield
        finally:
            _holding.reset(token)
            self._tasks.release()


class BoundedRedisCluster(RedisCluster):
    """A sync cluster client whose commands wait for a `PoolSlots` slot."""

    slots: PoolSlots

    def __init__(self, *args: Any, pool_slots: PoolSlots, **kwargs: Any) -> None:
        self.slots = pool_slots  # before redis-py's __init__, which sends commands
        super().__init__(*args, **kwargs)

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        with self.slots.hold():
            return super().execute_command(*args, **kwargs)


class AsyncBoundedRedisCluster(AsyncRedisCluster):
    """An asyncio cluster client whose commands wait for a `PoolSlots` slot."""

    slots: PoolSlots

    def __init__(self, *args: Any, pool_slots: PoolSlots, **kwargs: Any) -> None:
        self.slots = pool_slots  # before redis-py's __init__, which sends commands
        super().__init__(*args, **kwargs)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.slots.ahold():
            return await super().execute_command(*args, **kwargs)


def is_cluster(client: Any) -> bool:
    return isinstance(client, (RedisCluster, AsyncRedisCluster))


def pipeline_slot(client: Any) -> AbstractContextManager[None]:
    """The slot a sync pipeline holds on a bounded cluster client (else nothing)."""
    return client.slots.hold() if isinstance(client, BoundedRedisCluster) else nullcontext()


def apipeline_slot(client: Any) -> Any:
    """The slot an async pipeline holds; see `pipeline_slot`."""
    if isinstance(client, AsyncBoundedRedisCluster):
        return client.slots.ahold()
    return nullcontext()


def standalone_client(settings: Settings) -> redis.Redis:
    """A sync client on a blocking pool of ``pool_max_size`` connections."""
    return redis.Redis.from_pool(settings.pool(redis.BlockingConnectionPool))


def _bounded_cluster(cls: Any, settings: Settings) -> Any:
    slots = PoolSlots(settings.pool_max_size, settings.pool_timeout)
    return cls.from_url(settings.url, pool_slots=slots, **settings.client_options())


def cluster_client(settings: Settings) -> BoundedRedisCluster:
    """A sync cluster client: ``pool_max_size`` connections per node, calls waiting."""
    return _bounded_cluster(BoundedRedisCluster, settings)


def async_standalone_client(settings: Settings) -> aredis.Redis:
    """An asyncio client on a blocking pool; see `standalone_client`."""
    return aredis.Redis.from_pool(settings.pool(aredis.BlockingConnectionPool))


def async_cluster_client(settings: Settings) -> AsyncBoundedRedisCluster:
    """An asyncio cluster client; see `cluster_client`."""
    return _bounded_cluster(AsyncBoundedRedisCluster, settings)

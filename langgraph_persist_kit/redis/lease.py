"""A Redis lock that cannot outlive its holder: a key with a lease, renewed while held.

Owns: taking (``SET NX PX`` with a random token), renewing and releasing
(compare-and-delete) one lock key, sync and async; depends on: redis-py and
`_common` (error translation). Used by `maintenance_lock` and by the thread
locks of `langgraph_persist_kit.concurrency`.

A holder renews its lease every third of it (a daemon thread, or an asyncio
task), so a live holder keeps the lock however long it runs, and a holder
that dies (SIGKILL, power loss) stops renewing: the key expires within one
lease and the next caller gets the lock. Only the token's owner can renew or
delete the key, so a holder whose lease ran out (a process paused longer than
the lease) never removes its successor's lock.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from contextlib import suppress
from typing import Any

import redis

from langgraph_persist_kit._local_locks import holder_name
from langgraph_persist_kit.redis._common import redis_errors

log = logging.getLogger(__name__)

RENEW = """
-- KEYS[1] - the lock key; ARGV[1] - this holder's token; ARGV[2] - the lease in ms
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0
"""

RELEASE = """
-- KEYS[1] - the lock key; ARGV[1] - this holder's token
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("DEL", KEYS[1])
end
return 0
"""


def _holder_of(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value.split(" [")[0] if value else None


class _LeaseState:
    """What both modes share: the key, the token and the lease in milliseconds."""

    def __init__(self, key: bytes | str, lease: float) -> None:
        self.key = key
        self.token = f"{holder_name()} [{uuid.uuid4().hex}]"
        self.lease_ms = max(1, round(lease * 1000))
        self.held = False

    @property
    def interval(self) -> float:
        """Seconds between renewals: a third of the lease, so two may fail in a row."""
        return self.lease_ms / 3000

    def lost(self, why: str) -> None:
        log.warning("lost the lock %r (%s); another holder may take it before this one "
                    "is done", self.key, why)


class Lease(_LeaseState):
    """A leased lock key on a sync client (`redis.Redis` or `RedisCluster`)."""

    def __init__(self, client: Any, key: bytes | str, lease: float) -> None:
        super().__init__(key, lease)
        self.client = client
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free: one ``SET NX PX`` round trip.

        Raises:
            BackendError: Redis failed.
        """
        with redis_errors():
            self.held = bool(self.client.set(self.key, self.token, nx=True, px=self.lease_ms))
        if self.held:
            self._stop.clear()
            self._renewer = threading.Thread(target=self._renew, name="persist-kit lease",
                                             daemon=True)
            self._renewer.start()
        return self.held

    def holder(self) -> str | None:
        """Who holds the lock now, as its holder named itself, if anyone."""
        with redis_errors():
            return _holder_of(self.client.get(self.key))

    def _renew(self) -> None:
        renew = self.client.register_script(RENEW)
        while not self._stop.wait(self.interval):
            try:
                if not renew(keys=[self.key], args=[self.token, self.lease_ms]):
                    return self.lost("its lease ran out")
            except redis.RedisError as exc:  # try again next time: the lease covers two misses
                log.warning("could not renew the lock %r: %s", self.key, exc)

    def release(self) -> None:
        """Stop renewing and delete the key if this holder still owns it: one round trip.

        A failure is logged, not raised: the key then expires within one lease.
        """
        if not self.held:
            return
        self.held = False
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        try:
            self.client.register_script(RELEASE)(keys=[self.key], args=[self.token])
        except redis.RedisError as exc:
            log.warning("could not release the lock %r (it expires within %.1f s): %s",
                        self.key, self.lease_ms / 1000, exc)


class AsyncLease(_LeaseState):
    """A leased lock key on an asyncio client (`redis.asyncio.Redis` or its cluster)."""

    def __init__(self, client: Any, key: bytes | str, lease: float) -> None:
        super().__init__(key, lease)
        self.client = client
        self._renewer: asyncio.Task[None] | None = None

    async def try_acquire(self) -> bool:
        """Take the lock if it is free; see `Lease.try_acquire`."""
        with redis_errors():
            self.held = bool(await self.client.set(self.key, self.token, nx=True,
                                                   px=self.lease_ms))
        if self.held:
            self._renewer = asyncio.get_running_loop().create_task(self._renew())
        return self.held

    async def holder(self) -> str | None:
        """Who holds the lock now; see `Lease.holder`."""
        with redis_errors():
            return _holder_of(await self.client.get(self.key))

    async def _renew(self) -> None:
        renew = self.client.register_script(RENEW)
        while True:
            await asyncio.sleep(self.interval)
            try:
                if not await renew(keys=[self.key], args=[self.token, self.lease_ms]):
                    return self.lost("its lease ran out")
            except redis.RedisError as exc:
                log.warning("could not renew the lock %r: %s", self.key, exc)

    async def release(self) -> None:
        """Stop renewing and delete the key if still owned; see `Lease.release`."""
        if not self.held:
            return
        self.held = False
        if self._renewer is not None:
            self._renewer.cancel()
            with suppress(asyncio.CancelledError):
                await self._renewer
        try:
            await self.client.register_script(RELEASE)(keys=[self.key], args=[self.token])
        except redis.RedisError as exc:
            log.warning("could not release the lock %r (it expires within %.1f s): %s",
                        self.key, self.lease_ms / 1000, exc)

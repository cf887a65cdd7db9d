"""A Redis lock that cannot outlive its holder: a key with a lease, renewed while held.

Owns: taking (``SET NX PX`` with a random token), renewing and releasing (compare-and-
delete) one lock key, sync and async. Used by `maintenance_lock` and by the thread locks
of `langgraph_persist_kit.concurrency`.

A holder renews its lease every third of it (sync: one daemon thread per
process renews every held lease when due; async: a task per lease), so a live
holder keeps the lock however long it runs, and a holder that dies (SIGKILL,
power loss) stops renewing: the key expires within one lease and the next
caller gets the lock. Only the token's owner can renew or
delete the key, so a holder whose lease ran out (a process paused longer than
the lease) never removes its successor's lock.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
import weakref
from contextlib import suppress
from typing import Any

import redis

from langgraph_persist_kit._core.local_locks import holder_name
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


_scripts: weakref.WeakKeyDictionary[Any, tuple[Any, Any]] = weakref.WeakKeyDictionary()


def _scripts_of(client: Any) -> tuple[Any, Any]:
    """``(renew, release)`` registered on ``client`` once (they run by SHA)."""
    if client not in _scripts:
        _scripts[client] = (client.register_script(RENEW), client.register_script(RELEASE))
    return _scripts[client]


class _LeaseState:
    """What both modes share: the key, the token and the lease in milliseconds."""

    def __init__(self, client: Any, key: bytes | str, lease: float) -> None:
        self.client = client
        self.key = key
        self.token = f"{holder_name()} [{uuid.uuid4().hex}]"
        self.lease_ms = max(1, round(lease * 1000))
        self.held = False
        self.renew_script, self.release_script = _scripts_of(client)

    @property
    def interval(self) -> float:
        """Seconds between renewals: a third of the lease, so two may fail in a row."""
        return self.lease_ms / 3000

    def renewed(self, reply: Any, exc: BaseException | None) -> bool:
        """Whether to keep renewing after ``reply`` (or ``exc``) of one renewal."""
        if exc is not None:  # try again next time: the lease covers two misses
            log.warning("could not renew the lock %r: %s", self.key, exc)
            return True
        if not reply and self.held:
            log.warning("lost the lock %r (its lease ran out); another holder may take it "
                        "before this one is done", self.key)
        return bool(reply)

    def released(self, exc: BaseException) -> None:
        log.warning("could not release the lock %r (it expires within %.1f s): %s",
                    self.key, self.lease_ms / 1000, exc)


class _Renewer:
    """One daemon thread per process renewing every held sync lease when it is due."""

    def __init__(self) -> None:
        self._reset()
        if hasattr(os, "register_at_fork"):  # a forked child holds no lease
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._due: dict[Lease, float] = {}
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._next = float("inf")  # when the thread wakes up next

    def add(self, lease: Lease) -> None:
        with self._wake:
            due = self._due[lease] = time.monotonic() + lease.interval
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="persist-kit leases",
                                                daemon=True)
                self._thread.start()
            if due < self._next:  # else it wakes up in time anyway: no thread switch per run
                self._wake.notify()

    def remove(self, lease: Lease) -> None:
        with self._wake:
            self._due.pop(lease, None)

    def _run(self) -> None:
        while True:
            with self._wake:
                now = time.monotonic()
                due = [lease for lease, at in self._due.items() if at <= now]
                if not due:
                    self._next = min(self._due.values(), default=now + 3600)
                    self._wake.wait(self._next - now)
                    self._next = float("inf")
                    continue
                for lease in due:
                    self._due[lease] = now + lease.interval
            for lease in due:  # outside the condition: a renewal is a round trip
                try:
                    keep = lease.renewed(lease.renew_script(
                        keys=[lease.key], args=[lease.token, lease.lease_ms]), None)
                except redis.RedisError as exc:
                    keep = lease.renewed(None, exc)
                if not keep:
                    self.remove(lease)


_RENEWER = _Renewer()


class Lease(_LeaseState):
    """A leased lock key on a sync client (`redis.Redis` or `RedisCluster`)."""

    def try_acquire(self) -> bool:
        """Take the lock if it is free: one ``SET NX PX`` round trip.

        Raises:
            BackendError: Redis failed.
        """
        with redis_errors():
            self.held = bool(self.client.set(self.key, self.token, nx=True, px=self.lease_ms))
        if self.held:
            _RENEWER.add(self)
        return self.held

    def holder(self) -> str | None:
        """Who holds the lock now, as its holder named itself, if anyone."""
        with redis_errors():
            return _holder_of(self.client.get(self.key))

    def release(self) -> None:
        """Stop renewing and delete the key if this holder still owns it: one round trip.

        A failure is logged, not raised: the key then expires within one lease.
        """
        if not self.held:
            return
        self.held = False
        _RENEWER.remove(self)
        try:
            self.release_script(keys=[self.key], args=[self.token])
        except redis.RedisError as exc:
            self.released(exc)


class AsyncLease(_LeaseState):
    """A leased lock key on an asyncio client (`redis.asyncio.Redis` or its cluster)."""

    _renewer: asyncio.Task[None] | None = None

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
        keep = True
        while keep:
            await asyncio.sleep(self.interval)
            try:
                keep = self.renewed(await self.renew_script(
                    keys=[self.key], args=[self.token, self.lease_ms]), None)
            except redis.RedisError as exc:
                keep = self.renewed(None, exc)

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
            await self.release_script(keys=[self.key], args=[self.token])
        except redis.RedisError as exc:
            self.released(exc)

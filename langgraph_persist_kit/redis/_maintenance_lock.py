"""The Redis store's maintenance lock (`maintenance_lock.maintenance_lock` asks for it).

Owns: the key ``<key_prefix>:<name>`` set with ``NX`` and a lease (60 s by default)
that a daemon thread renews every third of it (`lease.Lease`); released by a
compare-and-delete script. A dead holder's key expires within one lease.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from redis.cluster import RedisCluster

from langgraph_persist_kit.errors import ConfigurationError, MaintenanceLockedError
from langgraph_persist_kit.redis._lease import Lease


@contextmanager
def redis_maintenance_lock(client: Any, prefix: str, name: str, lease: float) -> Iterator[None]:
    """Hold the lock ``name`` under ``prefix`` for ``lease`` seconds at a time (renewed),
    or raise `MaintenanceLockedError` naming its holder."""
    if not isinstance(client, (redis.Redis, RedisCluster)):
        raise ConfigurationError(
            f"maintenance_lock needs a sync Redis saver (redis.Redis or RedisCluster), not "
            f"one on {type(client).__name__}"
        )
    held = Lease(client, f"{prefix}:{name}", lease)
    if not held.try_acquire():
        raise MaintenanceLockedError.of(f"Redis key prefix {prefix!r}", held.holder())
    try:
        yield
    finally:
        held.release()

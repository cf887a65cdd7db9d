"""`RedisSaver`: the synchronous Redis checkpoint saver.

Owns: running the Redis plans on a redis-py client (standalone or cluster).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from typing import Any

import redis
from langgraph.checkpoint.serde.base import SerializerProtocol
from redis.cluster import RedisCluster

from langgraph_persist_kit._core.modes import SyncOnly
from langgraph_persist_kit._core.plan import Listing, Plan, R, iterate, run
from langgraph_persist_kit._core.saver import SaverMethods
from langgraph_persist_kit.redis._common import (
    RedisClientMixin,
    batches_pipeline,
    cluster_enabled,
    redis_errors,
)
from langgraph_persist_kit.redis._keys import DEFAULT_PREFIX
from langgraph_persist_kit.redis._lease import Lease
from langgraph_persist_kit.redis._maintenance_lock import redis_maintenance_lock
from langgraph_persist_kit.redis._options import driver_configuration_errors, read_settings
from langgraph_persist_kit.redis._pools import cluster_client, pipeline_slot, standalone_client
from langgraph_persist_kit.redis._protocol import Batch, Command, Script


class RedisSaver(SyncOnly, RedisClientMixin, SaverMethods):
    """A checkpoint saver on Redis (>= 6, or Valkey), standalone or cluster, core
    commands only, for ``graph.invoke`` / ``graph.stream``.

    ``put``, ``put_writes`` and ``get_tuple`` are one Lua script call each: one
    round trip, atomic. Every key of a thread shares one hash tag, so on a
    cluster a thread's operations hit one slot.

    Args:
        client: A ``redis.Redis`` or ``redis.cluster.RedisCluster`` the caller
            owns and closes, opened with ``decode_responses=False``.
        serde: The serializer for checkpoints, channel values and pending
            writes (e.g. ``EncryptedSerializer``); metadata stays plain JSON.
        key_prefix: Every key starts with it (no ``{`` or ``}``); savers with
            different prefixes never see each other's threads.
        ttl: Whole-thread expiry, a ``timedelta`` or seconds: every key of a
            thread expires together, pushed forward on every write. ``None``
            keeps threads until deleted.
        refresh_on_read: Also push the expiry forward when a thread is read
            (``get_tuple``, ``list`` in one thread).
        append_deltas: Store a growing list as the items it appended, on by
            default; ``False`` stores every value whole. As for `SqliteSaver`;
            see ``docs/storage.md``.
        append_cache_bytes: Bytes of list values remembered to spot appends
            (default 64 MiB); as for `SqliteSaver`.

    Raises:
        ConfigurationError: For a client that is not redis-py's, or decodes
            responses; a bad ``key_prefix``, ``ttl``, ``append_deltas`` or
            ``append_cache_bytes``.

    Example:
        ```python
        from datetime import timedelta
        from langgraph_persist_kit.redis import RedisSaver

        with RedisSaver.from_conn_string("redis://localhost:6379/0",
                                         ttl=timedelta(days=7)) as saver:
            graph = builder.compile(checkpointer=saver)
        ```
    """

    def __init__(self, client: redis.Redis | RedisCluster, *,
                 serde: SerializerProtocol | None = None, key_prefix: str = DEFAULT_PREFIX,
                 ttl: timedelta | float | None = None, refresh_on_read: bool = False,
                 append_deltas: bool = True, append_cache_bytes: int | None = None) -> None:
        super().__init__(serde=serde, append_deltas=append_deltas,
                         append_cache_bytes=append_cache_bytes)
        self._use_client(client, key_prefix, ttl, refresh_on_read)

    @classmethod
    @contextmanager
    def from_conn_string(cls, conn: str, *, serde: SerializerProtocol | None = None,
                         key_prefix: str | None = None, ttl: timedelta | float | None = None,
                         refresh_on_read: bool | None = None, pool_max_size: int | None = None,
                         pool_timeout: float | None = None, append_deltas: bool | None = None,
                         append_cache_bytes: int | None = None,
                         **options: Any) -> Iterator[RedisSaver]:
        """Connect, check the key space, yield a saver, close the client.

        A server that runs in cluster mode is opened with a cluster client.
        Every option but ``serde`` may also be given in the URL's query
        (``?key_prefix=tenant_a&pool_max_size=20``); a keyword wins over the
        URL. See docs/redis.md for the whole list.

        Args:
            conn: A ``redis://`` or ``rediss://`` URL; ``/N`` picks a database.
            serde, ttl, refresh_on_read: See the class; ``ttl`` in a URL is seconds.
            key_prefix: See the class; default ``"persist-kit"``.
            pool_max_size: The most connections open at once (on a cluster: per
                node); default 50. A call finding all busy waits for one.
            pool_timeout: Seconds a call waits for a free connection before
                failing; default 30.
            append_deltas: See the class; default ``True`` (in a URL: ``true`` or
                ``false``).
            append_cache_bytes: See the class; bytes, default 64 MiB.
            **options: redis-py connection options: ``db``, ``socket_timeout``,
                ``socket_connect_timeout``, ``socket_keepalive``, ``retry_on_timeout``,
                ``health_check_interval``, ``client_name``, ``protocol``, and for
                ``rediss://`` the ``ssl_*`` options.

        Raises:
            ConfigurationError: For a URL that is not Redis, an unknown option
                (named, in the URL or as a keyword) or a bad value.
            BackendUnavailableError: When the server cannot be reached, or no
                connection came free within ``pool_timeout``.
            SchemaVersionError: The key space was written by a newer version.
        """
        settings = read_settings(conn, {
            "key_prefix": key_prefix, "ttl": ttl, "refresh_on_read": refresh_on_read,
            "pool_max_size": pool_max_size, "pool_timeout": pool_timeout,
            "append_deltas": append_deltas, "append_cache_bytes": append_cache_bytes, **options})
        with redis_errors(conn), driver_configuration_errors():
            client: Any = standalone_client(settings)
            try:
                if cluster_enabled(client.info("cluster")):
                    client.close()
                    client = cluster_client(settings)
            except BaseException:
                client.close()
                raise
        try:
            saver = cls(client, serde=serde, key_prefix=settings.key_prefix or DEFAULT_PREFIX,
                        ttl=settings.ttl, refresh_on_read=settings.refresh_on_read,
                        append_deltas=settings.append_deltas,
                        append_cache_bytes=settings.append_cache_bytes)
            saver.setup()
            yield saver
        finally:
            client.close()

    # --- the driver ---------------------------------------------------------------

    def _execute(self, request: Any) -> Any:
        if isinstance(request, Script):
            return self.scripts[request.name](keys=request.keys, args=request.args)
        if isinstance(request, Command):
            return self.client.execute_command(*request.args)
        assert isinstance(request, Batch)
        if not batches_pipeline(self.client, request):
            return [self._execute(r) for r in request.requests]
        return self._pipeline(request)

    def _pipeline(self, batch: Batch) -> list[Any]:
        """Send a batch as one pipeline. Scripts go by SHA; should the server have
        lost them (a restart, SCRIPT FLUSH), they are loaded and the batch sent
        again: batches are reads and idempotent deletes."""
        for attempt in range(2):
            try:
                with pipeline_slot(self.client):
                    return list(self._fill_pipeline(batch).execute())
            except redis.exceptions.NoScriptError:
                if attempt:
                    raise
                for script in self.scripts.values():
                    self.client.script_load(script.script)
        raise AssertionError("unreachable")

    def _run(self, make_plan: Callable[[], Plan[R]], *, transaction: bool = False) -> R:
        """Run a plan; every request is atomic on its own (a script or a read)."""
        if not self.is_setup:
            self.setup()
        with redis_errors():
            return run(make_plan(), self._execute)

    def _iterate(self, plan: Listing) -> Iterator[Any]:
        if not self.is_setup:
            self.setup()

        def execute(request: Any) -> Any:
            with redis_errors():
                return self._execute(request)

        return iterate(plan, execute)

    def setup(self) -> None:
        """Record the key layout's version under ``key_prefix``; idempotent.

        Redis needs no schema: keys are created by the first write.

        Raises:
            SchemaVersionError: The key space was written by a newer version.
            BackendError: Redis failed.
        """
        with redis_errors():
            run(self.plans.setup(), self._execute)
        self.is_setup = True

    def thread_lock_handle(self, thread_id: str, *, lease: float) -> Lease:
        """The cross-process lock of one thread (see `concurrency.thread_lock`): a key in
        the thread's hash slot, held for ``lease`` seconds and renewed; no I/O yet."""
        return Lease(self.client, self.plans.keys.lock_key(thread_id), lease)

    def maintenance_lock_handle(self, name: str, *, lease: float) -> AbstractContextManager[None]:
        """The store-wide maintenance lock ``name`` under the saver's key prefix (see
        `maintenance_lock`): a key held for ``lease`` seconds and renewed."""
        return redis_maintenance_lock(self.client, self.plans.keys.prefix, name, lease)

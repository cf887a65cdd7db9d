"""Redis savers' options and pools: many concurrent calls on one saver, pool sizes and
timeouts, and options refused by name (URL, keyword, ``saver_from_url``, the CLI).

Each test runs on a real Redis (and the local cluster), in its own key prefix.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from langgraph.checkpoint.conformance.test_utils import (
    generate_checkpoint,
    generate_config,
    generate_metadata,
)
from redis.cluster import RedisCluster

from langgraph_persist_kit import async_saver_from_url, saver_from_url
from langgraph_persist_kit.cli import cli
from langgraph_persist_kit.errors import BackendUnavailableError, ConfigurationError
from langgraph_persist_kit.redis import AsyncRedisSaver, RedisSaver
from tests.helpers.backends import redis_prefix, redis_url

TASKS = 200


def checkpoint_of(n: int) -> tuple[Any, Any, dict[str, str]]:
    """``(checkpoint, metadata, new_versions)`` of a checkpoint holding ``n``."""
    versions = {"n": "00001"}
    return (generate_checkpoint(channel_values={"n": n}, channel_versions=versions),
            generate_metadata(), versions)


def one_turn(saver: Any, n: int) -> int:
    """Put a checkpoint on thread ``n`` and read it back: two round trips."""
    saver.put(generate_config(f"t{n}"), *checkpoint_of(n))
    return saver.get_tuple(generate_config(f"t{n}")).checkpoint["channel_values"]["n"]


async def aone_turn(saver: Any, n: int) -> int:
    await saver.aput(generate_config(f"t{n}"), *checkpoint_of(n))
    latest = await saver.aget_tuple(generate_config(f"t{n}"))
    return latest.checkpoint["channel_values"]["n"]


def connections_named(url: str, name: str) -> int:
    """How many connections called ``name`` the server (the busiest node of a cluster) has."""
    client = redis.Redis.from_url(url)
    try:
        if int(client.info("cluster").get("cluster_enabled", 0)):
            client.close()
            client = redis.RedisCluster.from_url(url)
            per_node = client.client_list(target_nodes=redis.RedisCluster.ALL_NODES)
        else:
            per_node = {"": client.client_list()}
        return max(sum(1 for c in listed if c["name"] == name) for listed in per_node.values())
    finally:
        client.close()


@pytest.mark.parametrize("backend", ["redis", "redis-cluster"])
def test_200_threads_on_one_sync_saver_all_succeed(backend: str) -> None:
    options: dict[str, Any] = {}
    with redis_prefix(backend, options) as url, \
            RedisSaver.from_conn_string(url, **options) as saver, \
            ThreadPoolExecutor(TASKS) as pool:
        start = threading.Barrier(TASKS)
        done = list(pool.map(lambda n: start.wait() is not None and one_turn(saver, n),
                             range(TASKS)))
        assert done == list(range(TASKS))
        assert len(list(saver.list_threads())) == TASKS


@pytest.mark.parametrize("backend", ["redis", "redis-cluster"])
def test_200_tasks_on_one_async_saver_all_succeed(backend: str) -> None:
    options: dict[str, Any] = {}

    async def run(url: str) -> list[int]:
        async with AsyncRedisSaver.from_conn_string(url, **options) as saver:
            return list(await asyncio.gather(*(aone_turn(saver, n) for n in range(TASKS))))

    with redis_prefix(backend, options) as url:
        assert asyncio.run(run(url)) == list(range(TASKS))


@pytest.mark.parametrize("backend", ["redis", "redis-cluster"])
def test_a_small_pool_from_the_url_makes_calls_wait_not_fail(backend: str) -> None:
    options: dict[str, Any] = {}
    name = "pk-test-" + uuid.uuid4().hex[:8]
    with redis_prefix(backend, options) as server:
        url = f"{server}?key_prefix={options['key_prefix']}&pool_max_size=3&client_name={name}"

        async def run() -> tuple[list[int], int]:
            async with async_saver_from_url(url) as saver:
                done = await asyncio.gather(*(aone_turn(saver, n) for n in range(TASKS)))
                return list(done), connections_named(server, name)

        done, opened = asyncio.run(run())
        assert done == list(range(TASKS))
        topology = 1 if backend == "redis-cluster" else 0  # redis-py's CLUSTER SLOTS link
        assert 1 <= opened <= 3 + topology


@pytest.mark.parametrize("backend", ["redis", "redis-cluster"])
def test_no_free_connection_within_pool_timeout_is_unavailable(backend: str) -> None:
    options: dict[str, Any] = {"pool_max_size": 1, "pool_timeout": 1.0}
    with redis_prefix(backend, options) as url, \
            RedisSaver.from_conn_string(url, **options) as saver:
        key = options["key_prefix"] + ":{x}:nothing"
        blocker = threading.Thread(target=saver.client.blpop, args=([key],),
                                   kwargs={"timeout": 30})
        blocker.start()
        wait_for_a_blocked_client(backend, url)  # BLPOP now holds the only connection
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError, match="pool_timeout") as info:
            saver.get_tuple(generate_config("t"))
        assert 1.0 <= time.monotonic() - started < 10
        assert "pool_max_size" in str(info.value)
        with open_client(backend, url) as other:
            other.lpush(key, "go")  # BLPOP returns: the connection is free again
        blocker.join(30)
        assert saver.get_tuple(generate_config("t")) is None  # free again


def open_client(backend: str, url: str) -> Any:
    """A client of its own on the test server (a cluster client on the cluster)."""
    cls: Any = RedisCluster if backend == "redis-cluster" else redis.Redis
    return cls.from_url(url)


def wait_for_a_blocked_client(backend: str, url: str, *, within: float = 30.0) -> None:
    """Wait until the server reports a client blocked (in BLPOP), as it sees it."""
    deadline = time.monotonic() + within
    with open_client(backend, url) as client:
        while time.monotonic() < deadline:
            info = client.info("clients", **({"target_nodes": RedisCluster.ALL_NODES}
                                             if backend == "redis-cluster" else {}))
            nodes = info.values() if backend == "redis-cluster" else [info]
            if sum(node["blocked_clients"] for node in nodes) > 0:
                return
            time.sleep(0.05)
    pytest.fail(f"no client blocked in BLPOP within {within} s")


def test_saver_options_in_the_url(prefix_url: str) -> None:
    with saver_from_url(f"{prefix_url}&ttl=60&refresh_on_read=true&pool_timeout=2.5") as saver:
        assert saver.plans.ttl == "60000" and saver.plans.read_ttl == "60000"
        assert saver.client.connection_pool.timeout == 2.5
        assert saver.client.connection_pool.max_connections == 50  # the default


@pytest.fixture
def prefix_url() -> Any:
    options: dict[str, Any] = {}
    with redis_prefix("redis", options) as url:
        yield f"{url}?key_prefix={options['key_prefix']}"


UNKNOWN = [
    ("?keyprefix=x", "'keyprefix' in the URL (did you mean 'key_prefix'?)"),
    ("?key_prefix=x&pool_size=3", "'pool_size' in the URL (did you mean 'pool_max_size'?)"),
    ("?decode_responses=true", "'decode_responses' in the URL"),
]


@pytest.mark.parametrize(("query", "message"), UNKNOWN)
def test_unknown_url_options_are_named(query: str, message: str) -> None:
    url = redis_url() + query
    with pytest.raises(ConfigurationError, match="unknown Redis option") as info, \
            saver_from_url(url):
        pass
    assert message in str(info.value)
    assert ("accepted: key_prefix, ttl, refresh_on_read, pool_max_size, pool_timeout, "
            "append_deltas, append_cache_bytes, db") in str(info.value)

    async def run() -> None:
        async with AsyncRedisSaver.from_conn_string(url):
            pass

    with pytest.raises(ConfigurationError, match=message.split(" ")[0]):
        asyncio.run(run())


def test_unknown_keyword_options_are_named() -> None:
    with pytest.raises(ConfigurationError, match=r"'keyprefix' \(keyword\) \(did you mean"), \
            RedisSaver.from_conn_string(redis_url(), keyprefix="x"):
        pass
    with pytest.raises(ConfigurationError, match=r"'schema' \(keyword\)"), \
            saver_from_url(redis_url(), schema="x"):
        pass


@pytest.mark.parametrize(("query", "message"), [
    ("?pool_max_size=0", "pool_max_size must be a whole number >= 1, not 0"),
    ("?pool_max_size=many", "pool_max_size in the URL must be a whole number, not 'many'"),
    ("?pool_timeout=-1", "pool_timeout must be seconds > 0"),
    ("?ttl=soon", "ttl in the URL must be seconds, not 'soon'"),
    ("?refresh_on_read=maybe", "refresh_on_read in the URL must be true or false"),
    ("?max_connections=5", "'max_connections' in the URL is not taken: use pool_max_size"),
    ("?password=s3cret", "'password' in the URL is not taken: put it in the URL"),
    ("?ssl_certfile=x.pem", "'ssl_certfile' in the URL needs a rediss:// URL"),
    ("?db=x", "bad Redis option: Invalid value for 'db'"),
])
def test_bad_option_values_are_configuration_errors(query: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as info, saver_from_url(redis_url() + query):
        pass
    assert message in str(info.value)
    assert "s3cret" not in str(info.value)


def test_bad_keyword_values_are_configuration_errors() -> None:
    for options, message in [({"pool_max_size": True}, "pool_max_size"),
                             ({"pool_timeout": float("inf")}, "pool_timeout"),
                             ({"refresh_on_read": "yes"}, "refresh_on_read")]:
        with pytest.raises(ConfigurationError, match=message), \
                RedisSaver.from_conn_string(redis_url(), **options):
            pass


def test_the_command_line_names_an_unknown_option_on_one_line() -> None:
    result = CliRunner().invoke(cli, ["threads", redis_url() + "?keyprefix=x"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert "unknown Redis option 'keyprefix' in the URL" in result.output

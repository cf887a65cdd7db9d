"""Pointing a Redis saver at its store, and what it refuses: key prefixes as tenants
(and prefixes that would change the hash tag), clients that cannot work, the wrong mode,
an unreachable server or another store's URL (passwords kept out of the error), a newer
key layout, and URLs with ``key_prefix`` reaching Redis from code and the command line.
Options and pools are in test_redis_options.py."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import redis
import redis.asyncio as aredis
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.conformance.test_utils import generate_config

from langgraph_persist_kit.errors import (
    BackendUnavailableError,
    ConfigurationError,
    SchemaVersionError,
)
from langgraph_persist_kit.redis import AsyncRedisSaver, RedisSaver
from langgraph_persist_kit.redis._keys import KeySpace
from tests.helpers.backends import drop_prefix, redis_url
from tests.helpers.graphs import chat_graph
from tests.helpers.redis_checkpoints import put_one


def test_key_prefixes_isolate_tenants(prefix: str) -> None:
    other = prefix + "-other"
    try:
        with RedisSaver.from_conn_string(redis_url(), key_prefix=prefix) as a, \
                RedisSaver.from_conn_string(redis_url(), key_prefix=other) as b:
            put_one(a, "t", {"a": "tenant a"})
            put_one(b, "t", {"a": "tenant b"})
            b.delete_thread("t")
            assert a.get_tuple(generate_config("t")).checkpoint["channel_values"]["a"] == \
                "tenant a"
            assert [t.thread_id for t in a.list_threads()] == ["t"]
            assert list(b.list_threads()) == []
        client = redis.Redis.from_url(redis_url())
        keys = list(client.scan_iter(match=prefix + "*"))
        assert keys and all(key.startswith((prefix.encode() + b":", other.encode() + b":"))
                            for key in keys)
        client.close()
    finally:
        drop_prefix(redis_url(), other)


@pytest.mark.parametrize("bad", ["{tag}", "a}", "nul\x00"])
def test_prefixes_that_would_change_the_hash_tag_are_refused(bad: str) -> None:
    client = redis.Redis.from_url(redis_url())
    with pytest.raises(ConfigurationError, match="key_prefix"):
        RedisSaver(client, key_prefix=bad)
    client.close()


def test_clients_that_cannot_work_are_refused() -> None:
    decoding = redis.Redis.from_url(redis_url(), decode_responses=True)
    with pytest.raises(ConfigurationError, match="decode_responses=False"):
        RedisSaver(decoding)
    decoding.close()
    with pytest.raises(ConfigurationError, match="redis-py client"):
        RedisSaver("redis://localhost")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="ttl"):
        RedisSaver(redis.Redis.from_url(redis_url()), ttl=timedelta(0))


def test_wrong_mode_and_async_client(prefix: str) -> None:
    async def run() -> None:
        client = aredis.Redis.from_url(redis_url())
        saver = AsyncRedisSaver(client, key_prefix=prefix)
        await saver.setup()
        assert await saver.aget_tuple(generate_config("none")) is None
        with pytest.raises(ConfigurationError, match=r"AsyncRedisSaver|a-prefixed"):
            saver.get_tuple(generate_config("none"))
        await client.aclose()

    import asyncio

    asyncio.run(run())


def test_unreachable_server_and_bad_urls() -> None:
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError, match=r"127\.0\.0\.1:1"), \
            RedisSaver.from_conn_string("redis://127.0.0.1:1/0"):
        pass
    assert time.monotonic() - started < 30
    for bad in ("postgresql://x/y", "sqlite:///x.db", "127.0.0.1:6379"):
        with pytest.raises(ConfigurationError), RedisSaver.from_conn_string(bad):
            pass


def test_passwords_are_not_shown_in_errors() -> None:
    with pytest.raises(BackendUnavailableError) as info, \
            RedisSaver.from_conn_string("redis://user:s3cret@127.0.0.1:1/0"):
        pass
    assert "s3cret" not in str(info.value)


def test_a_newer_layout_is_refused(prefix: str) -> None:
    client = redis.Redis.from_url(redis_url())
    client.set(KeySpace(prefix).schema_key, 99)
    with pytest.raises(SchemaVersionError, match="upgrade"), \
            RedisSaver.from_conn_string(redis_url(), key_prefix=prefix):
        pass
    client.close()


def test_urls_and_the_command_line_reach_redis(prefix: str) -> None:
    import json

    from click.testing import CliRunner

    from langgraph_persist_kit import saver_from_url
    from langgraph_persist_kit.cli import cli

    url = f"{redis_url()}?key_prefix={prefix}"
    with saver_from_url(url) as saver:
        assert isinstance(saver, RedisSaver) and saver.plans.keys.prefix == prefix
        graph = chat_graph().compile(checkpointer=saver)
        graph.invoke({"messages": [HumanMessage("hi")]},
                     {"configurable": {"thread_id": "a:{b}"}, "metadata": {"user": "ann"}})
    runner = CliRunner()
    threads = runner.invoke(cli, ["threads", url, "--json", "--filter", "user=ann"])
    assert threads.exit_code == 0, threads.output
    assert [t["thread_id"] for t in json.loads(threads.output)] == ["a:{b}"]
    history = runner.invoke(cli, ["history", url, "a:{b}", "--format", "json"])
    assert history.exit_code == 0, history.output
    assert [h["step"] for h in json.loads(history.output)] == [1, 0, -1]
    down = runner.invoke(cli, ["threads", "redis://127.0.0.1:1/0"])
    assert down.exit_code == 1 and "unavailable" in down.output

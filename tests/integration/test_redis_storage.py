"""Redis specifics: round trips, atomic writes, whole-thread TTL, key prefixes,
clients and errors, the bucket layout on a real cluster.

Contract, conformance and graph tests run on Redis and on the local cluster
through the ``harness`` backends; this module covers what only Redis has.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
import redis.asyncio as aredis
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.conformance.test_utils import (
    generate_checkpoint,
    generate_config,
    generate_metadata,
)
from redis.cluster import RedisCluster

from langgraph_persist_kit.errors import (
    BackendUnavailableError,
    ConfigurationError,
    SchemaVersionError,
)
from langgraph_persist_kit.redis import AsyncRedisSaver, RedisSaver
from langgraph_persist_kit.redis._keys import BUCKETS, KeySpace
from tests.helpers.backends import drop_prefix, redis_cluster_url, redis_url
from tests.helpers.delta import build_chain
from tests.helpers.graphs import chat_graph


@pytest.fixture
def prefix() -> Iterator[str]:
    name = "pk-test-" + uuid.uuid4().hex[:12]
    yield name
    drop_prefix(redis_url(), name)


def put_one(saver: RedisSaver, thread_id: str, values: dict, parent: Any = None,
            new: dict | None = None, **metadata: Any) -> Any:
    config = generate_config(thread_id)
    if parent:
        config["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
    versions = {channel: f"{len(str(value)):05}" for channel, value in values.items()}
    checkpoint = generate_checkpoint(channel_values=values, channel_versions=versions)
    new_versions = versions if new is None else {c: versions[c] for c in new}
    return saver.put(config, checkpoint, {**generate_metadata(), **metadata}, new_versions)


class CountingConnection(redis.Connection):
    """A real connection that counts the requests it sends (a pipeline is one)."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)


def round_trips(action: Any) -> int:
    CountingConnection.sent = 0
    action()
    return CountingConnection.sent


def test_one_round_trip_per_put_put_writes_and_get_tuple(prefix: str) -> None:
    pool = redis.ConnectionPool.from_url(redis_url(), connection_class=CountingConnection)
    client = redis.Redis(connection_pool=pool)
    saver = RedisSaver(client, key_prefix=prefix)
    saver.setup()
    for script in saver.scripts.values():  # loaded once per server, not per call
        client.script_load(script.script)
    parent = put_one(saver, "t", {"a": 1, "b": "x" * 100})
    assert round_trips(lambda: put_one(saver, "t", {"a": 2, "b": "x" * 100}, parent,
                                       new={"a"})) == 1
    latest = saver.get_tuple(generate_config("t"))
    assert round_trips(lambda: saver.put_writes(latest.config, [("a", 3), ("b", "y")],
                                                "task")) == 1
    assert round_trips(lambda: saver.get_tuple(generate_config("t"))) == 1
    for _ in range(150):
        parent = put_one(saver, "long", {"a": 1}, parent and None)
    assert round_trips(lambda: list(saver.list(generate_config("long"), limit=10))) == 1
    assert round_trips(lambda: list(saver.list(generate_config("long")))) == 2
    ids = build_chain([saver], lambda s, name, *a, **k: getattr(s, name)(*a, **k), "deep", 700,
                      snapshot_every=None)
    config = {"configurable": {"thread_id": "deep", "checkpoint_ns": "", "checkpoint_id": ids[-1]}}
    result: dict = {}
    trips = round_trips(
        lambda: result.update(saver.get_delta_channel_history(config=config, channels=["d"]))
    )
    assert len(result["d"]["writes"]) == 2 * 699
    assert trips <= 4  # walk rounds of 64, 512, 4096 ancestors, then seeds and writes
    client.close()


def test_readers_never_see_half_a_checkpoint(prefix: str) -> None:
    """Every channel of a checkpoint is written in the same script as the checkpoint."""
    with RedisSaver.from_conn_string(redis_url(), key_prefix=prefix) as saver:
        stop = threading.Event()
        seen: list[tuple[int, ...]] = []

        def write() -> None:
            parent = None
            for n in range(300):
                values = {f"ch{i}": n for i in range(8)}
                parent = put_one(saver, "t", values, parent)
            stop.set()

        writer = threading.Thread(target=write)
        writer.start()
        while not stop.is_set():
            latest = saver.get_tuple(generate_config("t"))
            if latest is not None:
                values = latest.checkpoint["channel_values"]
                seen.append(tuple(values[f"ch{i}"] for i in range(8)))
        writer.join()
    assert seen, "the reader never ran"
    assert all(len(set(row)) == 1 for row in seen), [r for r in seen if len(set(r)) > 1][:3]


def thread_ttls(client: redis.Redis, prefix: str, thread_id: str) -> list[int]:
    return [client.pttl(key) for key in KeySpace(prefix).thread_keys(thread_id)[:7]]


def test_whole_thread_ttl_keeps_a_used_thread_and_expires_an_idle_one(prefix: str) -> None:
    ttl = timedelta(seconds=1.5)
    client = redis.Redis.from_url(redis_url())
    with RedisSaver.from_conn_string(redis_url(), key_prefix=prefix, ttl=ttl) as saver:
        config = put_one(saver, "live", {"system": "written once", "turn": 0})
        put_one(saver, "idle", {"system": "idle"})
        saver.put_writes(config, [("turn", 1)], "task")
        deadline = time.monotonic() + 3 * ttl.total_seconds()
        turn = 0
        while time.monotonic() < deadline:  # twice the TTL of writes that skip "system"
            turn += 1
            config = put_one(saver, "live", {"system": "written once", "turn": turn}, config,
                             new={"turn"})
            saver.put_writes(config, [("turn", turn)], "task")
            ttls = thread_ttls(client, prefix, "live")
            assert all(0 < t <= 1500 for t in ttls), ttls
            assert max(ttls) - min(ttls) < 50, ttls  # one expiry for every key
            time.sleep(0.3)
        latest = saver.get_tuple(generate_config("live"))
        assert latest.checkpoint["channel_values"] == {"system": "written once", "turn": turn}
        assert saver.get_tuple(generate_config("idle")) is None
        assert [t.thread_id for t in saver.list_threads()] == ["live"]
        time.sleep(ttl.total_seconds() + 0.3)
        assert saver.get_tuple(generate_config("live")) is None
        assert list(saver.list_threads()) == []
        assert list(saver.list(None)) == []
        indexes = [KeySpace(prefix).bucket_keys(b)[:2] for b in range(BUCKETS)]
        assert sum(client.zcard(key) for pair in indexes for key in pair) == 0  # purged
    client.close()


def test_refresh_on_read_keeps_a_read_thread(prefix: str) -> None:
    ttl = timedelta(seconds=1)
    with RedisSaver.from_conn_string(redis_url(), key_prefix=prefix, ttl=ttl,
                                     refresh_on_read=True) as saver, \
            RedisSaver.from_conn_string(redis_url(), key_prefix=prefix, ttl=ttl) as plain:
        put_one(saver, "read", {"a": 1})
        put_one(saver, "unread", {"a": 1})
        for _ in range(8):
            time.sleep(0.25)
            assert saver.get_tuple(generate_config("read")) is not None
            assert len(list(saver.list(generate_config("read")))) == 1
        assert saver.get_tuple(generate_config("unread")) is None
        put_one(plain, "plain", {"a": 1})
        time.sleep(0.6)
        plain.get_tuple(generate_config("plain"))  # refresh_on_read is off: no refresh
        time.sleep(0.6)
        assert plain.get_tuple(generate_config("plain")) is None


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


def test_list_across_threads_merges_every_bucket_in_order(prefix: str) -> None:
    with RedisSaver.from_conn_string(redis_url(), key_prefix=prefix) as saver:
        threads = [f"thread-{i}" for i in range(3 * BUCKETS)]
        for thread_id in threads:
            put_one(saver, thread_id, {"a": thread_id}, kind="odd" if "7" in thread_id else "x")
        listed = list(saver.list(None))
        keys = [(t.config["configurable"]["checkpoint_id"], t.config["configurable"]["thread_id"])
                for t in listed]
        assert keys == sorted(keys, reverse=True) and len(keys) == len(threads)
        before = {"configurable": {"checkpoint_id": keys[100][0]}}
        assert [(t.config["configurable"]["checkpoint_id"],
                 t.config["configurable"]["thread_id"])
                for t in saver.list(None, before=before, limit=50)] == keys[101:151]
        odd = {t.config["configurable"]["thread_id"] for t in saver.list(None,
                                                                         filter={"kind": "odd"})}
        assert odd == {t for t in threads if "7" in t}
        infos = list(saver.list_threads())
        assert [i.thread_id for i in infos] == threads[::-1]  # newest-updated first
        assert [i.thread_id for i in saver.list_threads(limit=5)] == threads[::-1][:5]
        assert {i.thread_id for i in saver.list_threads(filter={"kind": "odd"})} == odd


def test_cluster_keeps_each_thread_in_one_slot_and_spreads_threads() -> None:
    url = redis_cluster_url()
    prefix = "pk-test-" + uuid.uuid4().hex[:12]
    try:
        with RedisSaver.from_conn_string(url, key_prefix=prefix) as saver:
            assert isinstance(saver.client, RedisCluster)
            threads = [f"{{odd}}:{i}*" for i in range(40)]
            client = saver.client
            for thread_id in threads:
                config = put_one(saver, thread_id, {"a": 1}, run_id=f"run-{thread_id}")
                saver.put_writes(config, [("a", 2)], "task")
            nodes = set()
            for thread_id in threads:
                keys = KeySpace(prefix).thread_keys(thread_id)
                existing = [key for key in keys if client.exists(key)]
                assert len(existing) == 10  # info, index, checkpoint, body, value, writes x2,
                slots = {client.keyslot(key) for key in keys}  # and the bucket's 3 indexes
                assert len(slots) == 1
                nodes.add(client.get_node_from_key(keys[0]).name)
            assert len(nodes) == 3  # threads spread over every master
            assert {t.thread_id for t in saver.list_threads()} == set(threads)
            saver.delete_for_runs([f"run-{threads[0]}"])
            assert saver.get_tuple(generate_config(threads[0])) is None
            assert len(list(saver.list(None))) == len(threads) - 1
    finally:
        drop_prefix(url, prefix)


def test_a_compiled_graph_on_the_cluster_async() -> None:
    import asyncio

    url = redis_cluster_url()
    prefix = "pk-test-" + uuid.uuid4().hex[:12]

    async def run() -> list:
        async with AsyncRedisSaver.from_conn_string(url, key_prefix=prefix) as saver:
            graph = chat_graph().compile(checkpointer=saver)
            config = {"configurable": {"thread_id": "{chat}"}}
            for text in ("hi", "again"):
                await graph.ainvoke({"messages": [HumanMessage(text)]}, config)
            return [s async for s in graph.aget_state_history(config)]

    try:
        history = asyncio.run(run())
    finally:
        drop_prefix(url, prefix)
    assert len(history) == 6
    assert [m.content for m in history[0].values["messages"]][-1] == "reply 2 to 'again'"


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


def test_prune_plans_again_when_a_fork_lands_meanwhile(prefix: str) -> None:
    """A checkpoint put between prune's planning and its delete keeps its ancestors."""
    with RedisSaver.from_conn_string(redis_url(), key_prefix=prefix) as saver:
        call = lambda s, name, *a, **kw: getattr(s, name)(*a, **kw)  # noqa: E731
        ids = build_chain([saver], call, "t", 8, snapshot_every=4)
        plan = saver.plans.prune(["t"], "keep_latest")
        request = next(plan)
        forked = False
        while True:
            if (getattr(request, "name", None) == "delete_checkpoints" and not forked):
                build_chain([saver], call, "t", 1, parent=ids[1], start=8)  # fork from #1
                forked = True
            try:
                request = plan.send(saver._execute(request))
            except StopIteration:
                break
        assert forked
        fork = saver.get_tuple(generate_config("t"))
        history = saver.get_delta_channel_history(config=fork.config, channels=["d"])
        expected = {"configurable": {"thread_id": "x", "checkpoint_ns": ""}}
        with RedisSaver.from_conn_string(redis_url(), key_prefix=prefix + "-ref") as ref:
            try:
                ref_ids = build_chain([ref], call, "x", 8, snapshot_every=4)
                build_chain([ref], call, "x", 1, parent=ref_ids[1], start=8)
                expected = ref.get_delta_channel_history(
                    config=ref.get_tuple(expected).config, channels=["d"])
            finally:
                drop_prefix(redis_url(), prefix + "-ref")
        assert history["d"]["seed"] == expected["d"]["seed"]
        assert [w[2] for w in history["d"]["writes"]] == [w[2] for w in expected["d"]["writes"]]


def test_a_saver_without_ttl_makes_the_whole_thread_persistent(prefix: str) -> None:
    client = redis.Redis.from_url(redis_url())
    with RedisSaver.from_conn_string(redis_url(), key_prefix=prefix, ttl=100) as with_ttl, \
            RedisSaver.from_conn_string(redis_url(), key_prefix=prefix) as without:
        config = put_one(with_ttl, "t", {"a": 1})
        with_ttl.put_writes(config, [("a", 2)], "task")
        assert all(t > 0 for t in thread_ttls(client, prefix, "t"))
        without.put_writes(config, [("a", 3)], "other")
        assert thread_ttls(client, prefix, "t") == [-1] * 7  # one expiry: none
    client.close()


def test_delete_for_runs_clears_run_entries_of_expired_threads(prefix: str) -> None:
    client = redis.Redis.from_url(redis_url())
    with RedisSaver.from_conn_string(redis_url(), key_prefix=prefix, ttl=0.3) as saver:
        put_one(saver, "t", {"a": 1}, run_id="run-1")
        runs_key = KeySpace(prefix).thread_keys("t")[9]
        assert client.zcard(runs_key) == 1
        time.sleep(0.6)
        saver.delete_for_runs(["run-1"])
        assert client.zcard(runs_key) == 0
    client.close()


def test_list_threads_with_tied_update_times(prefix: str) -> None:
    from langgraph_persist_kit.redis._keys import bucket_of

    client = redis.Redis.from_url(redis_url())
    with RedisSaver.from_conn_string(redis_url(), key_prefix=prefix) as saver:
        same_bucket = [t for t in (f"x{i}" for i in range(20000)) if bucket_of(t) == 7][:70]
        for thread_id in same_bucket:
            put_one(saver, thread_id, {"a": 1})
        registry = KeySpace(prefix).bucket_keys(7)[0]
        client.zadd(registry, dict.fromkeys(same_bucket, 1000.0))  # every score tied
        listed = [t.thread_id for t in saver.list_threads()]
        assert sorted(listed) == sorted(same_bucket) and len(listed) == len(same_bucket)
    client.close()


def test_cleanup_removes_registry_entries_of_threads_ttl_expired(prefix: str) -> None:
    from langgraph_persist_kit.maintenance import cleanup_expired

    client = redis.Redis.from_url(redis_url())
    with RedisSaver.from_conn_string(redis_url(), key_prefix=prefix, ttl=0.3) as saver:
        for i in range(5):
            put_one(saver, f"t{i}", {"a": i})
        time.sleep(1.2)  # Redis expired every thread's keys; the registries still list them
        registries = [KeySpace(prefix).bucket_keys(b)[0] for b in range(BUCKETS)]
        assert sum(client.zcard(key) for key in registries) == 5
        report = cleanup_expired(saver, older_than=timedelta(seconds=1))
        assert (report.threads_deleted, report.checkpoints_deleted) == (0, 0)
        assert sum(client.zcard(key) for key in registries) == 0
    client.close()

"""What the Redis key layout does at work: one round trip per put, put_writes and
get_tuple (and a bounded few for listings and a deep DeltaChannel history), readers that
never see half a checkpoint, listings merged over every bucket in order (ties too),
prune planning again when a fork lands meanwhile, and on a real cluster each thread in
one slot, threads spread over the masters.

Contract, conformance and graph tests run on Redis and on the local cluster through the
``harness`` backends; this module and test_redis_ttl.py, test_redis_config.py and
test_redis_options.py cover what only Redis has.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import redis
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.conformance.test_utils import generate_config
from redis.cluster import RedisCluster

from langgraph_persist_kit.redis import AsyncRedisSaver, RedisSaver
from langgraph_persist_kit.redis._keys import BUCKETS, KeySpace
from tests.helpers.backends import drop_prefix, redis_cluster_url, redis_url
from tests.helpers.delta import build_chain
from tests.helpers.graphs import chat_graph
from tests.helpers.redis_checkpoints import put_one


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

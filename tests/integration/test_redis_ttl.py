"""Whole-thread TTL on Redis: one expiry for every key of a thread, renewed by each
write (and by reads with ``refresh_on_read``), none when a saver without ``ttl`` writes,
and the run and registry entries that expired threads leave behind cleared by
``delete_for_runs`` and ``cleanup_expired``."""

from __future__ import annotations

import time
from datetime import timedelta

import redis
from langgraph.checkpoint.conformance.test_utils import generate_config

from langgraph_persist_kit.redis import RedisSaver
from langgraph_persist_kit.redis._keys import BUCKETS, KeySpace
from tests.helpers.backends import redis_url
from tests.helpers.redis_checkpoints import put_one


def thread_ttls(client: redis.Redis, prefix: str, thread_id: str) -> list[int]:
    return [client.pttl(key) for key in KeySpace(prefix).thread_keys(thread_id)[:7]]


def test_whole_thread_ttl_keeps_a_used_thread_and_expires_an_idle_one(prefix: str) -> None:
    ttl = timedelta(seconds=1.5)
    client = redis.Redis.from_url(redis_url())
    with RedisSaver.from_conn_string(redis_url(), key_prefix=prefix, ttl=ttl) as saver:
        # put_one's versions are the values' lengths, and a stored version is never
        # replaced (it names one value): each turn's value is one longer
        config = put_one(saver, "live", {"system": "written once", "turn": ""})
        put_one(saver, "idle", {"system": "idle"})
        saver.put_writes(config, [("turn", 1)], "task")
        deadline = time.monotonic() + 3 * ttl.total_seconds()
        turn = 0
        while time.monotonic() < deadline:  # twice the TTL of writes that skip "system"
            turn += 1
            config = put_one(saver, "live", {"system": "written once", "turn": "t" * turn},
                             config, new={"turn"})
            saver.put_writes(config, [("turn", turn)], "task")
            ttls = thread_ttls(client, prefix, "live")
            assert all(0 < t <= 1500 for t in ttls), ttls
            assert max(ttls) - min(ttls) < 50, ttls  # one expiry for every key
            time.sleep(0.3)
        latest = saver.get_tuple(generate_config("live"))
        assert latest.checkpoint["channel_values"] == {"system": "written once",
                                                       "turn": "t" * turn}
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

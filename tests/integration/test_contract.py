"""What every saver promises beyond the conformance suite, on every backend x mode.

Hostile filters, odd thread ids, the thread registry, filter semantics equal
to InMemorySaver's, wrong-mode calls and config errors.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from langgraph.checkpoint.conformance.test_utils import (
    generate_checkpoint,
    generate_config,
    generate_metadata,
)
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_persist_kit.errors import ConfigurationError
from tests.helpers.chains import put_chain
from tests.helpers.harness import Harness

ODD_THREAD_IDS = [
    "it's",
    'say "hi"',
    "a:b:c",
    "{tag}",
    "}{",
    "x:{y}:z",
    "sp ace",
    "a",
    "a:idx",
    "a:w",
    "*",
    "%",
    "_",
    "a%_*?[x]",
    "emoji-🦜🔗",
    "back\\slash",
    "new\nline",
    "x" * 1000,
    "x" * 999 + "*",
]

HOSTILE_KEYS = [
    "a') OR 1=1 --",
    "source' OR '1'='1",
    '"; DROP TABLE checkpoints; --',
    "$.source",
    '$."source"',
    "source\x00",
    "*",
    "%",
]


def count_all(h: Harness) -> int:
    return len(h.call("list", None))


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_hostile_filter_keys_match_nothing_and_change_nothing(harness: Harness, key: str) -> None:
    put_chain(harness, "victim", [{"source": "input"}, {"source": "loop"}])
    before = count_all(harness)
    assert harness.call("list", None, filter={key: "x"}) == []
    assert harness.call("list", {"configurable": {"thread_id": "victim"}}, filter={key: 1}) == []
    assert harness.call("list_threads", filter={key: "input"}) == []
    assert count_all(harness) == before == 2
    assert len(harness.call("list_threads")) == 1


@pytest.mark.parametrize(
    "bad_filter",
    [{1: "x"}, {"k": object()}, {"k": {1, 2}}, ["source", "input"]],
    ids=["int-key", "object-value", "set-value", "list-filter"],
)
def test_invalid_filters_raise_configuration_error(harness: Harness, bad_filter: Any) -> None:
    put_chain(harness, "t", [{}])
    with pytest.raises(ConfigurationError):
        harness.call("list", None, filter=bad_filter)
    with pytest.raises(ConfigurationError):
        harness.call("list_threads", filter=bad_filter)


def test_odd_thread_ids_never_collide(harness: Harness) -> None:
    for i, thread_id in enumerate(ODD_THREAD_IDS):
        put_chain(harness, thread_id, [{"owner": i}] * (i % 3 + 1))
        harness.call("put_writes", harness.call("get_tuple", generate_config(thread_id)).config,
                     [("ch", thread_id)], "task")
    for i, thread_id in enumerate(ODD_THREAD_IDS):
        listed = harness.call("list", {"configurable": {"thread_id": thread_id}})
        assert len(listed) == i % 3 + 1
        assert {t.metadata["owner"] for t in listed} == {i}
        latest = harness.call("get_tuple", generate_config(thread_id))
        assert latest.config["configurable"]["thread_id"] == thread_id
        assert latest.pending_writes == [("task", "ch", thread_id)]
    threads = {t.thread_id for t in harness.call("list_threads")}
    assert threads == set(ODD_THREAD_IDS)

    harness.call("delete_thread", "*")
    harness.call("delete_thread", "%")
    remaining = {t.thread_id for t in harness.call("list_threads")}
    assert remaining == set(ODD_THREAD_IDS) - {"*", "%"}
    assert harness.call("list", {"configurable": {"thread_id": "*"}}) == []
    assert len(harness.call("list", {"configurable": {"thread_id": "x" * 999 + "*"}})) == 1


def test_copy_and_prune_with_odd_ids(harness: Harness) -> None:
    source, target = "src:{a}*%", "dst:{a}*%🦜"
    put_chain(harness, source, [{}, {}, {}])
    put_chain(harness, "src:{a}*", [{}])
    harness.call("copy_thread", source, target)
    assert len(harness.call("list", {"configurable": {"thread_id": target}})) == 3
    harness.call("prune", [target], strategy="keep_latest")
    assert len(harness.call("list", {"configurable": {"thread_id": target}})) == 1
    assert len(harness.call("list", {"configurable": {"thread_id": source}})) == 3
    assert len(harness.call("list", {"configurable": {"thread_id": "src:{a}*"}})) == 1


FILTER_DATA = [
    {"source": "input", "user": "ann", "score": 1, "flag": True, "tags": ["a", "b"]},
    {"source": "loop", "user": "bob", "score": 1.5, "flag": False, "extra": None},
    {"source": "loop", "user": "ann", "score": 2, "nested": {"k": 1, "j": [1, 2]}},
    {"source": "update", "user": "ünï", "score": 0},
]

FILTERS = [
    {"source": "loop"},
    {"user": "ann", "source": "loop"},
    {"score": 1},
    {"score": 1.5},
    {"score": 0},
    {"flag": True},
    {"flag": False},
    {"extra": None},
    {"nested": {"j": [1, 2], "k": 1}},
    {"tags": ["a", "b"]},
    {"tags": ["b", "a"]},
    {"user": "ünï"},
    {"score": "1"},
    {"missing": "x"},
]


@pytest.mark.parametrize("filter", FILTERS, ids=[str(f) for f in FILTERS])
def test_filter_semantics_match_in_memory_saver(harness: Harness, filter: dict) -> None:
    memory = InMemorySaver()
    for thread_id in ("t1", "t2"):
        parent = None
        for extra in FILTER_DATA:
            config = generate_config(thread_id)
            if parent:
                config["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
            checkpoint = generate_checkpoint()
            metadata = {**generate_metadata(), **extra}
            parent = harness.call("put", config, checkpoint, metadata, {})
            memory.put(config, checkpoint, metadata, {})

    def ids(tuples: list) -> list[tuple[str, str]]:
        return sorted((t.config["configurable"]["thread_id"], t.checkpoint["id"]) for t in tuples)

    expected = ids(list(memory.list(None, filter=filter)))
    assert ids(harness.call("list", None, filter=filter)) == expected
    one = {"configurable": {"thread_id": "t2"}}
    expected_one = ids(list(memory.list(one, filter=filter)))
    assert ids(harness.call("list", one, filter=filter)) == expected_one


def test_list_threads_registry(harness: Harness) -> None:
    start = datetime.now(timezone.utc) - timedelta(seconds=1)
    put_chain(harness, "a", [{"user": "ann", "turn": 1}, {"user": "ann", "turn": 2}])
    put_chain(harness, "b", [{"user": "bob"}])
    put_chain(harness, "a", [{"user": "sub"}], ns="child:1")  # subgraph: not the thread's metadata
    put_chain(harness, "c", [{"user": "ann"}])

    threads = harness.call("list_threads")
    assert [t.thread_id for t in threads] == ["c", "a", "b"]  # newest-updated first
    by_id = {t.thread_id: t for t in threads}
    assert by_id["a"].metadata["turn"] == 2 and by_id["a"].metadata["user"] == "ann"
    for info in threads:
        assert info.created_at.tzinfo is not None and info.created_at.utcoffset() == timedelta(0)
        assert start <= info.created_at <= info.updated_at <= datetime.now(timezone.utc)
    assert [t.thread_id for t in harness.call("list_threads", filter={"user": "ann"})] == ["c", "a"]
    assert [t.thread_id for t in harness.call("list_threads", limit=2)] == ["c", "a"]
    assert harness.call("list_threads", filter={"user": "sub"}) == []

    latest_b = harness.call("get_tuple", generate_config("b"))
    harness.call("put_writes", latest_b.config, [("x", 1)], "task-1")
    assert harness.call("list_threads")[0].thread_id == "b"  # a pending write is a write

    harness.call("delete_thread", "a")
    assert {t.thread_id for t in harness.call("list_threads")} == {"b", "c"}


def test_list_threads_pages_through_many_threads(harness: Harness) -> None:
    for i in range(1050):  # more than one page of the registry
        put_chain(harness, f"t-{i:04}", [{"i": i}])
    threads = harness.call("list_threads")
    assert len(threads) == 1050 and len({t.thread_id for t in threads}) == 1050
    assert [t.updated_at for t in threads] == sorted((t.updated_at for t in threads), reverse=True)
    assert len(harness.call("list_threads", limit=1001)) == 1001


def test_list_pages_and_limits(harness: Harness) -> None:
    configs = put_chain(harness, "long", [{}] * 230)
    listed = harness.call("list", {"configurable": {"thread_id": "long"}})
    assert [t.config["configurable"]["checkpoint_id"] for t in listed] == [
        c["configurable"]["checkpoint_id"] for c in reversed(configs)
    ]
    assert len(harness.call("list", {"configurable": {"thread_id": "long"}}, limit=150)) == 150
    before = {"configurable": {"checkpoint_id": configs[200]["configurable"]["checkpoint_id"]}}
    page = harness.call("list", {"configurable": {"thread_id": "long"}}, before=before, limit=120)
    assert [t.metadata["step"] for t in page] == list(range(199, 79, -1))


def test_delete_for_runs_refreshes_thread_metadata(harness: Harness) -> None:
    put_chain(harness, "t", [{"run_id": "r1", "v": 1}, {"run_id": "r2", "v": 2}])
    put_chain(harness, "only-r2", [{"run_id": "r2"}])
    harness.call("delete_for_runs", ["r2"])
    threads = harness.call("list_threads")
    assert [t.thread_id for t in threads] == ["t"]
    assert threads[0].metadata["v"] == 1


def test_config_without_thread_id_raises(harness: Harness) -> None:
    with pytest.raises(ConfigurationError, match="thread_id"):
        harness.call("get_tuple", {"configurable": {}})
    with pytest.raises(ConfigurationError, match="thread_id"):
        harness.call("put", {"configurable": {}}, generate_checkpoint(), generate_metadata(), {})
    with pytest.raises(ConfigurationError, match="checkpoint_id"):
        harness.call("put_writes", {"configurable": {"thread_id": "t"}}, [("c", 1)], "task")


def test_prune_rejects_unknown_strategy(harness: Harness) -> None:
    put_chain(harness, "t", [{}, {}])
    with pytest.raises(ConfigurationError, match="strategy"):
        harness.call("prune", ["t"], strategy="keep_some")
    assert len(harness.call("list", {"configurable": {"thread_id": "t"}})) == 2


def test_wrong_mode_calls_say_what_to_use(harness: Harness) -> None:
    other = "aget_tuple" if harness.mode == "sync" else "get_tuple"
    with pytest.raises(ConfigurationError, match="instead"):
        getattr(harness.saver, other)(generate_config("t"))


def test_metadata_must_be_json(harness: Harness) -> None:
    with pytest.raises(ConfigurationError, match="JSON"):
        harness.call("put", generate_config("t"), generate_checkpoint(),
                     {**generate_metadata(), "obj": object()}, {})
    assert harness.call("list", None) == []


def test_prune_keeps_writes_stored_ahead_of_their_checkpoint(harness: Harness) -> None:
    """LangGraph may store a step's writes before that step's checkpoint lands."""
    configs = put_chain(harness, "t", [{}, {}])
    upcoming = generate_checkpoint()
    upcoming_config = {"configurable": {"thread_id": "t", "checkpoint_ns": "",
                                        "checkpoint_id": upcoming["id"]}}
    harness.call("put_writes", upcoming_config, [("answer", 42)], "task-1")
    harness.call("prune", ["t"], strategy="keep_latest")
    harness.call("put", configs[-1], upcoming, generate_metadata(step=2), {})
    assert harness.call("get_tuple", upcoming_config).pending_writes == [("task-1", "answer", 42)]
    assert len(harness.call("list", {"configurable": {"thread_id": "t"}})) == 2


@pytest.mark.parametrize(
    "filter",
    [{"n": True}, {"b": 1}, {"b": 1.0}, {"z": False}, {"n": float("nan")}, {"n": float("inf")}],
    ids=["true-vs-1", "1-vs-true", "1.0-vs-true", "false-vs-0", "nan", "inf"],
)
def test_bool_int_and_nan_filters_match_in_memory_saver(harness: Harness, filter: dict) -> None:
    memory = InMemorySaver()
    config = generate_config("t")
    checkpoint = generate_checkpoint()
    metadata = {**generate_metadata(), "n": 1, "b": True, "z": 0}
    harness.call("put", config, checkpoint, metadata, {})
    memory.put(config, checkpoint, metadata, {})
    expected = len(list(memory.list(None, filter=filter)))
    assert len(harness.call("list", None, filter=filter)) == expected


def test_thread_ids_with_nul_are_refused(harness: Harness) -> None:
    for call in (
        lambda: harness.call("get_tuple", generate_config("a\x00b")),
        lambda: harness.call("delete_thread", "a\x00b"),
        lambda: harness.call("prune", ["a\x00b"]),
        lambda: harness.call("copy_thread", "a", "a\x00b"),
        lambda: harness.call("delete_for_runs", ["r\x00"]),
        lambda: harness.call("get_tuple", generate_config("t", checkpoint_ns="a\x00b")),
        lambda: harness.call("list", generate_config("t", checkpoint_ns="x\x00")),
        lambda: harness.call("list", {"configurable": {"thread_id": "t",
                                                      "checkpoint_id": "1\x00x"}}),
        lambda: harness.call("put_writes", {"configurable": {
            "thread_id": "t", "checkpoint_ns": "", "checkpoint_id": "1\x00x"}}, [], "task"),
    ):
        with pytest.raises(ConfigurationError, match="NUL"):
            call()

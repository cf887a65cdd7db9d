"""Export, import and copy of threads between every kind of saver.

Real compiled graphs (an interrupt, a subgraph, ``Send`` fan-out, parallel
interrupts half answered, a forked DeltaChannel thread) run on a source saver;
their threads are exported and imported into another kind of saver (every
ordered pair of sqlite, postgres, redis and InMemorySaver, modes mixed), and
``get_state_history`` / ``get_state`` must be equal, then stay equal as both
threads continue. The command line is tested in ``test_transfer_cli``, damaged files
and the format's details in ``test_transfer_format``; the saver sides, the scenario
(`GRAPHS`, `fill`) and the mode-aware calls are in tests/helpers/transfer.py.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.types import Command

from langgraph_persist_kit import (
    ThreadCopied,
    acopy_threads,
    copy_threads,
    export_threads,
    import_threads,
)
from langgraph_persist_kit.errors import ConfigurationError
from tests.helpers.differential import assert_same_thread, thread, without_interrupt_ids
from tests.helpers.graphs import interrupt_graph, linear_graph
from tests.helpers.harness import Harness
from tests.helpers.transfer import (
    GRAPHS,
    LIMITS,
    assert_identical_threads,
    compiled,
    copy,
    export_text,
    fill,
    import_text,
    resume_map,
    side,
)


def continue_threads(h: Harness) -> list[Any]:
    """Resume and extend every thread; return the outputs."""
    g = compiled(h)
    return [
        h.invoke(g["paused"], Command(update={"log": ["edit-2"]}, resume="yes"), thread("paused")),
        h.invoke(g["sub"], Command(resume="ok"), thread("sub")),
        h.invoke(g["fan"], {"count": 2}, thread("fan")),
        without_interrupt_ids(h.invoke(g["parallel"], resume_map(
            h, g["parallel"], {0: "zero", 2: "two"}), thread("parallel"))),
        h.invoke(g["delta"], {"limit": 11}, {**thread("delta"), **LIMITS}),
    ]


# --- exact round trips between every pair of kinds --------------------------------------

KINDS = ["sqlite", "postgres", "redis", "memory"]
PAIRS = [(src, dst) for src in KINDS for dst in KINDS if src != dst]
PAIRS += [("redis-cluster", "postgres"), ("sqlite", "redis-cluster")]
CASES = [(src, dst, ("sync", "async")[i % 2], ("sync", "async")[i // 2 % 2])
         for i, (src, dst) in enumerate(PAIRS)]


@pytest.mark.parametrize(("src", "dst", "src_mode", "dst_mode"), CASES,
                         ids=[f"{s}-{sm}-to-{d}-{dm}" for s, d, sm, dm in CASES])
def test_round_trip_is_exact(
    tmp_path: Path, src: str, dst: str, src_mode: str, dst_mode: str
) -> None:
    with side(src, src_mode, tmp_path / "a") as a, side(dst, dst_mode, tmp_path / "b") as b:
        fill(a)
        text = export_text(a)
        report = import_text(b, text)
        assert report.threads == len(GRAPHS) and report.skipped == ()
        assert report.checkpoints == text.count('"type":"checkpoint"') > 30
        assert report.writes > 10
        assert_identical_threads(a, b)
        assert export_text(b) == text  # same bytes, whichever backend holds the threads

        outputs = [continue_threads(h) for h in (a, b)]
        assert outputs[0] == outputs[1]
        # the second update joins the first's pending writes: their order must hold
        assert outputs[0][0]["log"] == ["draft:post", "edit-1", "edit-2", "ask:yes", "publish:yes"]
        assert outputs[0][3]["log"] == ["plan", "n1", "n2", "n3", "0:zero", "1:one", "2:two"]
        graphs_a, graphs_b = compiled(a), compiled(b)
        for name in GRAPHS:
            pair = [(a, graphs_a[name]), (b, graphs_b[name])]
            assert_same_thread(pair, thread(name), subgraphs=True)


@pytest.fixture(scope="module")
def memory_export(tmp_path_factory: pytest.TempPathFactory) -> str:
    with side("memory", "sync", tmp_path_factory.mktemp("memory")) as h:
        fill(h)
        return export_text(h)


def test_every_backend_exports_the_same_bytes(harness: Harness, memory_export: str) -> None:
    import_text(harness, memory_export)
    assert export_text(harness) == memory_export
    lines = memory_export.splitlines()
    assert lines[0] == '{"format":"langgraph-persist-kit/threads","version":1}'
    assert json.loads(lines[-1]) == {"type": "end", "threads": 5,
                                     "checkpoints": len(lines) - 2 - 5}
    records = [json.loads(line) for line in lines[1:-1]]
    threads = [r["thread_id"] for r in records if r["type"] == "thread"]
    assert threads == sorted(GRAPHS)  # every thread, sorted by id
    checkpoints = [r for r in records if r["type"] == "checkpoint"]
    assert {r["checkpoint_ns"].split(":")[0] for r in checkpoints} == {"", "child"}
    given = [(r["thread_id"], r["checkpoint_ns"], channel, r["channel_versions"][channel])
             for r in checkpoints for channel in r["channel_values"]]
    assert len(given) == len(set(given))  # each value once, as the stores keep it
    assert sum(len(r["channel_versions"]) for r in checkpoints) > 2 * len(given)


def test_int_channel_versions_and_key_order_survive(harness: Harness) -> None:
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"b": [1, 2], "a": "x"}
    checkpoint["channel_versions"] = {"b": 7, "a": 3, "gone": 2}  # "gone" holds no value
    config = {"configurable": {"thread_id": "ints", "checkpoint_ns": ""}}
    metadata: Any = {"z": 1, "a": {"y": 2, "b": [3]}, "source": "input", "step": -1}
    stored = harness.call("put", config, checkpoint, metadata, {"b": 7, "a": 3, "gone": 2})
    harness.call("put_writes", stored, [("b", [3]), ("a", "y")], "task-a", "~b")
    harness.call("put_writes", stored, [("a", "z")], "task-z", "~a")  # path first, then id
    text = export_text(harness)
    record = json.loads(text.splitlines()[2])
    assert record["channel_versions"] == {"a": 3, "b": 7, "gone": 2}
    assert list(record["metadata"]) == ["a", "source", "step", "z"]
    assert [(w["task_id"], w["channel"]) for w in record["pending_writes"]] == [
        ("task-z", "a"), ("task-a", "b"), ("task-a", "a")]
    with side("memory", "sync", Path()) as memory:
        import_text(memory, text)
        copied = memory.saver.get_tuple(config)
        assert copied == harness.call("get_tuple", config)
        assert copied.checkpoint["channel_versions"] == {"b": 7, "a": 3, "gone": 2}
        assert export_text(memory) == text


# --- copy -----------------------------------------------------------------------------


def test_copy_to_and_from_every_backend(harness: Harness, tmp_path: Path) -> None:
    with side("memory", harness.mode, tmp_path) as memory:
        memory.loop = harness.loop  # one event loop for both savers
        fill(memory)
        progress: list[ThreadCopied] = []
        report = copy(memory, harness, on_thread=progress.append)
        assert [p.thread_id for p in progress] == sorted(GRAPHS)
        assert [(p.done, p.total, p.skipped) for p in progress] == [
            (n, 5, False) for n in range(1, 6)]
        assert sum(p.checkpoints for p in progress) == report.checkpoints
        assert_identical_threads(memory, harness)
    with side("memory", harness.mode, tmp_path) as back:
        back.loop = harness.loop
        report = copy(harness, back, thread_ids=["sub", "paused"])
        assert report.threads == 2
        graphs_a, graphs_b = compiled(harness), compiled(back)
        for name in ("sub", "paused"):
            assert harness.get_state_history(graphs_a[name], thread(name)) == \
                back.get_state_history(graphs_b[name], thread(name))
        assert back.call("list", thread("fan")) == []
        with pytest.raises(ConfigurationError, match="'nope' has no checkpoints"):
            copy(harness, back, thread_ids=["nope"])


# --- threads that already exist ----------------------------------------------------------


def test_existing_threads_fail_skip_or_replace(harness: Harness, tmp_path: Path) -> None:
    with side("memory", "sync", tmp_path) as memory:
        graph = linear_graph().compile(checkpointer=memory.saver)
        for name in ("one", "two"):
            graph.invoke({"log": [name]}, thread(name))
        text = export_text(memory)
    mine = linear_graph().compile(checkpointer=harness.saver)
    harness.invoke(mine, {"log": ["mine"]}, thread("two"))
    before = harness.get_state_history(mine, thread("two"))
    with pytest.raises(ConfigurationError, match="thread 'two' already exists"):
        import_text(harness, text)
    assert harness.get_state_history(mine, thread("two")) == before  # untouched
    report = import_text(harness, text, if_exists="skip")
    assert report.skipped == ("one", "two") and report.threads == 0  # "one" came first
    assert harness.get_state(mine, thread("two")).values["log"] == ["mine", "a", "b", "c"]
    report = import_text(harness, text, if_exists="replace")
    assert report.threads == 2 and report.skipped == ()
    assert export_text(harness) == text
    with pytest.raises(ConfigurationError, match="if_exists must be one of"):
        import_text(harness, text, if_exists="merge")


# --- encrypted stores -------------------------------------------------------------------------

SECRET = "TOPSECRET-7f3a"


def decoded_data(text: str) -> bytes:
    """Every base64 ``data`` field of an export, decoded and joined."""
    return b"".join(base64.b64decode(m) for m in re.findall(r'"data":"([^"]*)"', text))


def encrypted(key: bytes = b"0123456789abcdef") -> EncryptedSerializer:
    return EncryptedSerializer.from_pycryptodome_aes(key=key)


@pytest.mark.parametrize(("kind", "mode"), [("sqlite", "sync"), ("postgres", "async")])
def test_encrypted_store_exports_ciphertext(tmp_path: Path, kind: str, mode: str) -> None:
    with side(kind, mode, tmp_path / "enc", serde=encrypted()) as h:
        graph = interrupt_graph().compile(checkpointer=h.saver)
        h.invoke(graph, {"topic": SECRET}, thread("enc"))
        text = export_text(h)
        assert SECRET not in text and SECRET.encode() not in decoded_data(text)
        kinds = set(re.findall(r'\{"type":"([^"]+)","data"', text))
        assert kinds and all(kind.endswith("+aes") for kind in kinds), kinds
        with side("memory", mode, tmp_path, serde=encrypted()) as same_key:
            same_key.loop = h.loop
            import_text(same_key, text)
            assert same_key.get_state_history(
                interrupt_graph().compile(checkpointer=same_key.saver), thread("enc")
            ) == h.get_state_history(graph, thread("enc"))
        for other in (None, encrypted(b"fedcba9876543210")):
            target = InMemorySaver(serde=other)
            with pytest.raises(ConfigurationError, match="serializer cannot read"):
                import_threads(target, io.StringIO(text))
            assert list(target.list(None)) == []
        plain = InMemorySaver()  # a copy passes values as objects: it decrypts
        if mode == "sync":
            copy_threads(h.saver, plain)
        else:
            h.wait(acopy_threads(h.saver, plain))
        out = io.StringIO()
        export_threads(plain, out)
        assert SECRET.encode() in decoded_data(out.getvalue())
        assert value_entries(text) == value_entries(out.getvalue())  # once each, encrypted too


def value_entries(text: str) -> list[tuple[str, str]]:
    """The (checkpoint id, channel) of every channel value an export gives."""
    records = [json.loads(line) for line in text.splitlines()[1:-1]]
    return [(r["checkpoint_id"], channel) for r in records if r["type"] == "checkpoint"
            for channel in r["channel_values"]]

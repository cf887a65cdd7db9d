"""Append-delta storage under compiled graphs: threads whose list channels are stored as
appended pieces read back exactly as an ``InMemorySaver``'s, and pieces really are stored.

Every test runs one script on the saver under test and on an ``InMemorySaver`` in the same
mode (`tests.helpers.differential`) and compares ``get_state`` and the whole
``get_state_history`` (messages field by field, fixed ids), and every checkpoint read
alone. What the store holds is read around the saver (`RawStore`): how many values of a
channel are whole and how many are pieces, so a test fails when pieces silently stop
(or appear where a value must be whole). Graphs: `tests.helpers.append_deltas`.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer

from langgraph_persist_kit import afork_session, fork_session
from langgraph_persist_kit.concurrency import LockedGraph
from tests.helpers.append_deltas import (
    RawStore,
    assert_same_everywhere,
    assert_same_namespaces,
    channel_bytes,
    fan_chat_graph,
    human,
    reopened,
    scripted_chat_graph,
    subgraph_chat_graph,
    turns,
)
from tests.helpers.backends import Space
from tests.helpers.differential import Side, run_concurrently, sides, thread
from tests.helpers.graphs import chat_graph, fanout_graph, linear_graph
from tests.helpers.harness import Harness, open_harness

PLAIN = [f"turn {n} " + "words " * (n % 5) for n in range(20)]


@pytest.fixture
def space(tmp_path: Path) -> Space:
    """The space the ``harness`` fixture opened its store in."""
    return Space(tmp_path, __name__)


def memory_side(harness: Harness, build: Any, **saver_options: Any) -> Side:
    reference = Harness("memory", harness.mode, InMemorySaver(**saver_options), harness.loop)
    return reference, build().compile(checkpointer=reference.saver)


# --- 1. lists that only grow ----------------------------------------------------------


def test_a_long_chat_is_stored_as_pieces_and_reads_like_in_memory(
        harness: Harness, space: Space) -> None:
    """20 turns of ``add_messages``: one whole value, every later version a piece, the
    rebuilt bytes far above the stored ones, every checkpoint exact."""
    pair = sides(harness, chat_graph)
    turns(pair, PLAIN, thread())
    history = assert_same_everywhere(pair, thread())
    assert len(history[0]["values"]["messages"]) == 40 and len(history) == 60
    assert RawStore.of(harness, space).kinds("thread-1", "messages") == {"whole": 1,
                                                                          "piece": 39}
    stored, rebuilt = channel_bytes(harness, "thread-1")
    assert rebuilt > 3 * stored, (stored, rebuilt)


def test_an_operator_add_list_is_stored_as_pieces(harness: Harness, space: Space) -> None:
    """A plain ``operator.add`` list of strings: pieces, read back exactly."""
    pair = sides(harness, linear_graph)
    for n in range(10):
        outputs = [h.invoke(g, {"log": [f"in-{n}", n]}, thread()) for h, g in pair]
        assert outputs[0] == outputs[1]
    history = assert_same_everywhere(pair, thread())
    assert len(history[0]["values"]["log"]) == 10 * 5
    kinds = RawStore.of(harness, space).kinds("thread-1", "log")
    assert kinds["whole"] == 1 and kinds["piece"] == 39, kinds


# --- 2 and 3. lists changed in place, replaced, removed, cleared, trimmed -------------


def test_messages_changed_in_place_read_back_as_in_memory(harness: Harness,
                                                          space: Space) -> None:
    """A node that edits an earlier message in place (returned or not): each such version
    is stored whole and reads back with the edit; appends after it are pieces again.
    Durability ``"sync"``: each step's checkpoint is stored before the next step edits."""
    pair = sides(harness, scripted_chat_graph)
    script = ["hello", "more", "edit", "more", "edit-silently", "more", "edit", "more"]
    turns(pair, script, thread(), durability="sync")  # see `turns`
    history = assert_same_everywhere(pair, thread())
    first = history[0]["values"]["messages"][0]
    assert first.content == "hello / edited 3 / silently 5 / edited 7" and first.id == "h-0"
    kinds = RawStore.of(harness, space).kinds("thread-1", "messages")
    assert kinds == {"whole": 1 + 3, "piece": 2 * len(script) - 4}, kinds


def test_replaced_removed_cleared_and_trimmed_messages(harness: Harness,
                                                       space: Space) -> None:
    """Replace by id, ``RemoveMessage`` of a middle message, ``REMOVE_ALL_MESSAGES``, a
    trim through remove-all and an ``Overwrite``: each stored whole, exact on read; and a
    list channel without reducer (``window``) that grows, then is cut."""
    pair = sides(harness, scripted_chat_graph)
    script = ["hi", "next", "replace", "next", "remove", "next", "next", "clear", "next",
              "next", "trim", "next", "overwrite", "next", "next"]
    turns(pair, script, thread())
    history = assert_same_everywhere(pair, thread())
    messages = history[0]["values"]["messages"]
    assert [m.id for m in messages] == ["h-11", "re-h-11", "h-12", "re-h-12",  # overwrite
                                        "h-13", "re-h-13", "h-14", "re-h-14"]
    raw = RawStore.of(harness, space)
    assert raw.kinds("thread-1", "messages") == {"whole": 1 + 5, "piece": 2 * 15 - 6}
    assert raw.kinds("thread-1", "window") == {"whole": 1 + 1, "piece": 15 - 2}


# --- 4. time travel and forks ---------------------------------------------------------


def _after_turn(h: Harness, graph: Any, config: dict, messages: int) -> dict:
    """The config of the (oldest) checkpoint that ends a turn with ``messages`` messages."""
    found = [s for s in h.get_state_history(graph, config)
             if s.next == () and len(s.values.get("messages", [])) == messages]
    return found[-1].config


def test_time_travel_appends_from_a_middle_checkpoint(harness: Harness,
                                                      space: Space) -> None:
    """``invoke`` from a middle checkpoint and ``update_state`` there, then going on: every
    branch reads back as in memory, and appends on a branch after its first are pieces."""
    pair = sides(harness, chat_graph)
    config = thread()
    turns(pair, PLAIN[:8], config)
    for n, (h, g) in enumerate(pair):
        middle = _after_turn(h, g, config, 8)
        h.invoke(g, human("branch a", "a"), middle)
        updated = h.update_state(g, middle, {"messages": [AIMessage("note", id="note")]},
                                 as_node="bot")
        assert updated["configurable"]["checkpoint_id"] != middle["configurable"][
            "checkpoint_id"], n
        h.invoke(g, human("branch b", "b"), updated)
    turns(pair, PLAIN[8:12], config, start=8)
    history = assert_same_everywhere(pair, config)
    ids = [m.id for m in history[0]["values"]["messages"]]
    assert ids[8:12] == ["note", "h-b", "ai-5", "h-8"]
    assert len(ids) == 8 + 1 + 2 + 2 * 4
    # LangGraph reads the thread's latest checkpoint right after the one a branch starts
    # from, and the saver remembers the last value it read: each branch's first value is
    # stored whole (the root, "branch a", the update); every other version is a piece
    kinds = RawStore.of(harness, space).kinds("thread-1", "messages")
    assert kinds == {"whole": 3, "piece": 2 * 8 + 2 + 1 + 2 + 2 * 4 - 3}, kinds


def fork(h: Harness, graph: Any, config: dict, new_thread_id: str) -> str:
    if h.mode == "sync":
        return fork_session(graph, config, new_thread_id=new_thread_id)
    return h.wait(afork_session(graph, config, new_thread_id=new_thread_id))


def test_a_forked_session_and_its_source_go_on_like_in_memory(harness: Harness,
                                                              space: Space) -> None:
    """``fork_session`` from the middle of a delta-stored thread, then both threads go on:
    both histories equal the in-memory ones, and both keep storing pieces."""
    pair = sides(harness, chat_graph)
    source, forked = thread("source"), thread("fork")
    turns(pair, PLAIN[:10], source)
    for h, g in pair:
        assert fork(h, g, _after_turn(h, g, source, 10), "fork") == "fork"
    assert_same_everywhere(pair, forked)
    turns(pair, [f"source {n}" for n in range(4)], source, start=10)
    turns(pair, [f"fork {n}" for n in range(4)], forked, start=100)
    source_history = assert_same_everywhere(pair, source)
    fork_history = assert_same_everywhere(pair, forked)
    assert len(source_history[0]["values"]["messages"]) == 28
    assert [m.id for m in fork_history[0]["values"]["messages"]][9:12] == ["ai-5", "h-100",
                                                                           "ai-6"]
    raw = RawStore.of(harness, space)  # the fork holds its 10 versions up to the fork, + 8
    assert raw.kinds("source", "messages") == {"whole": 1, "piece": 2 * 14 - 1}
    assert raw.kinds("fork", "messages") == {"whole": 1, "piece": 2 * 9 - 1}


# --- 5. fan-out and subgraphs ---------------------------------------------------------


def test_send_tasks_appending_in_one_step(harness: Harness, space: Space) -> None:
    """Several ``Send`` tasks append to one list in one super-step: messages and a plain
    ``operator.add`` list, turn after turn; pieces, in the in-memory order."""
    pair = sides(harness, fan_chat_graph)
    turns(pair, [f"fan {n}" for n in range(6)], thread(), width=4)
    history = assert_same_everywhere(pair, thread())
    assert [m.id for m in history[0]["values"]["messages"]][-5:] == [
        "h-5", "w6-0", "w6-1", "w6-2", "w6-3"]
    fans = sides(harness, fanout_graph)
    for count in (3, 4, 2, 5):
        outputs = [h.invoke(g, {"count": count}, thread("results")) for h, g in fans]
        assert outputs[0] == outputs[1]
    assert_same_everywhere(fans, thread("results"))
    raw = RawStore.of(harness, space)
    assert raw.kinds("thread-1", "messages") == {"whole": 1, "piece": 11}
    assert raw.kinds("results", "results") == {"whole": 1, "piece": 4 * 3 - 1}


def test_a_subgraph_namespace_keeps_its_own_list(harness: Harness, space: Space) -> None:
    """A subgraph appends to its own list under its checkpoint namespace: its checkpoints
    read back like the in-memory ones, and its list is stored as pieces there."""
    pair = sides(harness, subgraph_chat_graph)
    turns(pair, [f"ask {n}" for n in range(4)], thread())
    history = assert_same_everywhere(pair, thread())
    assert [m.id for m in history[0]["values"]["messages"]][-2:] == ["h-3", "ai-4"]
    inner = assert_same_namespaces(pair, "thread-1")
    assert {ns for ns, *_ in inner} == {"child"}
    assert [m.id for m in inner[-1][2]["scratch"]] == [f"t4-{n}" for n in range(6)]
    raw = RawStore.of(harness, space)
    assert raw.kinds("thread-1", "scratch", namespaces="sub") == {"whole": 4, "piece": 4 * 5}
    assert raw.kinds("thread-1", "messages")["whole"] == 1


# --- 6. concurrent runs on one thread -------------------------------------------------


def test_locked_runs_at_once_on_one_thread(harness: Harness, space: Space) -> None:
    """Runs started at once on one thread under `LockedGraph` (threads or tasks) take
    turns: the thread equals the same turns run one by one in memory, in the order the
    lock let them in, and stays stored as pieces."""
    graph = chat_graph().compile(checkpointer=harness.saver)
    locked, config = LockedGraph(graph), thread("busy")
    for round_ in range(2):
        run_concurrently(harness, [(locked, human(f"c{round_}{i}", f"{round_}{i}"), config)
                                   for i in range(5)])
    messages = harness.get_state(graph, config).values["messages"]
    assert [m.type for m in messages] == ["human", "ai"] * 10
    assert sorted(m.id for m in messages[::2]) == sorted(
        f"h-{r}{i}" for r in range(2) for i in range(5))
    reference, ref_graph = memory_side(harness, chat_graph)
    for m in messages[::2]:
        reference.invoke(ref_graph, {"messages": [m.model_copy()]}, config)
    assert_same_everywhere([(harness, graph), (reference, ref_graph)], config)
    assert RawStore.of(harness, space).kinds("busy", "messages") == {"whole": 1, "piece": 19}


def test_threads_at_once_on_one_saver(harness: Harness, space: Space) -> None:
    """Chats on several threads run at once on one saver, whose memory they share: each
    thread equals its in-memory run and is stored as pieces."""
    pair = sides(harness, chat_graph)
    users = [f"user-{n}" for n in range(4)]
    for turn in range(5):
        for h, g in pair:
            run_concurrently(h, [(g, human(f"{u} says {turn}", f"{u}-{turn}"), thread(u))
                                 for u in users])
    raw = RawStore.of(harness, space)
    for user in users:
        history = assert_same_everywhere(pair, thread(user))
        assert len(history[0]["values"]["messages"]) == 10
        assert raw.kinds(user, "messages") == {"whole": 1, "piece": 9}, user


# --- 7. restarts and a cold cache -----------------------------------------------------


def test_a_restart_and_a_cold_cache_stay_exact(harness: Harness, space: Space) -> None:
    """A saver closed and a new one opened on the store (a restart) goes on with the
    thread, alternating with a third (another process); a cache emptied between turns or
    in the middle of a run: all exact, values not remembered are stored whole, and pieces
    resume at once because each run's read teaches the saver the latest values."""
    reference, ref_graph = memory_side(harness, scripted_chat_graph)
    config = thread()
    for before in reopened(harness, space):
        graph = scripted_chat_graph().compile(checkpointer=before.saver)
        turns([(before, graph), (reference, ref_graph)], ["a0", "a1", "a2", "a3"], config)
    other = [(harness, scripted_chat_graph().compile(checkpointer=harness.saver)),
             (reference, ref_graph)]
    raw = RawStore.of(harness, space)
    for again in reopened(harness, space):
        assert len(again.saver.deltas) == 0
        build = scripted_chat_graph(on_forget=again.saver.deltas.forget)
        ours = [(again, build.compile(checkpointer=again.saver)), (reference, ref_graph)]
        turns(ours, ["b4", "b5"], config, start=4)
        turns(other, ["c6"], config, start=6)  # another saver reads, then appends
        turns(ours, ["d7"], config, start=7)
        assert raw.kinds("thread-1", "messages") == {"whole": 1, "piece": 15}
        again.saver.deltas.forget()  # a cold cache between turns
        turns(ours, ["e8"], config, start=8)
        assert len(again.saver.deltas) > 0
        # durability "sync": the step's checkpoint is stored before "forget" runs (a put
        # still in flight would remember its value again when it ends)
        turns(ours, ["forget 9", "e10", "forget 11", "e12"], config, start=9,
              durability="sync")
        assert_same_everywhere(ours, config)
        assert_same_everywhere(other, config)
        # the two replies of "forget" were written right after the cache was emptied
        assert raw.kinds("thread-1", "messages") == {"whole": 3, "piece": 2 * 13 - 3}
        assert raw.kinds("thread-1", "window") == {"whole": 3, "piece": 13 - 3}


# --- deleting what pieces extend ---------------------------------------------------------


def test_deleted_runs_and_a_pruned_thread_keep_their_pieces_readable(
        harness: Harness, space: Space) -> None:
    """``delete_for_runs`` (the first run's whole value among them) and ``prune_thread``
    delete checkpoints whose values later pieces extend: every checkpoint left reads back
    as before, cache emptied too, and the thread goes on like in memory from there."""
    graph = scripted_chat_graph().compile(checkpointer=harness.saver)
    config = thread()
    runs = [str(uuid.UUID(int=n + 1)) for n in range(8)]
    for n, run in enumerate(runs):
        harness.invoke(graph, human(f"t{n}", n), {**config, "metadata": {"run_id": run}})
    before = {s.config["configurable"]["checkpoint_id"]: s.values
              for s in harness.get_state_history(graph, config)}
    harness.call("delete_for_runs", [runs[0], runs[3], runs[7]])
    assert harness.call("prune_thread", "thread-1", 9) == 3 * 2  # runs 1 and 2 go
    harness.saver.deltas.forget()
    left = harness.get_state_history(graph, config)
    assert [s.metadata["run_id"] for s in left] == [r for r in runs[4:7][::-1] for _ in "abc"]
    for snap in left:
        want = before[snap.config["configurable"]["checkpoint_id"]]
        assert snap.values == want
        assert harness.get_state(graph, snap.config).values == want
    reference, ref_graph = memory_side(harness, scripted_chat_graph)
    for n in range(7):
        reference.invoke(ref_graph, human(f"t{n}", n), config)
    turns([(harness, graph), (reference, ref_graph)], ["u8", "u9"], config, start=8)
    assert harness.get_state(graph, config).values == reference.get_state(ref_graph,
                                                                          config).values
    kinds = RawStore.of(harness, space).kinds("thread-1", "messages")
    assert kinds["whole"] == 1 and kinds["piece"] >= 2 * 3 + 4, kinds


# --- 8. encryption --------------------------------------------------------------------


def encrypted() -> EncryptedSerializer:
    return EncryptedSerializer.from_pycryptodome_aes(key=b"0123456789abcdef")


def holds(dump: bytes, text: str) -> bool:
    """Whether a store dump holds ``text``, as is or hex-encoded (PostgreSQL ``bytea``)."""
    return text.encode() in dump or text.encode().hex().encode() in dump


def test_encrypted_values_are_stored_whole_and_never_in_plaintext(
        harness: Harness, space: Space, tmp_path: Path) -> None:
    """Under an ``EncryptedSerializer`` every value is stored whole (no piece could be
    encrypted apart) and no message text is in the store; the same dump of an unencrypted
    store does show its text, so the check can see plaintext."""
    plain = sides(harness, chat_graph)
    turns(plain, ["PLAIN-canary-text"], thread("plain"))
    assert holds(RawStore.of(harness, space).dump(), "PLAIN-canary-text")

    (tmp_path / "encrypted").mkdir()
    enc_space = Space(tmp_path / "encrypted", space.module)
    for ours in open_harness(harness.backend, harness.mode, enc_space, serde=encrypted()):
        pair = [(ours, chat_graph().compile(checkpointer=ours.saver)),
                memory_side(ours, chat_graph, serde=encrypted())]
        secrets = [f"SECRET-{n}-message-text" for n in range(12)]
        turns(pair, secrets, thread("enc-thread"))
        history = assert_same_everywhere(pair, thread("enc-thread"))
        assert [m.content for m in history[0]["values"]["messages"][::2]] == secrets
        raw = RawStore.of(ours, enc_space)
        assert raw.kinds("enc-thread", "messages") == {"whole": 24, "piece": 0}
        stored, rebuilt = channel_bytes(ours, "enc-thread")
        assert rebuilt <= stored  # PostgreSQL counts its varlena headers in stored bytes
        if ours.backend != "postgres":
            assert rebuilt == stored
        dump = raw.dump()
        assert holds(dump, "enc-thread")  # the dump is of this store
        for text in [*secrets, "reply 3 to", "SECRET-"]:
            assert not holds(dump, text), text

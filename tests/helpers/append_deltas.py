"""Graphs and store readers for the append-delta differential tests (test_append_deltas.py).

Owns: the graphs whose list channels grow, shrink and change in place (`scripted_chat_graph`,
`fan_chat_graph`, `subgraph_chat_graph`), running human turns on both sides of a
differential pair (`turns`), the checks that every checkpoint reads back like the
``InMemorySaver``'s (`assert_same_everywhere`, `assert_same_namespaces`), a second saver
on a harness's store (`reopened`: a restart, or another process), and `RawStore`,
which reads what a store really holds: how many values of each channel are whole and how
many are appended pieces, and every stored byte (to look for plaintext). Deterministic
message ids everywhere, so that messages compare field by field, ids included.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypedDict

import psycopg
import redis
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, RemoveMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.message import REMOVE_ALL_MESSAGES, add_messages
from langgraph.types import Overwrite, Send
from psycopg import sql
from redis.cluster import RedisCluster

from langgraph_persist_kit import async_saver_from_url, saver_from_url
from langgraph_persist_kit._core.deltas import APPEND
from langgraph_persist_kit.redis._keys import PIECE_TAG, THREAD_KINDS, split_field
from tests.helpers.backends import Space, postgres_url, redis_cluster_url, redis_url
from tests.helpers.differential import Side, assert_same_thread, thread
from tests.helpers.graphs import one_node_graph
from tests.helpers.harness import Harness

# --- graphs -----------------------------------------------------------------------------


class ScriptState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    window: list  # no reducer: every write replaces the list


def _turn(messages: list[AnyMessage]) -> int:
    return sum(1 for m in messages if m.type == "human")


def scripted_chat_graph(on_forget: Callable[[], None] = lambda: None) -> StateGraph:
    """``bot`` answers each human turn ``h-<n>`` with ``re-h-<n>``; the first word of the
    turn picks what else it does to ``messages`` (and to ``window``, a list it rewrites
    every turn):

    ``edit`` changes the first message in place and returns it; ``edit-silently`` changes
    it in place and returns only the reply; ``replace`` re-sends ``re-h-0`` with new content;
    ``remove`` removes the middle message; ``clear`` removes all and starts with a summary;
    ``trim`` keeps the last four (and the last two of ``window``); ``overwrite`` writes the
    last three plus the reply past the reducer; ``forget`` calls ``on_forget`` (ours: empty
    the saver's append-delta memory mid-run). Any other word just appends the reply.
    """

    def bot(state: ScriptState) -> dict:
        messages = state["messages"]
        turn, text = _turn(messages), str(messages[-1].content)
        command = text.split()[0]
        reply = AIMessage(f"reply {turn} to {text!r}", id=f"re-{messages[-1].id}",
                          additional_kwargs={"turn": turn}, response_metadata={"cmd": command})
        window = [*state.get("window", []), f"w{turn}"]
        update: Any = [reply]
        if command == "edit":
            messages[0].content = f"{messages[0].content} / edited {turn}"
            update = [messages[0], reply]
        elif command == "edit-silently":
            messages[0].content = f"{messages[0].content} / silently {turn}"
        elif command == "replace":
            update = [AIMessage(f"replaced at {turn}", id="re-h-0", name="rewriter"), reply]
        elif command == "remove":
            update = [RemoveMessage(id=str(messages[len(messages) // 2].id)), reply]
        elif command == "clear":
            summary = HumanMessage(f"summary of {len(messages)}", id=f"summary-{turn}")
            update = [RemoveMessage(id=REMOVE_ALL_MESSAGES), summary, reply]
        elif command == "trim":
            update = [RemoveMessage(id=REMOVE_ALL_MESSAGES), *messages[-4:], reply]
            window = window[-2:]
        elif command == "overwrite":
            update = Overwrite([*messages[-3:], reply])
        elif command == "forget":
            on_forget()
        return {"messages": update, "window": window}

    return one_node_graph(ScriptState, bot)


class FanChatState(MessagesState, total=False):
    width: int


def fan_chat_graph() -> StateGraph:
    """Each human turn sends ``width`` ``worker`` tasks that each append one message to
    ``messages`` in the same super-step."""

    def route(state: FanChatState) -> list[Send]:
        turn = _turn(state["messages"])
        return [Send("worker", {"turn": turn, "i": i}) for i in range(state["width"])]

    def worker(arg: dict) -> dict:
        turn, i = arg["turn"], arg["i"]
        return {"messages": [AIMessage(f"worker {i} of turn {turn}", id=f"w{turn}-{i}")]}

    builder = StateGraph(FanChatState)
    builder.add_node("worker", worker)
    builder.add_conditional_edges(START, route, ["worker"])
    builder.add_edge("worker", END)
    return builder


class InnerState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    scratch: Annotated[list[AnyMessage], add_messages]


def subgraph_chat_graph(steps: int = 6) -> StateGraph:
    """A chat whose turn runs ``child``, a subgraph (its own checkpoint namespace) that
    appends ``steps`` thoughts to its own ``scratch`` list, then answers in ``messages``."""

    def think(state: InnerState) -> dict:
        turn, n = _turn(state["messages"]), len(state.get("scratch", []))
        return {"scratch": [AIMessage(f"thought {n} of turn {turn}", id=f"t{turn}-{n}")]}

    def answer(state: InnerState) -> dict:
        turn = _turn(state["messages"])
        text = f"answer {turn} after {len(state['scratch'])} thoughts"
        return {"messages": [AIMessage(text, id=f"ai-{turn}")]}

    child = StateGraph(InnerState)
    child.add_node("think", think)
    child.add_node("answer", answer)
    child.add_edge(START, "think")
    child.add_conditional_edges(
        "think", lambda s: "think" if len(s["scratch"]) < steps else "answer", ["think", "answer"])
    child.add_edge("answer", END)

    builder = StateGraph(MessagesState)
    builder.add_node("child", child.compile())
    builder.add_edge(START, "child")
    builder.add_edge("child", END)
    return builder


# --- running and comparing --------------------------------------------------------------


def human(text: str, n: int | str) -> dict:
    """The input of one human turn, with a fixed id."""
    return {"messages": [HumanMessage(text, id=f"h-{n}")]}


def turns(pair: list[Side], texts: Iterable[str], config: dict, *, start: int = 0,
          durability: str | None = None, **extra: Any) -> None:
    """One human turn per text on both sides (``extra`` joins every input); the outputs
    must be equal. ``durability`` ``None`` is LangGraph's default (``"async"``: a step's
    checkpoint is put while the next step runs, so the serializer may see a later in-place
    edit, on any saver, ``InMemorySaver`` too, as soon as its put is slower)."""
    kwargs = {} if durability is None else {"durability": durability}
    for n, text in enumerate(texts, start=start):
        outputs = [h.invoke(g, {**human(text, n), **extra}, config, **kwargs) for h, g in pair]
        assert outputs[0] == outputs[1], (n, text)


def assert_same_everywhere(pair: list[Side], config: dict, ref_config: dict | None = None,
                           **get_state_kwargs: Any) -> list[dict]:
    """`assert_same_thread`, and each checkpoint read alone (``get_state`` at its id: one
    ``get_tuple``, which rebuilds values apart from ``list``) equal on both sides.
    Returns the normalised history."""
    history = assert_same_thread(pair, config, ref_config, **get_state_kwargs)
    (ours, ours_graph), (ref, ref_graph) = pair
    ours_snaps = ours.get_state_history(ours_graph, config)
    ref_snaps = ref.get_state_history(ref_graph, ref_config or config)
    for at, (a, b) in enumerate(zip(ours_snaps, ref_snaps, strict=True)):
        got = ours.get_state(ours_graph, a.config, **get_state_kwargs)
        want = ref.get_state(ref_graph, b.config, **get_state_kwargs)
        assert (got.values, got.next) == (want.values, want.next), at
        assert got.values == a.values, at
    return history


def namespace_checkpoints(h: Harness, thread_id: str) -> list[tuple[str, str, dict, Any]]:
    """Every checkpoint of a thread in a subgraph namespace, oldest first, as ``(namespace
    without task id, source, channel values, step)``."""
    listed = [t for t in h.call("list", thread(thread_id)) if t.config["configurable"]
              ["checkpoint_ns"]]
    listed.sort(key=lambda t: t.config["configurable"]["checkpoint_id"])
    return [("|".join(p.split(":")[0] for p in t.config["configurable"]["checkpoint_ns"]
                      .split("|")), t.metadata["source"], t.checkpoint["channel_values"],
             t.metadata["step"]) for t in listed]


def assert_same_namespaces(pair: list[Side], thread_id: str) -> list[tuple[str, str, dict, Any]]:
    """Both sides hold the same subgraph checkpoints (values included); returns ours."""
    got, want = (namespace_checkpoints(h, thread_id) for h, _ in pair)
    assert got == want
    return got


# --- another saver on the same store ----------------------------------------------------


def store_url_of(h: Harness, space: Space) -> str:
    """The URL of the store ``h`` was opened on in ``space`` (`tests.helpers.backends`)."""
    if h.backend == "sqlite":
        return f"sqlite:///{space.path / 'store.db'}"
    if h.backend == "postgres":
        return f"{postgres_url(space.module)}?schema={h.saver.plans.schema}"
    server = redis_cluster_url() if h.backend == "redis-cluster" else redis_url()
    return f"{server}?key_prefix={h.saver.plans.keys.prefix}"


def reopened(h: Harness, space: Space) -> Iterator[Harness]:
    """A new saver on ``h``'s store, in ``h``'s mode (a new connection, nothing remembered:
    another process, or this one after a restart), closed when the generator ends. The
    store's keys stay: the ``harness`` fixture drops them."""
    url = store_url_of(h, space)
    if h.mode == "sync":
        with saver_from_url(url) as saver:
            yield Harness(h.backend, h.mode, saver, None)
        return
    loop = asyncio.new_event_loop()
    try:
        manager = async_saver_from_url(url)
        saver = loop.run_until_complete(manager.__aenter__())
        try:
            yield Harness(h.backend, h.mode, saver, loop)
        finally:
            loop.run_until_complete(manager.__aexit__(None, None, None))
    finally:
        loop.close()


# --- what the store holds ---------------------------------------------------------------


@dataclass(frozen=True)
class RawStore:
    """A harness's store read around the saver: SQLite file, PostgreSQL schema or Redis
    key prefix."""

    backend: str
    path: Path
    module: str
    schema: str | None = None
    prefix: str | None = None

    @classmethod
    def of(cls, h: Harness, space: Space) -> RawStore:
        """The store ``h`` was opened on in ``space`` (`tests.helpers.backends`)."""
        plans = h.saver.plans
        return cls(h.backend, space.path / "store.db", space.module,
                   schema=getattr(plans, "schema", None),
                   prefix=plans.keys.prefix if h.backend.startswith("redis") else None)

    def _redis(self) -> Any:
        if self.backend == "redis-cluster":
            return RedisCluster.from_url(redis_cluster_url())
        return redis.Redis.from_url(redis_url())

    def value_rows(self, thread_id: str) -> list[tuple[str, str, bool]]:
        """``(namespace, channel, is a piece)`` of each stored channel value of a thread."""
        if self.backend == "sqlite":
            with sqlite3.connect(self.path) as conn:
                rows = conn.execute("SELECT checkpoint_ns, channel, type FROM channel_values "
                                    "WHERE thread_id = ?", (thread_id,)).fetchall()
            return [(ns, ch, type_ == APPEND) for ns, ch, type_ in rows]
        if self.backend == "postgres":
            query = sql.SQL("SELECT checkpoint_ns, channel, type FROM {}.channel_values "
                            "WHERE thread_id = %s").format(sql.Identifier(str(self.schema)))
            with psycopg.connect(postgres_url(self.module)) as conn:
                rows = conn.execute(query, (thread_id,)).fetchall()
            return [(ns, ch, type_ == APPEND) for ns, ch, type_ in rows]
        from langgraph_persist_kit.redis._keys import KeySpace

        key = KeySpace(str(self.prefix)).thread_keys(thread_id)[THREAD_KINDS.index("val")]
        client = self._redis()
        try:
            payloads = client.hgetall(key)
        finally:
            client.close()
        out = []
        for field, payload in payloads.items():
            ns, channel, _version = split_field(field.decode("utf-8", "surrogatepass"))
            out.append((ns, channel, payload.startswith(PIECE_TAG)))
        return out

    def kinds(self, thread_id: str, channel: str, *,
              namespaces: str = "root") -> Counter[str]:
        """``Counter(whole=..., piece=...)`` of a channel's stored values in the root
        namespace (``namespaces="root"``) or in every subgraph namespace (``"sub"``)."""
        counts: Counter[str] = Counter(whole=0, piece=0)
        for ns, ch, piece in self.value_rows(thread_id):
            if ch == channel and (ns == "") == (namespaces == "root"):
                counts["piece" if piece else "whole"] += 1
        return counts

    def dump(self) -> bytes:
        """Every byte the store holds (for SQLite its file and WAL; PostgreSQL every table
        as text; Redis every key and value under the prefix)."""
        if self.backend == "sqlite":
            files = [self.path, self.path.with_name(self.path.name + "-wal")]
            return b"".join(f.read_bytes() for f in files if f.exists())
        if self.backend == "postgres":
            with psycopg.connect(postgres_url(self.module)) as conn:
                tables = [r[0] for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    (self.schema,))]
                assert "channel_values" in tables, tables
                return "\n".join(
                    str(row[0]) for table in tables for row in conn.execute(
                        sql.SQL("SELECT t::text FROM {}.{} AS t").format(
                            sql.Identifier(str(self.schema)), sql.Identifier(table)))
                ).encode()
        client = self._redis()
        parts: list[bytes] = []
        try:
            for key in client.scan_iter(match=f"{self.prefix}:*", count=1000):
                kind = client.type(key)
                parts.append(key)
                if kind == b"hash":
                    parts += [b for pair in client.hgetall(key).items() for b in pair]
                elif kind == b"zset":
                    parts += client.zrange(key, 0, -1)
                elif kind == b"string":
                    parts.append(client.get(key) or b"")
        finally:
            client.close()
        return b"\n".join(parts)


def channel_bytes(h: Harness, thread_id: str, channel: str = "messages") -> tuple[int, int]:
    """``(stored bytes, rebuilt bytes)`` of a root-namespace channel, from ``stats``."""
    stats = h.call("stats", thread_id=thread_id)
    found = [(c["bytes"], c["rebuilt_bytes"]) for c in stats["channels"]
             if c["checkpoint_ns"] == "" and c["channel"] == channel]
    assert len(found) == 1, stats["channels"]
    return found[0]

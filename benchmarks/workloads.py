"""Workload builders shared by the benchmark suites; none depends on a backend.

Checkpoints as LangGraph's loop makes them (`ThreadScript`, `fill`), the chat
super-step workload (`chat_work`, `warm_chat_work`), reads of a thread's latest
checkpoint (`read_work`, `length_rows`), the small compiled graphs (`compile_graph`,
`FLOW`, `graph_work`, `graph_rows`), many concurrent chats on one async saver
(`concurrent_chat`) and the serialisation a chat step or a read cannot avoid
(`serde_trial`, `read_serde_trial`).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timezone
from typing import Annotated, Any, NamedTuple, TypedDict

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from benchmarks.cases import Case, Derived, Target
from benchmarks.trials import Work, time_each
from langgraph_persist_kit._core.calls import Call, aexecute, execute

HUMAN = "Can you check the status of order #{n} and tell me when it ships? Thanks a lot!"
AI = ("Order #{n} was packed this morning and leaves our warehouse tomorrow; the tracking "
      "number will be e-mailed to you as soon as the carrier scans the parcel. Anything else?")
TRIAL = itertools.count()  # numbers thread ids, so trials of one run never share a thread


# --- checkpoints as LangGraph's loop makes them --------------------------------------------


class Put(NamedTuple):
    config: dict
    checkpoint: dict
    metadata: dict
    new_versions: dict
    writes: list
    task_id: str

    def calls(self, saver: Any) -> list[Call]:
        """put_writes (the task's writes, against the parent), then put."""
        put = Call(saver.put, saver.aput,
                   (self.config, self.checkpoint, self.metadata, self.new_versions))
        if not self.writes:
            return [put]
        return [Call(saver.put_writes, saver.aput_writes, (self.config, self.writes, self.task_id)),
                put]


class ThreadScript:
    """One thread's checkpoints: full channel values, versions from the saver's own
    ``get_next_version`` and ``new_versions`` only for the channels that changed."""

    def __init__(self, saver: Any, thread_id: str, values: dict[str, Any], **metadata: Any):
        self.saver, self.thread_id, self.extra = saver, thread_id, metadata
        self.values: dict[str, Any] = dict(values)
        self.versions: dict[str, Any] = {}
        self.parent: str | None = None
        self.step = -1

    def advance(self, changes: dict[str, Any] | None = None, writes: list | None = None) -> Put:
        changes = dict(self.values) if self.step == -1 else (changes or {})
        previous = dict(self.versions)
        new_versions = {ch: self.saver.get_next_version(previous.get(ch), None) for ch in changes}
        self.values.update(changes)
        self.versions.update(new_versions)
        checkpoint: dict[str, Any] = dict(empty_checkpoint())
        checkpoint.update(
            id=str(uuid6(clock_seq=self.step)), ts=datetime.now(timezone.utc).isoformat(),
            channel_values=dict(self.values), channel_versions=dict(self.versions),
            versions_seen={"agent": {ch: previous[ch] for ch in changes if ch in previous}},
            updated_channels=sorted(changes),
        )
        conf = {"thread_id": self.thread_id, "checkpoint_ns": ""}
        if self.parent:
            conf["checkpoint_id"] = self.parent
        metadata = {"source": "input" if self.step == -1 else "loop", "step": self.step,
                    "parents": {}, **self.extra}
        put = Put({"configurable": conf}, checkpoint, metadata, new_versions,
                  list(writes or []) if self.parent else [], str(uuid6()))
        self.parent, self.step = checkpoint["id"], self.step + 1
        return put


def latest(thread_id: str) -> Any:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}


def chat_message(n: int) -> Any:
    """The chat's ``n``-th message: a `HumanMessage` for even ``n``, an `AIMessage` for odd."""
    kind, text = (HumanMessage, HUMAN) if n % 2 == 0 else (AIMessage, AI)
    return kind(text.format(n=n))


def chat_work(saver: Any, steps: int, thread_id: str = "chat", window: int | None = None
              ) -> Work:
    """6 channels; each step appends a message and bumps ``turn`` (2 change, 4 do not).

    With ``window``, the thread starts with ``window`` messages and each step also drops
    the oldest: a history of fixed size, so every step does the same work.
    """
    first = window or 0
    messages = [chat_message(n) for n in range(first)]
    script = ThreadScript(saver, thread_id, {
        "messages": messages, "turn": 0, "user_id": "u-42", "route": "agent",
        "locale": "en-US", "summary": "The user asks about order shipping; be concise and polite.",
    })
    setup, ops = script.advance().calls(saver), []
    for n in range(steps):
        message = chat_message(first + n)
        messages = [*messages, message][-first:] if window else [*messages, message]
        put = script.advance({"messages": messages, "turn": n + 1},
                             [("messages", [message]), ("turn", n + 1)])
        read = Call(saver.get_tuple, saver.aget_tuple, (latest(thread_id),))
        ops.append([*put.calls(saver), read])
    return Work(ops, setup)


SMALL_VALUES = {"counter": 0, "note": "note-0", "user": "u-1", "route": "agent", "lang": "en",
                "flags": {"beta": True}}


def fill(saver: Any, threads: Sequence[tuple[str, int] | tuple[str, int, dict[str, Any]]],
         values: dict[str, Any] = SMALL_VALUES) -> dict[str, str | None]:
    """``count`` checkpoints on each ``(thread_id, count)`` or ``(thread_id, count, metadata)``
    (extra metadata of every checkpoint), through the saver's own sync ``put_writes`` + ``put``:
    ``values`` first, then ``counter`` and ``note`` change at each checkpoint (2 pending writes
    each). Each thread's latest checkpoint id."""
    latest_ids = {}
    for thread_id, count, *extra in threads:
        script = ThreadScript(saver, thread_id, values, **(extra[0] if extra else {}))
        for i in range(count):
            put = script.advance({"counter": i, "note": f"note-{i}"},
                                 [("counter", i), ("note", f"note-{i}")])
            for c in put.calls(saver):
                execute(c)
        latest_ids[thread_id] = script.parent
    return latest_ids


def read_work(thread_id: str, calls: int, warm: int) -> Callable[[Any], Work]:
    """``calls`` timed ``get_tuple`` calls of the thread's latest checkpoint, after ``warm``
    untimed ones."""
    def work(saver: Any) -> Work:
        op = [Call(saver.get_tuple, saver.aget_tuple, (latest(thread_id),))]
        return Work([op] * calls, setup=op * warm)
    return work


def length_names(mode: str, small: int, big: int) -> tuple[str, str]:
    """The names of `length_rows`' short-thread and long-thread rows."""
    return (f"get_tuple(latest), {small:,} checkpoints, {mode}",
            f"get_tuple(latest), {big:,} checkpoints, {mode}")


def length_rows(mode: str, small: int, big: int, case: Callable[[str, str], Case],
                note: str = "get_tuple time on the long thread / on the short one"
                ) -> list[Case | Derived]:
    """get_tuple vs thread length in one mode: ``case(name, thread_id)`` on the ``"short"``
    thread (``small`` checkpoints) and on the ``"long"`` one (``big``), then long / short per
    saver (target: ours <= 1.3x)."""
    short, long = length_names(mode, small, big)
    return [case(short, "short"), case(long, "long"),
            Derived.quotient(f"{big:,}/{small:,} ratio, {mode}", long, short, note,
                             Target.ours_at_most(1.3, "ours <= 1.3x"))]


def warm_chat_work(saver: Any, steps: int, warm: int) -> Work:
    """`chat_work` on a new thread, after ``warm`` untimed steps on another new thread
    (so a saver's statements are prepared before the clock starts)."""
    n = next(TRIAL)
    warm_up, work = chat_work(saver, warm, f"warm-{n}"), chat_work(saver, steps, f"chat-{n}")
    return Work(work.ops, [*warm_up.setup, *(c for op in warm_up.ops for c in op), *work.setup])


# --- real compiled graphs ------------------------------------------------------------------


class ChatState(TypedDict):
    messages: Annotated[list, add_messages]
    blob: str


class FlowState(TypedDict):
    messages: Annotated[list, add_messages]
    context: str
    turns: int


def reply(state: Any) -> dict:
    return {"messages": [AIMessage(AI.format(n=len(state["messages"])))]}


def ask(n: int) -> dict:
    return {"messages": [HumanMessage(HUMAN.format(n=n))]}


FLOW = {  # section 5: three nodes in sequence
    "retrieve": lambda s: {"context": f"3 documents about order #{len(s['messages'])}"},
    "agent": reply,
    "post": lambda s: {"turns": s.get("turns", 0) + 1},
}


def compile_graph(state: type, nodes: dict[str, Callable], saver: Any, is_async: bool) -> Any:
    """``START -> node -> ... -> END``; async node functions for async savers."""
    builder: Any = StateGraph(state)
    previous = START

    def as_async(fn: Callable) -> Callable:
        async def node(state: Any) -> dict:
            return fn(state)
        return node

    for name, fn in nodes.items():
        builder.add_node(name, as_async(fn) if is_async else fn)
        builder.add_edge(previous, name)
        previous = name
    builder.add_edge(previous, END)
    return builder.compile(checkpointer=saver)


def checkpoints_per_invoke() -> int:
    """How many checkpoints one ``invoke`` of the `FLOW` graph writes (on an `InMemorySaver`)."""
    memory = InMemorySaver()
    compile_graph(FlowState, FLOW, memory, False).invoke(ask(0), latest("count"))
    return len(list(memory.list(latest("count"))))


def graph_work(invokes: int, is_async: bool, durability: str | None = None
               ) -> Callable[[Any], Work]:
    """The `FLOW` graph on a saver: ``invokes`` timed ``invoke`` calls (``ainvoke`` for an async
    saver, with async nodes) on a new thread, after one untimed invoke on another; with
    ``durability``, every invoke passes it (LangGraph's default otherwise)."""
    options = {} if durability is None else {"durability": durability}

    def work(saver: Any) -> Work:
        graph, n = compile_graph(FlowState, FLOW, saver, is_async), next(TRIAL)
        return Work([[Call(graph.invoke, graph.ainvoke, (ask(i), latest(f"graph-{n}")), options)]
                     for i in range(invokes)],
                    setup=[Call(graph.invoke, graph.ainvoke, (ask(0), latest(f"warm-{n}")),
                                options)])
    return work


def graph_rows(case: Callable[..., Case], invokes: int,
               targets: Mapping[str, Target | None]) -> list[Case | Derived]:
    """Per mode: ``case(name, mode, work_of, unit="ms")`` timing `graph_work` (ms per invoke),
    then the same per super-step (/ `checkpoints_per_invoke`, µs) with ``targets[mode]``."""
    per_invoke = checkpoints_per_invoke()
    items: list[Case | Derived] = []
    for mode in ("sync", "async"):
        name = f"graph: {'ainvoke' if mode == 'async' else 'invoke'}, {mode}"
        items += [case(name, mode, graph_work(invokes, mode == "async"), unit="ms"),
                  Derived.scaled(f"graph: per super-step, {mode}", name,
                                 lambda: 1e3 / per_invoke, "us",
                                 f"per invoke / {per_invoke} checkpoints written per invoke",
                                 targets.get(mode))]
    return items


# --- concurrency and serialisation ------------------------------------------------------------


async def drive(ops: Sequence[Sequence[Call]]) -> None:
    for op in ops:
        for c in op:
            await aexecute(c)


def concurrent_chat(opened: Callable[[], Any], tasks: int, warm: int, bursts: int,
                    steps: int, window: int | None = None) -> Any:
    """A trial: ``tasks`` tasks, each stepping its own `chat_work` thread (with ``window``)
    on one async saver (``opened()``: its async context manager). ``warm`` untimed steps per
    task, then ``bursts`` timed bursts of ``steps`` steps per task; a sample per burst: its
    wall time / the super-steps it ran (all tasks)."""
    per_task = warm + bursts * steps

    @asynccontextmanager
    async def trial() -> AsyncIterator[Callable[[], Any]]:
        async with opened() as saver:
            n = next(TRIAL)
            works = [chat_work(saver, per_task, f"task-{n}-{i}", window) for i in range(tasks)]
            for work in works:
                await drive([work.setup])

            async def burst(start: int, stop: int) -> None:
                await asyncio.gather(*(drive(work.ops[start:stop]) for work in works))

            await burst(0, warm)  # untimed: opens the pool's connections

            async def measured() -> list[float]:
                samples, clock = [], time.perf_counter
                for b in range(bursts):
                    start = warm + b * steps
                    t0 = clock()
                    await burst(start, start + steps)
                    samples.append((clock() - t0) / (tasks * steps))
                return samples
            yield measured
    return trial()


def serde_steps(steps: int, window: int | None = None
                ) -> list[tuple[list[Any], list[tuple[str, bytes]]]]:
    """Per `chat_work` step (with ``window``): the values it writes (2 pending writes + 2
    changed channels) and the 6 channel values its get_tuple reads back (pre-serialised)."""
    serde, out = JsonPlusSerializer(), []
    for op in chat_work(InMemorySaver(), steps, window=window).ops:
        writes, put = op[0].args[1], op[1].args
        values, changed = put[1]["channel_values"], put[3]
        out.append(([v for _, v in writes] + [values[ch] for ch in changed],
                    [serde.dumps_typed(v) for v in values.values()]))
    return out


@contextmanager
def serde_trial(steps: int, window: int | None = None) -> Iterator[Callable[[], list[float]]]:
    """A trial timing `serde_steps`: ``dumps_typed`` of the values written, ``loads_typed``
    of the values read, per step (LangGraph's default `JsonPlusSerializer`)."""
    serde, prepared = JsonPlusSerializer(), serde_steps(steps, window)

    def one(step: tuple[list[Any], list[tuple[str, bytes]]]) -> None:
        for value in step[0]:
            serde.dumps_typed(value)
        for stored in step[1]:
            serde.loads_typed(stored)
    yield lambda: time_each(prepared, one)


def read_payloads(threads: Sequence[tuple[str, int]],
                  read: Callable[[Any], Sequence[Any]]) -> list[tuple[str, bytes]]:
    """What a read returns, serialised: `fill` an `InMemorySaver` with ``threads``, run
    ``read(saver)`` (its `CheckpointTuple`s) and ``dumps_typed`` every channel value and
    pending-write value of them."""
    saver, serde = InMemorySaver(), JsonPlusSerializer()
    fill(saver, threads)
    out = []
    for tup in read(saver):
        out += [serde.dumps_typed(v) for v in tup.checkpoint["channel_values"].values()]
        out += [serde.dumps_typed(write[2]) for write in tup.pending_writes or ()]
    return out


@contextmanager
def read_serde_trial(threads: Sequence[tuple[str, int]], read: Callable[[Any], Sequence[Any]],
                     calls: int) -> Iterator[Callable[[], list[float]]]:
    """A trial timing the ``loads_typed`` a read cannot avoid: every value of `read_payloads`,
    once per sample (``calls`` samples)."""
    serde, payloads = JsonPlusSerializer(), read_payloads(threads, read)

    def one(_: int) -> None:
        for stored in payloads:
            serde.loads_typed(stored)
    yield lambda: time_each(range(calls), one)

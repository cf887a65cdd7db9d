"""Storage suite: the bytes a chat's thread takes, turn by turn, on our savers and the
official ones side by side, drawn as a chart (issue 14).

Every side runs the same compiled graph on a fresh store: a chat whose state is one
``add_messages`` list, one human and one AI message of about `MESSAGE_BYTES` each per turn
(pseudo-random words from a fixed seed, so the text compresses as prose does, not as a
repeated string). The official PostgreSQL saver also runs it as a ``DeltaChannel`` graph,
LangGraph's own answer to a growing list. Bytes are measured every ``--every`` turns:

* SQLite: the file with its WAL after ``wal_checkpoint(TRUNCATE)``, as ``sqlite_bench``;
* PostgreSQL: every table of the side's own database with its indexes and TOAST
  (``pg_total_relation_size``);
* Redis: ``MEMORY USAGE`` of every key under the side's prefix.

::

    python -m benchmarks.storage_bench                       # 200 turns, every 10
    python -m benchmarks.storage_bench --chart docs/storage.png --json out.json
    python -m benchmarks.storage_bench --quick               # 20 turns: a smoke test
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.postgres import PostgresSaver as OfficialPostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver as OfficialSqliteSaver
from langgraph.graph import START, StateGraph
from langgraph.graph.message import _messages_delta_reducer, add_messages
from langgraph_checkpoint_plainredis import RedisSaver as PlainRedisSaver
from rich.table import Table

from benchmarks import cli, servers
from benchmarks.report import machine_info, print_header
from benchmarks.sqlite_bench import disk_bytes
from langgraph_persist_kit.postgres import PostgresSaver
from langgraph_persist_kit.redis import RedisSaver
from langgraph_persist_kit.sqlite import SqliteSaver

MESSAGE_BYTES = 500
"""About how long each message is."""

TARGET_VS_OFFICIAL = 0.1
"""Issue 14: each backend's bytes at the last turn <= this x its official peer's."""

TARGET_VS_DELTA = 1.5
"""Issue 14: and <= this x the official PostgreSQL saver running a ``DeltaChannel`` graph."""

TARGET_GROWTH = 1.5
"""Issue 14: bytes added per turn near the end <= this x those near turn 20 (linear growth)."""


TARGET_SUPER_STEP = 0.6
"""Issue 14: a compiled-graph super-step at the last turns <= this x the official saver's."""


@dataclass(frozen=True)
class Sizes:
    turns: int = 200
    every: int = 10


FULL, QUICK, TINY = Sizes(), Sizes(turns=20, every=5), Sizes(turns=4, every=2)


class Chat(TypedDict):
    messages: Annotated[list, add_messages]


class DeltaChat(TypedDict):
    messages: Annotated[list, DeltaChannel(_messages_delta_reducer)]


def words(rng: random.Random, size: int) -> str:
    """About ``size`` bytes of pseudo-random lower-case words."""
    out: list[str] = []
    length = 0
    while length < size:
        word = "".join(rng.choice("etaoinshrdlucmfwypvbgk") for _ in range(rng.randint(2, 9)))
        out.append(word)
        length += len(word) + 1
    return " ".join(out)


def chat_graph(state: type, seed: int = 7) -> Any:
    """One ``bot`` node answering each human turn with about `MESSAGE_BYTES` of text."""
    rng = random.Random(seed)

    def bot(s: Any) -> dict[str, Any]:
        turn = len(s["messages"]) // 2 + 1
        return {"messages": [AIMessage(words(rng, MESSAGE_BYTES), id=f"ai-{turn}")]}

    builder: Any = StateGraph(state)
    builder.add_node("bot", bot)
    builder.add_edge(START, "bot")
    return builder


# --- sides: a saver on a fresh store, and how its bytes are measured ------------------------


@dataclass(frozen=True)
class Side:
    name: str  # the chart's and the table's label
    backend: str
    official: bool
    state: type = Chat


SIDES = (
    Side("ours, SQLite", "sqlite", False), Side("official SQLite", "sqlite", True),
    Side("ours, PostgreSQL", "postgres", False), Side("official PostgreSQL", "postgres", True),
    Side("official PostgreSQL, DeltaChannel graph", "postgres", True, DeltaChat),
    Side("ours, Redis", "redis", False), Side("official plainredis", "redis", True),
)

Opened = tuple[Any, Callable[[], int]]  # a saver, and what counts its store's bytes


def postgres_bytes(url: str) -> int:
    import psycopg
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class AS c"
            " JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE c.relkind = 'r'"
            " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND n.nspname NOT LIKE 'pg_toast%'").fetchone()
    return int(row[0]) if row else 0


def redis_bytes(url: str, prefix: str) -> int:
    import redis
    with redis.Redis.from_url(url) as client:
        return sum(client.memory_usage(key, samples=0) or 0
                   for key in client.scan_iter(match=f"{prefix}*", count=1000))


@contextmanager
def opened(side: Side, index: int, run: str, tmp: str, urls: dict[str, str],
           databases: list[str]) -> Iterator[Opened]:
    """Side ``side``'s saver on a store of its own, and its byte counter."""
    if side.backend == "sqlite":
        path = os.path.join(tmp, f"side-{index}.db")
        cls: Any = OfficialSqliteSaver if side.official else SqliteSaver
        with cls.from_conn_string(path) as saver:
            if side.official:  # ours set their store up when they open
                saver.setup()
            yield saver, lambda: disk_bytes(path)
    elif side.backend == "postgres":
        name = f"pk_storage_{run.replace('-', '_')}_{index}"
        databases.append(name)
        url = servers.create_database(urls["postgres"], name)
        cls = OfficialPostgresSaver if side.official else PostgresSaver
        with cls.from_conn_string(url) as saver:
            if side.official:
                saver.setup()
            yield saver, lambda: postgres_bytes(url)
    else:
        prefix = f"pk-bench-{run}-storage-{index}"
        if side.official:
            plain = PlainRedisSaver(url=urls["redis"], prefix=prefix)
            try:
                yield plain, lambda: redis_bytes(urls["redis"], prefix)
            finally:
                plain.close()
        else:
            with RedisSaver.from_conn_string(urls["redis"], key_prefix=prefix) as saver:
                yield saver, lambda: redis_bytes(urls["redis"], prefix + ":")


SUPER_STEPS = 3
"""Super-steps (checkpoints) of one turn of `chat_graph`: the input, ``__start__``, ``bot``
(the smoke test counts them on an ``InMemorySaver``)."""

READS = 21
"""``get_state`` calls timed at the last turn (the median is reported)."""


@dataclass(frozen=True)
class Measured:
    """One side's figures: ``{turn: bytes}`` every ``--every`` turns, the median µs of
    ``graph.get_state`` at the last turn (the read a delta-stored value must keep fast) and
    of one super-step over the last ``--every`` turns (``invoke`` time / super-steps)."""

    bytes: dict[int, int]
    get_state_us: float
    super_step_us: float


def measure_side(side: Side, opened_side: Opened, sizes: Sizes) -> Measured:
    """Run the chat for ``sizes.turns`` turns, measuring as `Measured` says."""
    saver, count = opened_side
    graph = chat_graph(side.state).compile(checkpointer=saver)
    rng = random.Random(11)
    config = {"configurable": {"thread_id": "chat"}}
    points = {0: count()}
    steps: list[float] = []
    for turn in range(1, sizes.turns + 1):
        started = time.perf_counter()
        graph.invoke({"messages": [HumanMessage(words(rng, MESSAGE_BYTES), id=f"h-{turn}")]},
                     config)
        if turn > sizes.turns - sizes.every:
            steps.append((time.perf_counter() - started) / SUPER_STEPS)
        if turn % sizes.every == 0 or turn == sizes.turns:
            points[turn] = count()
    reads = []
    for _ in range(READS):
        started = time.perf_counter()
        graph.get_state(config)
        reads.append(time.perf_counter() - started)
    return Measured(points, statistics.median(reads) * 1e6, statistics.median(steps) * 1e6)


def run(sizes: Sizes, urls: dict[str, str], sides: Sequence[Side] = SIDES,
        log: Callable[[str], None] = lambda _: None) -> dict[str, Measured]:
    """``{side name: Measured}``; every store is dropped at the end."""
    run_id = servers.run_id()
    databases: list[str] = []
    results: dict[str, Measured] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="persist-kit-storage-") as tmp:
            for index, side in enumerate(sides):
                started = time.perf_counter()
                with ExitStack() as stack:
                    if side.backend != "sqlite":
                        stack.enter_context(servers.answering(
                            urls[side.backend], f"--{side.backend}-url", "to write to"))
                    side_store = stack.enter_context(
                        opened(side, index, run_id, tmp, urls, databases))
                    results[side.name] = measure_side(side, side_store, sizes)
                log(f"{side.name}: {time.perf_counter() - started:.1f} s")
    finally:
        if databases:
            servers.drop_databases(urls["postgres"], databases)
        if any(side.backend == "redis" for side in sides):
            servers.unlink_keys(urls["redis"], f"pk-bench-{run_id}-storage-*")
    return results


# --- the figures --------------------------------------------------------------------------


def per_turn(points: dict[int, int], first: int, last: int) -> float:
    """Bytes added per turn between two measured turns."""
    return (points[last] - points[first]) / (last - first)


def figures(results: dict[str, Measured], sizes: Sizes) -> dict[str, dict[str, Any]]:
    """Per side: bytes at the last turn, its ratios to the official peer and to the
    DeltaChannel graph, and the growth (bytes per turn near the end / near turn 20)."""
    turns = sizes.turns
    early = min(20, turns)
    early_from = max(0, early - sizes.every)
    at_end = {name: measured.bytes[turns] for name, measured in results.items()}
    delta = at_end.get("official PostgreSQL, DeltaChannel graph")
    peers = {side.backend: side.name for side in SIDES if side.official and side.state is Chat}
    out = {}
    for side in SIDES:
        if side.name not in results:
            continue
        points = results[side.name].bytes
        peer = at_end.get(peers[side.backend])
        peer_read = (results[peers[side.backend]].get_state_us
                     if peers[side.backend] in results else None)
        read = results[side.name].get_state_us
        step = results[side.name].super_step_us
        peer_step = (results[peers[side.backend]].super_step_us
                     if peers[side.backend] in results else None)
        start_rate = per_turn(points, early_from, early)
        out[side.name] = {
            "bytes": points[turns],
            "vs_official": None if side.official or not peer else points[turns] / peer,
            "vs_delta_graph": None if side.official or not delta else points[turns] / delta,
            "growth": (per_turn(points, turns - sizes.every, turns) / start_rate
                       if start_rate else None),
            "get_state_us": read,
            "get_state_vs_official": None if side.official or not peer_read else read / peer_read,
            "super_step_us": step,
            "super_step_vs_official": None if side.official or not peer_step else step / peer_step,
        }
    return out


def table(results: dict[str, Measured], sizes: Sizes) -> Table:
    found = figures(results, sizes)
    t = Table(title=f"Bytes of one {sizes.turns}-turn chat thread (~{MESSAGE_BYTES} B messages)")
    for column in ("side", f"bytes at turn {sizes.turns}", "vs official peer",
                   "vs DeltaChannel graph", "growth (bytes/turn, end vs turn 20)",
                   f"get_state at turn {sizes.turns}",
                   f"super-step, last {sizes.every} turns (vs official)"):
        t.add_column(column, justify="left" if column == "side" else "right")

    def ratio(value: float | None, target: float) -> str:
        return "—" if value is None else f"{value:.2f}x " + ("✓" if value <= target else "✗")

    for name, row in found.items():
        official = next(side.official for side in SIDES if side.name == name)
        growth = row["growth"]
        t.add_row(name, f"{row['bytes'] / 2**20:.2f} MiB",
                  ratio(row["vs_official"], TARGET_VS_OFFICIAL),
                  ratio(row["vs_delta_graph"], TARGET_VS_DELTA),
                  "—" if growth is None else (f"{growth:.2f}x" if official
                                              else ratio(growth, TARGET_GROWTH)),
                  f"{row['get_state_us'] / 1000:.2f} ms",
                  f"{row['super_step_us'] / 1000:.2f} ms"
                  + ("" if row["super_step_vs_official"] is None
                     else f" ({ratio(row['super_step_vs_official'], TARGET_SUPER_STEP)})"))
    return t


def chart(results: dict[str, Measured], sizes: Sizes, path: str) -> None:
    """Bytes (MiB) against turns, a line per side, to the PNG ``path`` (matplotlib)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"sqlite": "tab:blue", "postgres": "tab:green", "redis": "tab:red"}
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=110)
    for side in SIDES:
        if side.name in results:
            points = results[side.name].bytes
            delta_graph = side.state is DeltaChat
            ax.plot(list(points), [b / 2**20 for b in points.values()], label=side.name,
                    color="tab:purple" if delta_graph else colors[side.backend],
                    linestyle=":" if delta_graph else "--" if side.official else "-",
                    linewidth=1.8)
    ax.set_xlabel("turns (one human and one AI message each)")
    ax.set_ylabel("bytes of the thread (MiB)")
    ax.set_title(f"One chat thread, ~{MESSAGE_BYTES} B messages: storage against turns")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.figures_parser(__doc__.split("\n\n")[0])
    p.add_argument("--turns", type=int, default=None, help="chat turns (default 200)")
    p.add_argument("--every", type=int, default=None, help="measure every N turns (default 10)")
    p.add_argument("--quick", action="store_true", help="20 turns: a smoke test")
    p.add_argument("--chart", metavar="PNG", help="draw bytes against turns to PNG")
    args = p.parse_args(argv)
    base = QUICK if args.quick else FULL
    sizes = Sizes(turns=args.turns or base.turns, every=args.every or base.every)
    console = cli.make_console()
    command = cli.command_line("benchmarks.storage_bench", argv)
    info = machine_info(["langgraph", "langgraph-checkpoint-sqlite",
                         "langgraph-checkpoint-postgres", "langgraph-checkpoint-plainredis"])
    print_header(console, info, command, f"sizes: {sizes}")
    with cli.sigterm_unwinds():
        results = run(sizes, cli.server_urls(args), log=console.print)
    if args.chart:
        chart(results, sizes, args.chart)
        console.print(f"chart written to {args.chart}")
    cli.report_figures(console, table(results, sizes), args.json, command, info,
                       {"turns": sizes.turns, "every": sizes.every},
                       bytes={name: m.bytes for name, m in results.items()},
                       figures=figures(results, sizes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

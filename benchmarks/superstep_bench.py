"""Super-step suite: a compiled graph's super-step late in a chat, ours against each official
saver, sync and async (issue 14: <= 0.6x the official saver's time at turn 200).

For each backend and mode, ours and the official saver each get a fresh store and run the
chat of `storage_bench` (one ``add_messages`` list, one human and one AI message of about
500 bytes per turn) turn by turn, interleaved: a turn on ours, then the same turn on the
official saver, then on an ``InMemorySaver`` (no I/O at all: the floor LangGraph's own
work sets, serializing and decoding the list included). The last ``--window`` turns are
timed; a super-step is an ``invoke`` (or ``ainvoke``) over the `storage_bench.SUPER_STEPS`
checkpoints it writes. Reports medians and the ratios to the official saver.

::

    python -m benchmarks.superstep_bench                 # 200 turns, the last 10 timed
    python -m benchmarks.superstep_bench --turns 60 --window 5
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres import PostgresSaver as OfficialPostgresSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver as OfficialAsyncPostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver as OfficialSqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver as OfficialAsyncSqliteSaver
from langgraph_checkpoint_plainredis import AsyncRedisSaver as PlainAsyncRedisSaver
from langgraph_checkpoint_plainredis import RedisSaver as PlainRedisSaver
from rich.table import Table

from benchmarks import cli, servers
from benchmarks.report import machine_info, print_header
from benchmarks.storage_bench import (
    MESSAGE_BYTES,
    SUPER_STEPS,
    TARGET_SUPER_STEP,
    Chat,
    chat_graph,
    words,
)
from langgraph_persist_kit.urls import async_saver_from_url, saver_from_url

BACKENDS = ("sqlite", "postgres", "redis")
MODES = ("sync", "async")


@asynccontextmanager
async def official(backend: str, mode: str, url: str, prefix: str) -> AsyncIterator[Any]:
    """The official saver of ``backend`` in ``mode`` on ``url``, its schema set up."""
    if backend == "redis":
        if mode == "sync":
            plain = PlainRedisSaver(url=url, prefix=prefix)
            try:
                yield plain
            finally:
                plain.close()
        else:
            aplain = PlainAsyncRedisSaver(url=url, prefix=prefix)
            try:
                yield aplain
            finally:
                await aplain.aclose()
        return
    conn = url.removeprefix("sqlite:///") if backend == "sqlite" else url
    if mode == "sync":
        cls: Any = OfficialSqliteSaver if backend == "sqlite" else OfficialPostgresSaver
        with cls.from_conn_string(conn) as saver:
            saver.setup()
            yield saver
    else:
        acls: Any = OfficialAsyncSqliteSaver if backend == "sqlite" else OfficialAsyncPostgresSaver
        async with acls.from_conn_string(conn) as saver:
            await saver.setup()
            yield saver


@asynccontextmanager
async def ours(mode: str, url: str, prefix: str) -> AsyncIterator[Any]:
    """Our saver for ``url`` in ``mode``, with its defaults (append deltas on)."""
    options = {"key_prefix": prefix} if url.startswith("redis") else {}
    if mode == "sync":
        with saver_from_url(url, **options) as saver:
            yield saver
    else:
        async with async_saver_from_url(url, **options) as saver:
            yield saver


async def chat(backend: str, mode: str, urls: dict[str, str], turns: int,
               window: int) -> dict[str, float]:
    """``{"ours": µs, "official": µs, "memory": µs}``: median super-step over the last
    ``window`` turns."""
    run = servers.run_id()
    databases: list[str] = []
    async with AsyncExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="persist-kit-step-"))
        savers = {}
        for side in ("ours", "official"):
            prefix = f"pk-bench-{run}-step-{side}"
            if backend == "sqlite":
                url = f"sqlite:///{os.path.join(tmp, side + '.db')}"
            elif backend == "postgres":
                name = f"pk_step_{run.replace('-', '_')}_{side}"
                databases.append(name)
                url = servers.create_database(urls["postgres"], name)
            else:
                url = urls["redis"]
                stack.callback(servers.unlink_keys, url, prefix + "*")
            opener = ours(mode, url, prefix) if side == "ours" else official(backend, mode, url,
                                                                              prefix)
            savers[side] = await stack.enter_async_context(opener)
        if databases:
            stack.callback(servers.drop_databases, urls["postgres"], databases)
        savers["memory"] = InMemorySaver()
        graphs = {side: chat_graph(Chat).compile(checkpointer=s) for side, s in savers.items()}
        rng = random.Random(11)
        config = {"configurable": {"thread_id": "chat"}}
        steps: dict[str, list[float]] = {side: [] for side in graphs}
        for turn in range(1, turns + 1):
            human = {"messages": [HumanMessage(words(rng, MESSAGE_BYTES), id=f"h-{turn}")]}
            for side, graph in graphs.items():  # interleaved: the same turn on each side
                started = time.perf_counter()
                if mode == "sync":
                    await asyncio.to_thread(graph.invoke, human, config)
                else:
                    await graph.ainvoke(human, config)
                if turn > turns - window:
                    steps[side].append((time.perf_counter() - started) / SUPER_STEPS)
    return {side: statistics.median(times) * 1e6 for side, times in steps.items()}


def run(turns: int, window: int, urls: dict[str, str], backends: Sequence[str] = BACKENDS,
        log: Callable[[str], None] = lambda _: None) -> dict[str, dict[str, float]]:
    """``{"backend mode": {"ours": µs, "official": µs, "memory": µs, "ratio": ours / official,
    "floor": memory / official}}``."""
    out = {}
    for backend in backends:
        for mode in MODES:
            started = time.perf_counter()
            medians = asyncio.run(chat(backend, mode, urls, turns, window))
            out[f"{backend} {mode}"] = {**medians, "ratio": medians["ours"] / medians["official"],
                                        "floor": medians["memory"] / medians["official"]}
            log(f"{backend} {mode}: {time.perf_counter() - started:.1f} s")
    return out


def table(results: dict[str, dict[str, float]], turns: int, window: int) -> Table:
    t = Table(title=f"Compiled-graph super-step, turns {turns - window + 1}-{turns} of a chat")
    for column in ("backend, mode", "ours", "official", "ratio", "target",
                   "InMemorySaver (ratio)"):
        t.add_column(column, justify="left" if column == "backend, mode" else "right")
    for name, row in results.items():
        met = "✓" if row["ratio"] <= TARGET_SUPER_STEP else "✗"
        t.add_row(name, f"{row['ours'] / 1000:.2f} ms", f"{row['official'] / 1000:.2f} ms",
                  f"{row['ratio']:.2f}x", f"<= {TARGET_SUPER_STEP}x {met}",
                  f"{row['memory'] / 1000:.2f} ms ({row['floor']:.2f}x)")
    return t


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.figures_parser(__doc__.split("\n\n")[0])
    p.add_argument("--turns", type=int, default=200, help="chat turns (default 200)")
    p.add_argument("--window", type=int, default=10, help="last turns timed (default 10)")
    args = p.parse_args(argv)
    console = cli.make_console()
    command = cli.command_line("benchmarks.superstep_bench", argv)
    info = machine_info(["langgraph", "langgraph-checkpoint-sqlite",
                         "langgraph-checkpoint-postgres", "langgraph-checkpoint-plainredis"])
    print_header(console, info, command, f"turns: {args.turns}, window: {args.window}")
    with cli.sigterm_unwinds():
        results = run(args.turns, args.window, cli.server_urls(args), log=console.print)
    cli.report_figures(console, table(results, args.turns, args.window), args.json, command,
                       info, {"turns": args.turns, "window": args.window}, figures=results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

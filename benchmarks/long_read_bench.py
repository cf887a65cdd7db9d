"""Long-thread read suite: ``get_tuple`` of a 1,000-turn chat thread with append-delta
storage on and off, per backend (issue 14: a delta-stored value is rebuilt in the same one
round trip, at most 1.2x the time of reading it whole, as every version was stored before).

Each side writes one thread of ``--turns`` checkpoints through ``put``: a ``messages`` list
that grows by one human and one AI message (about 500 bytes each) per turn. Then it times
``get_tuple`` of the latest checkpoint, interleaved with its twin (same backend, deltas off),
``--reads`` times each, and reports the medians and the ratio on / off.

::

    python -m benchmarks.long_read_bench                  # 1,000 turns, 41 reads each
    python -m benchmarks.long_read_bench --turns 200 --reads 11
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import create_checkpoint, empty_checkpoint
from rich.table import Table

from benchmarks import cli, servers
from benchmarks.report import machine_info, print_header
from benchmarks.storage_bench import MESSAGE_BYTES, words
from langgraph_persist_kit.postgres import PostgresSaver
from langgraph_persist_kit.redis import RedisSaver
from langgraph_persist_kit.sqlite import SqliteSaver

TARGET = 1.2
"""Issue 14: get_tuple of the long thread with deltas <= this x without."""

BACKENDS = ("sqlite", "postgres", "redis")


@contextmanager
def opened(backend: str, deltas: bool, run: str, tmp: str,
           urls: dict[str, str]) -> Iterator[Any]:
    """Our saver of ``backend`` on a store of its own, append deltas on or off."""
    tag = f"{backend}-{'on' if deltas else 'off'}"
    if backend == "sqlite":
        with SqliteSaver.from_conn_string(os.path.join(tmp, f"{tag}.db"),
                                          append_deltas=deltas) as saver:
            yield saver
    elif backend == "postgres":
        name = f"pk_long_{run.replace('-', '_')}_{deltas:d}"
        url = servers.create_database(urls["postgres"], name)
        try:
            with PostgresSaver.from_conn_string(url, append_deltas=deltas) as saver:
                yield saver
        finally:
            servers.drop_databases(urls["postgres"], [name])
    else:
        prefix = f"pk-bench-{run}-long-{tag}"
        try:
            with RedisSaver.from_conn_string(urls["redis"], key_prefix=prefix,
                                             append_deltas=deltas) as saver:
                yield saver
        finally:
            servers.unlink_keys(urls["redis"], prefix + ":*")


def write_thread(saver: Any, turns: int) -> dict[str, Any]:
    """``turns`` checkpoints of a growing chat; returns the config of the latest."""
    rng = random.Random(5)
    messages: list[Any] = []
    config: dict[str, Any] = {"configurable": {"thread_id": "long", "checkpoint_ns": ""}}
    checkpoint, version = empty_checkpoint(), None
    for turn in range(turns):
        messages = [*messages, HumanMessage(words(rng, MESSAGE_BYTES), id=f"h-{turn}"),
                    AIMessage(words(rng, MESSAGE_BYTES), id=f"a-{turn}")]
        checkpoint = create_checkpoint(checkpoint, None, turn)
        version = saver.get_next_version(version, None)
        checkpoint["channel_values"] = {"messages": messages}
        checkpoint["channel_versions"] = {"messages": version}
        config = saver.put(config, checkpoint, {"source": "loop", "step": turn},
                           {"messages": version})
    return config


def timed_reads(sides: dict[bool, tuple[Any, dict[str, Any]]], reads: int) -> dict[bool, float]:
    """Median µs of ``get_tuple`` per side, the sides interleaved read by read."""
    samples: dict[bool, list[float]] = {flag: [] for flag in sides}
    for _ in range(reads):
        for flag, (saver, config) in sides.items():
            started = time.perf_counter()
            saver.get_tuple(config)
            samples[flag].append(time.perf_counter() - started)
    return {flag: statistics.median(times) * 1e6 for flag, times in samples.items()}


def run(turns: int, reads: int, urls: dict[str, str], backends: Sequence[str] = BACKENDS,
        log: Callable[[str], None] = lambda _: None) -> dict[str, dict[str, float]]:
    """``{backend: {"on": µs, "off": µs, "ratio": on / off}}``."""
    run_id = servers.run_id()
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="persist-kit-long-") as tmp:
        for backend in backends:
            started = time.perf_counter()
            with ExitStack() as stack:
                if backend != "sqlite":
                    stack.enter_context(servers.answering(
                        urls[backend], f"--{backend}-url", "to write to"))
                sides = {}
                for flag in (True, False):
                    saver = stack.enter_context(opened(backend, flag, run_id, tmp, urls))
                    sides[flag] = (saver, write_thread(saver, turns))
                medians = timed_reads(sides, reads)
            out[backend] = {"on": medians[True], "off": medians[False],
                            "ratio": medians[True] / medians[False]}
            log(f"{backend}: {time.perf_counter() - started:.1f} s")
    return out


def table(results: dict[str, dict[str, float]], turns: int) -> Table:
    t = Table(title=f"get_tuple of a {turns:,}-turn chat thread (latest checkpoint)")
    for column in ("backend", "deltas on", "deltas off (whole values)", "ratio", "target"):
        t.add_column(column, justify="left" if column == "backend" else "right")
    for backend, row in results.items():
        met = "✓" if row["ratio"] <= TARGET else "✗"
        t.add_row(backend, f"{row['on'] / 1000:.2f} ms", f"{row['off'] / 1000:.2f} ms",
                  f"{row['ratio']:.2f}x", f"<= {TARGET}x {met}")
    return t


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.figures_parser(__doc__.split("\n\n")[0])
    p.add_argument("--turns", type=int, default=1000, help="turns of the thread (default 1000)")
    p.add_argument("--reads", type=int, default=41, help="get_tuple calls per side (default 41)")
    args = p.parse_args(argv)
    console = cli.make_console()
    command = cli.command_line("benchmarks.long_read_bench", argv)
    info = machine_info(["langgraph"])
    print_header(console, info, command, f"turns: {args.turns}, reads: {args.reads}")
    with cli.sigterm_unwinds():
        results = run(args.turns, args.reads, cli.server_urls(args), log=console.print)
    cli.report_figures(console, table(results, args.turns), args.json, command, info,
                       {"turns": args.turns, "reads": args.reads}, figures=results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Thread locks: what LockedGraph costs a run, in time and round trips, on every backend.

Run from the repo root:
    python -m benchmarks.locks_bench [--backend sqlite|postgres|redis|all] [--quick]
        [--rounds N] [--json FILE] [-v]
Two targets: a LockedGraph run adds at most one round trip to take the thread's lock and one
to release it; 8 processes each driving its own thread through LockedGraph reach at least
0.8x the runs/s they reach without it. What each figure measures: benchmarks/locks/__init__.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from rich.console import Console

from benchmarks import cli
from benchmarks.locks.config import (
    BACKENDS,
    FULL,
    MODES,
    PG_DEFAULT,
    PG_URL_VAR,
    QUICK,
    REDIS_DEFAULT,
    REDIS_URL_VAR,
    Sizes,
)
from benchmarks.locks.fleet import Fleet, throughput
from benchmarks.locks.report import render
from benchmarks.locks.runs import round_trips, run_time
from benchmarks.locks.stores import open_store, server_versions
from benchmarks.report import dump_json, machine_info, payload, print_header
from benchmarks.servers import ServerDown
from benchmarks.trials import Space


def run_backend(backend: str, sizes: Sizes, urls: dict[str, str], fleet: Fleet,
                space: Space, loop: asyncio.AbstractEventLoop,
                console: Console | None, log: Callable[[str], None]) -> dict[str, Any]:
    """Both targets on one backend's fresh store, dropped afterwards (also on failure)."""
    store = open_store(backend, urls, space)
    if console is not None:
        console.print(f"[bold]{store.describe()}[/]")
    out: dict[str, Any] = {"store": store.describe(), "run_time": {}, "round_trips": {}}
    try:
        for mode in MODES:
            out["run_time"][mode] = run_time(store, mode, sizes, loop, log)
            out["round_trips"][mode] = round_trips(store, mode, sizes, loop)
        out["throughput"] = throughput(fleet, store, sizes, log)
    finally:
        removed = store.close()
        if console is not None:
            console.print(f"[dim]{removed}[/]")
    return out


def run(sizes: Sizes, backends: Sequence[str], urls: dict[str, str], *,
        console: Console | None = None, verbose: bool = False,
        done: Callable[[dict[str, Any]], None] = lambda _: None) -> dict[str, Any]:
    """Every backend in turn; a backend that fails gets ``{"error": ...}`` and the others run.
    ``done(results so far)`` is called after each backend."""
    log = console.log if (console is not None and verbose) else (lambda _: None)
    results: dict[str, Any] = {}
    space = Space(prefix="persist-kit-locks-")
    loop = asyncio.new_event_loop()
    try:
        with Fleet(sizes.processes) as fleet:
            for backend in backends:
                try:
                    results[backend] = run_backend(backend, sizes, urls, fleet, space, loop,
                                                   console, log)
                except Exception as exc:
                    if console is not None:
                        console.print(f"[red]{backend} failed:[/] {traceback.format_exc()}")
                    results[backend] = {"error": f"{type(exc).__name__}: {exc}"}
                done(results)
    finally:
        loop.close()
        space.close()
    if console is not None:
        render(console, sizes, {b: r for b, r in results.items() if "error" not in r})
    return results


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser((__doc__ or "").splitlines()[0])
    p.add_argument("--backend", choices=(*BACKENDS, "all"), default="all")
    p.add_argument("--postgres-url", default=os.environ.get(PG_URL_VAR, PG_DEFAULT),
                   help=f"default: ${PG_URL_VAR} or {PG_DEFAULT}; the run creates a schema "
                        "pk_locks_<pid>_<hex> there and drops it at the end")
    p.add_argument("--redis-url", default=os.environ.get(REDIS_URL_VAR, REDIS_DEFAULT),
                   help=f"default: ${REDIS_URL_VAR} or {REDIS_DEFAULT}; the run writes keys "
                        "under pk-bench-<pid>-<hex>-locks and deletes them at the end")
    args = p.parse_args(argv)
    with cli.sigterm_unwinds():  # the schema and keys are still dropped
        return _main(args, argv)


def _main(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    sizes = cli.chosen_sizes(args, FULL, QUICK)
    backends = list(BACKENDS) if args.backend == "all" else [args.backend]
    urls = {"postgres": args.postgres_url, "redis": args.redis_url}
    console = cli.make_console()
    command = cli.command_line("benchmarks.locks_bench", argv)
    try:
        versions = server_versions(backends, urls)
    except ServerDown as exc:
        console.print(f"[red]{exc}[/]")
        return 2
    info = machine_info(["langgraph", "langgraph-persist-kit", "psycopg", "redis",
                         "hiredis"], **versions,
                        load_average=round(os.getloadavg()[0], 2))
    print_header(console, info, command, f"sizes: {asdict(sizes)}")

    def write(results: dict[str, Any]) -> None:  # after every backend: a long run keeps them
        if args.json:
            dump_json(args.json, payload(command, info, asdict(sizes),
                                         backends=results))

    t0 = time.perf_counter()
    results = run(sizes, backends, urls, console=console, verbose=args.verbose, done=write)
    console.print(f"total {time.perf_counter() - t0:.1f} s; 1-min load average at the start "
                  f"{info['load_average']:.2f}, now {os.getloadavg()[0]:.2f} (this run's 8 "
                  "workers included; other work on the machine shows up as noise)")
    if args.json:
        console.print(f"JSON written to {args.json}")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())

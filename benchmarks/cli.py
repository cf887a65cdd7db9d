"""What a suite's ``main`` shares: its command line, its console, and its run-and-report.

Owns `parser` (``--rounds``, ``--quick``, ``--json``, ``-v``), `chosen_sizes`,
`command_line` (the header's ``python -m ...``), `sigterm_unwinds`, `make_console` and
`run_and_report` (header, run, total time, JSON if asked); for the suites that measure
one figure per side (storage, long read, super-step): `figures_parser`, `server_urls`
and `report_figures`.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks import servers
from benchmarks.cases import SectionResult
from benchmarks.report import dump_json, payload, print_header, print_table, to_json


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--rounds", type=int, default=None,
                   help="interleaved rounds per case (default: the suite's, fewer with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="smaller sizes and fewer rounds: a smoke test, not figures to report")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    p.add_argument("-v", "--verbose", action="store_true", help="log each finished round")
    return p


def chosen_sizes(args: argparse.Namespace, full: Any, quick: Any) -> Any:
    """The sizes (a frozen dataclass with ``rounds``) the parsed `parser` arguments ask for."""
    sizes = quick if args.quick else full
    return replace(sizes, rounds=args.rounds) if args.rounds else sizes


def command_line(module: str, argv: Sequence[str] | None) -> str:
    """How the suite was started, for the header: ``python -m <module> <arguments>``."""
    return shlex.join(["python", "-m", module, *(sys.argv[1:] if argv is None else argv)])


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """While the block runs, a SIGTERM (a timeout, a kill) unwinds like Ctrl-C, so a run's
    stores are still dropped (in the main thread only: no other may set a handler)."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def make_console() -> Console:
    """Rich console; a fixed width when piped, so tables do not wrap into a log's columns."""
    return Console(width=None if sys.stdout.isatty() else 132, highlight=False)


def run_and_report(console: Console, info: dict[str, Any], command: str, sizes: dict[str, Any],
                   run: Callable[[], Sequence[SectionResult]], json_path: str | None) -> int:
    """Print the header, run the suite, print its total time, write JSON if asked; exit code."""
    print_header(console, info, command, f"sizes: {sizes}")
    t0 = time.perf_counter()
    results = run()
    console.print(f"total {time.perf_counter() - t0:.1f} s")
    if json_path:
        dump_json(json_path, to_json(results, info, command, sizes))
        console.print(f"JSON written to {json_path}")
    return 0


def figures_parser(description: str) -> argparse.ArgumentParser:
    """``--json`` and the servers' URLs (`add_server_urls`)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    add_server_urls(p)
    return p


def add_server_urls(p: argparse.ArgumentParser) -> None:
    """``--postgres-url`` and ``--redis-url``, defaulting to the environment's (the
    benchmarks' variable, then the tests'), then the local servers."""
    pg_default = os.environ.get(servers.PG_URL_VAR, os.environ.get(
        "PERSIST_KIT_TEST_POSTGRES_URL", servers.PG_DEFAULT))
    p.add_argument("--postgres-url", default=pg_default,
                   help=f"default: ${servers.PG_URL_VAR}, else $PERSIST_KIT_TEST_POSTGRES_URL, "
                        f"else {servers.PG_DEFAULT}; databases pk_bench_<pid>_* are created "
                        "and dropped")
    p.add_argument("--redis-url", default=os.environ.get(servers.REDIS_URL_VAR,
                                                         servers.REDIS_DEFAULT),
                   help=f"default: ${servers.REDIS_URL_VAR}, else {servers.REDIS_DEFAULT}; "
                        "keys pk-bench-<pid>-* are written and deleted")


def server_urls(args: argparse.Namespace) -> dict[str, str]:
    """``{"postgres": url, "redis": url}`` from `add_server_urls` arguments."""
    return {"postgres": args.postgres_url, "redis": args.redis_url}


def report_figures(console: Console, table: Table, json_path: str | None, command: str,
                   info: dict[str, Any], settings: dict[str, Any], **figures: Any) -> None:
    """Print a suite's table; write its figures as JSON if asked."""
    print_table(console, table)
    if json_path:
        dump_json(json_path, payload(command, info, settings, **figures))
        console.print(f"JSON written to {json_path}")

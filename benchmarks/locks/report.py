"""The thread-lock benchmark's tables (one per figure kind, a row per backend and mode)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.locks.config import ADDED_TRIPS, MODES, THROUGHPUT_RATIO, Sizes
from benchmarks.report import mark, print_table, with_p90

Results = Mapping[str, Mapping[str, Any]]  # backend -> {"run_time", "round_trips", ...}


def _n(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.2f}"


def _names(names: Mapping[str, float]) -> str:
    return ", ".join(f"{name} {_n(count)}" for name, count in names.items()) or "nothing"


def _table(title: str, columns: list[str]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(columns[0], overflow="fold", max_width=20)
    for column in columns[1:-1]:
        table.add_column(column, justify="right", overflow="fold")
    table.add_column(columns[-1], overflow="fold", max_width=24)
    return table


def _rows(results: Results, key: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [(backend, mode, figures[key][mode]) for backend, figures in results.items()
            if key in figures for mode in MODES if mode in figures[key]]


def render_run_time(console: Console, sizes: Sizes, results: Results) -> None:
    table = _table(f"1. Run time, bare graph vs LockedGraph: invoke / ainvoke of a 1-node "
                   f"counter graph on an existing thread (ms per run: median of {sizes.rounds} "
                   f"interleaved rounds x {sizes.runs} runs, p90 below)",
                   ["case", "bare graph", "LockedGraph", "added", "ratio", "lock alone",
                    "round trip", "lock alone / round trip"])
    for backend, mode, f in _rows(results, "run_time"):
        trips = f["lock_alone_over_round_trip"]
        table.add_row(f"{backend}, {mode}", with_p90(f["bare_ms"], f["bare_p90_ms"], "ms"),
                      with_p90(f["locked_ms"], f["locked_p90_ms"], "ms"),
                      f"{f['added_us']:+,.0f} µs", f"{f['ratio']:.2f}x",
                      with_p90(f["lock_alone_us"], f["lock_alone_p90_us"], "us"),
                      with_p90(f["round_trip_us"], f["round_trip_p90_us"], "us")
                      if f["round_trip_us"] is not None else "— (no server)",
                      "—" if trips is None else f"{trips:.1f}x")
    print_table(
        console, table,
        "added = median LockedGraph run - median bare run (the difference of two noisy "
        "medians: read it against lock alone). lock alone: `with thread_lock(saver, thread)` "
        f"taken and released {sizes.locks} times per round with no run inside (PostgreSQL: "
        "borrow a lock-pool connection, pg_try_advisory_lock, pg_advisory_unlock, give it "
        "back; Redis: SET NX PX, register with the process's lease renewer, EVALSHA of the "
        "release script; SQLite: two lockf calls). round trip: SELECT 1 on an autocommit "
        "psycopg connection / redis-py PING, on a client of its own.")


def _calls(f: Mapping[str, Any], locked: bool) -> str:
    side = "locked" if locked else "bare"
    if f["unit"] == "round trips":
        return f"{_n(f[f'{side}_round_trips_per_run'])} round trips"
    sql = sum(v for k, v in f["bare_calls"].items() if k.startswith("SQL "))
    extra = f["locked_calls_per_run"] - sql if locked else 0
    return f"{_n(sql)} SQL statements" + (f"\n+ {_n(extra)} lockf calls" if extra else "")


def _lines(names: Mapping[str, float]) -> str:
    return "\n".join(f"{name} {_n(count)}" for name, count in names.items())


def render_round_trips(console: Console, sizes: Sizes, results: Results) -> None:
    table = _table(f"2. What a LockedGraph run sends beyond the bare graph's run (counted in "
                   f"the client over {sizes.counted} runs of each; per run)",
                   ["case", "bare run", "LockedGraph run", "added per run",
                    "first LockedGraph run of a fresh saver", "target"])
    for backend, mode, f in _rows(results, "round_trips"):
        added = f["added"]
        what = _lines(added) + ("\n(system calls)" if backend == "sqlite" else "")
        extra = {k: round(v - added.get(k, 0), 6) for k, v in f["first_run_added"].items()}
        extra = {k: v for k, v in extra.items() if v}
        first = ("also " + ", ".join(f"{k} {_n(v)}" for k, v in extra.items())
                 if extra else "the same")
        note = f"{first}; {f['first_run_note']}" if f["first_run_note"] else first
        table.add_row(f"{backend}, {mode}", _calls(f, False), _calls(f, True),
                      f"{_n(f['round_trips_added_per_run'])} round trips\n[dim]{what}[/]",
                      f"+{_n(f['first_run_round_trips_added'])} round trips\n[dim]{note}[/]",
                      f"<= {ADDED_TRIPS}: {mark(f['target_met'])}")
    print_table(
        console, table,
        "Target: at most 1 round trip to acquire and 1 to release. Counted by patching "
        "the client libraries in this process, only while counting: psycopg Cursor.execute / "
        "AsyncCursor.execute (one statement, one round trip; the savers run no pipelines), "
        "redis-py send_command (one command, one round trip) and pack_commands (one "
        "pipeline, one round trip), fcntl.lockf; SQLite statements via set_trace_callback "
        "(in-process: no round trips). Connection set-up is not a statement: see the first "
        "run's notes.")


def render_throughput(console: Console, sizes: Sizes, results: Results) -> None:
    table = _table(f"3. Throughput: {sizes.processes} processes, each running the graph "
                   f"{sizes.tp_runs} times per round on its own thread (runs/s of all "
                   f"processes: median of {sizes.tp_rounds} rounds, min-max below; the two "
                   "configurations alternate)",
                   ["backend", "bare graph", "LockedGraph", "ratio", "target"])
    for backend, figures in results.items():
        f = figures.get("throughput")
        if not f:
            continue

        def cell(side: str, f: Mapping[str, Any] = f) -> str:
            runs = f[f"{side}_samples"]
            return (f"{f[f'{side}_runs_per_s']:,.0f} runs/s\n"
                    f"[dim]{min(runs):,.0f}-{max(runs):,.0f}[/]")

        table.add_row(backend, cell("bare"), cell("locked"),
                      f"{f['ratio']:.2f}x\n[dim]paired {f['paired_ratio_median']:.2f}x[/]",
                      f"ratio >= {THROUGHPUT_RATIO:g}: {mark(f['target_met'])}")
    print_table(
        console, table,
        "A round's figure: all its runs / (last worker's end - first worker's start); "
        "the workers start together at a barrier. Workers: forkserver children, started "
        "once; each opens its own saver (saver_from_url, its defaults) per backend and runs "
        "untimed warm-up runs first. paired: median over rounds of LockedGraph / bare of the "
        "same round. The server (PostgreSQL, Redis) shares the machine's cores with the "
        "workers.")


def render(console: Console, sizes: Sizes, results: Results) -> None:
    render_run_time(console, sizes, results)
    render_round_trips(console, sizes, results)
    render_throughput(console, sizes, results)

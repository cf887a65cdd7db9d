"""Hot-path suite (issue 15): each saver call and a compiled graph's super-step, ours against
the official saver of the same backend and mode, on SQLite, PostgreSQL and Redis, and how
close each super-step is to its physical floor; one summary table in the issue's layout.

Run from the repo root:
    python -m benchmarks.hotpath_bench [--backend sqlite|postgres|redis|all] [--quick]
        [--rounds N] [--json FILE] [-v] [--postgres-url URL] [--redis-url URL]

Owns the workload (`steady_chat`; `trials.work_trial(..., at)` times one call a step), the
sections of each backend (run interleaved by `benchmarks.runner`), the summary table
(`summary`, `print_summary`) and the command line. Each backend's stores and the bare
operations of its floor: `benchmarks.hotpath_backends`. See benchmarks/README.md.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from benchmarks import cli
from benchmarks import postgres_bench as pg
from benchmarks import workloads as wl
from benchmarks.cases import SIDES, Case, Derived, Row, Section, SectionResult, Target
from benchmarks.hotpath_backends import BACKENDS, Backend, open_backend
from benchmarks.report import dump_json, machine_info, payload, print_header, to_json
from benchmarks.runner import run_suite
from benchmarks.servers import ServerDown
from benchmarks.trials import Work, work_trial
from langgraph_persist_kit._core.urls import redact

MODES = ("sync", "async")
OPS = {"super-step": None, "put": 1, "put_writes": 0, "get_tuple": 2}  # the call timed
DURABILITIES = ("async", "sync")
TASKS_AT_LEAST = {"sqlite": 1.0, "postgres": 3.0, "redis": 2.0}  # steps/s ours / official


@dataclass(frozen=True)
class Sizes:
    """How much each trial does (`FULL`; `QUICK` for ``--quick``, `TINY` for the smoke test)."""

    rounds: int = 9
    steps: int = 200  # timed chat steps per trial (each row of section 1)
    warm: int = 6  # untimed steps first, on the same thread (prepares statements)
    window: int = 20  # messages of the chat's history, a sliding window
    invokes: int = 30  # timed graph invokes per trial
    tasks: int = 8  # concurrent async tasks on one saver (and PostgreSQL's pool size)
    bursts: int = 3  # timed bursts per trial of the tasks
    burst_steps: int = 25  # super-steps per task per burst
    trips: int = 300  # bare round trips / commits per round (the floor)


FULL = Sizes()
QUICK = Sizes(rounds=3, steps=40, invokes=6, bursts=2, burst_steps=8, trips=100)
TINY = Sizes(rounds=1, steps=3, warm=1, window=4, invokes=2, tasks=2, bursts=1, burst_steps=2,
             trips=3)


def ratio_target(backend: str, super_step: bool) -> Target:
    """Issue 15: every ratio <= 0.9; a super-step's (the saver's, a graph's) <= 0.6 on
    PostgreSQL and Redis."""
    return Target.ratio_at_most(0.6 if super_step and backend != "sqlite" else 0.9)


# --- the workloads ------------------------------------------------------------------------


def steady_chat(sizes: Sizes) -> Callable[[Any], Work]:
    """`workloads.chat_work` with a ``window``-message history on a new thread: the first
    ``warm`` steps untimed (setup), then ``steps`` ops of put_writes + put + get_tuple."""
    def work(saver: Any) -> Work:
        chat = wl.chat_work(saver, sizes.warm + sizes.steps, f"hot-{next(wl.TRIAL)}",
                            sizes.window)
        warm = [c for op in chat.ops[:sizes.warm] for c in op]
        return Work(chat.ops[sizes.warm:], [*chat.setup, *warm])
    return work


def case_of(name: str, opener: Callable[[str, str], Any], mode: str,
            work_of: Callable[[Any], Work], at: int | None = None, **kw: Any) -> Case:
    """A `Case`: ``work_of`` on each side's ``mode`` saver (``opener(mode, side)``, entered
    afresh every trial); whole ops timed, or only call ``at`` of each."""
    def make(side: str) -> Any:
        if at is None:
            return work_trial(opener(mode, side), work_of)
        return work_trial(opener(mode, side), work_of, at)
    return Case(name, {side: partial(make, side) for side in SIDES}, **kw)


# --- sections ---------------------------------------------------------------------------------


def section_calls(b: Backend, sizes: Sizes) -> Section:
    items: list[Case | Derived] = []
    for mode in MODES:
        opener = b.store(f"calls_{mode}")
        for op, at in OPS.items():
            items.append(case_of(f"{op}, {mode}", opener, mode, steady_chat(sizes), at,
                                 target=ratio_target(b.name, at is None)))
    return Section(f"{b.title} 1. Saver calls, µs per call ({sizes.steps} steps/trial on a new "
                   f"thread after {sizes.warm} untimed; a {sizes.window}-message history: each "
                   "step appends one and drops the oldest; 2 of 6 channels change). "
                   "super-step = put_writes(2) + put + get_tuple(latest); the other rows time "
                   "that one call of each step", items)


def section_graph(b: Backend, sizes: Sizes) -> Section:
    per_invoke = wl.checkpoints_per_invoke()
    items: list[Case | Derived] = []
    for mode in MODES:
        for durability in DURABILITIES:
            label = f"durability={durability}, {mode}"
            name = f"graph: {'ainvoke' if mode == 'async' else 'invoke'}, {label}"
            items += [
                case_of(name, b.store(f"graph_{durability}_{mode}"), mode,
                        wl.graph_work(sizes.invokes, mode == "async", durability), unit="ms"),
                Derived.scaled(f"graph super-step, {label}", name, lambda: 1e3 / per_invoke,
                               "us", f"per invoke / {per_invoke} checkpoints written per invoke",
                               ratio_target(b.name, True))]
    return Section(f"{b.title} 2. Compiled graph (3 nodes in sequence + add_messages), "
                   f"{sizes.invokes} invokes/trial on a new thread after one on another",
                   items)


def section_tasks(b: Backend, sizes: Sizes) -> Section:
    name = f"{sizes.tasks} tasks, µs of wall time per super-step"
    crowd = b.crowd("tasks", sizes.tasks)

    def trial(side: str) -> Any:
        return wl.concurrent_chat(crowd(side), sizes.tasks, sizes.warm, sizes.bursts,
                                  sizes.burst_steps, sizes.window)

    least = TASKS_AT_LEAST[b.name]
    target = Target(f"ours/official >= {least:g}",
                    lambda r: None if r.ratio is None else r.ratio >= least)
    return Section(f"{b.title} 3. Throughput: {sizes.tasks} async tasks, each stepping its own "
                   f"thread, on one saver ({b.crowd_note(sizes.tasks)}); {sizes.bursts} bursts of "
                   f"{sizes.burst_steps} steps per task per trial after {sizes.warm} untimed",
                   [Case(name, {side: partial(trial, side) for side in SIDES}),
                    pg.per_second("super-steps per second, all tasks", name, target)])


def section_floor(b: Backend, sizes: Sizes, done: dict[str, Row]) -> Section:
    one = ("ours",)
    serde = f"serialisation per super-step ({sizes.steps} steps)"
    items: list[Case | Derived] = [
        Case(f"{b.unit_name}, {mode}", dict.fromkeys(one, partial(b.unit_trial, sizes.trips,
                                                                  mode == "async")),
             note=b.unit_note) for mode in MODES]
    items += [Case(f"{unit}, {mode}", dict.fromkeys(one, partial(b.more_unit_trial, unit,
                                                                sizes.trips, mode == "async")))
              for unit, _ in b.more_units for mode in MODES]
    items.append(Case(serde, dict.fromkeys(one, partial(wl.serde_trial, sizes.steps,
                                                        sizes.window)),
                      note="JsonPlusSerializer: dumps_typed of 2 writes + 2 changed channels, "
                           "loads_typed of the 6 channel values read back"))
    items += b.reference_cases(sizes.trips)
    for mode in MODES:
        items.append(Derived.floor(f"floor per super-step, {mode}", f"{b.unit_name}, {mode}",
                                   b.trips, serde, b.floor_note,
                                   [(f"{unit}, {mode}", count) for unit, count in b.more_units]))
    for mode in MODES:
        if f"super-step, {mode}" in done:
            over = Derived.over_floor(f"super-step, {mode}", f"floor per super-step, {mode}",
                                      done)
            over.target = Target.ours_at_most(1.5, "ours <= 1.5x")
            items.append(over)
    return Section(f"{b.title} 4. The floor of a section-1 super-step (one figure, in the ours "
                   f"column): {b.floor_note}; and each side's super-step / floor", items)


SECTIONS = (section_calls, section_graph, section_tasks)


# --- the summary, in the layout ------------------------------------------------------

TITLES = {"sqlite": "SQLite", "postgres": "PostgreSQL", "redis": "Redis"}
SAME = "<= 0.9; PostgreSQL, Redis <= 0.6"
RATIO_ROWS = (  # issue 15's rows: (label, row name per mode, target text); ratios ours/official
    ("super-step (`put_writes` + `put` + `get_tuple`)", "super-step, {}", SAME),
    ("`put`", "put, {}", "<= 0.9"),
    ("`put_writes`", "put_writes, {}", "<= 0.9"),
    ("`get_tuple`", "get_tuple, {}", "<= 0.9"),
    ('compiled graph super-step, `durability="async"`', "graph super-step, durability=async, {}",
     SAME),
    ('compiled graph super-step, `durability="sync"`', "graph super-step, durability=sync, {}",
     SAME),
    ("{tasks} async tasks on one saver, steps/s (inverse: theirs / ours)",
     "super-steps per second, all tasks", "SQLite >= 1, PostgreSQL >= 3, Redis >= 2"),
)
FLOOR_ROWS = (  # (label, row name per mode, column, target text)
    ("super-step floor, µs", "floor per super-step, {}", "ours", ""),
    ("super-step ours / floor", "super-step, {} / floor", "ours", "<= 1.5"),
    ("super-step official / floor", "super-step, {} / floor", "official", ""),
)


def summary(results: dict[str, list[SectionResult]], tasks: int = FULL.tasks
            ) -> list[dict[str, Any]]:
    """The summary's rows: ``{"workload", "target", "cells": {backend: {mode: {"value",
    "met"}}}}``; a mode without the row (the tasks' sync) or a backend not run is left out."""
    index = {b: {row.name: (row, target) for r in rs for row, target in r.rows}
             for b, rs in results.items()}
    out = []
    specs = [(label, name, "ratio", text) for label, name, text in RATIO_ROWS]
    specs += [(label, name, column, text) for label, name, column, text in FLOOR_ROWS]
    for label, name, column, text in specs:
        cells: dict[str, dict[str, Any]] = {}
        for backend, rows in index.items():
            for mode in MODES:
                if (name.format(mode)) not in rows or (name == RATIO_ROWS[-1][1] and
                                                        mode == "sync"):
                    continue
                row, target = rows[name.format(mode)]
                value = row.ratio if column == "ratio" else getattr(row, column)
                met = target.check(row) if target is not None and column != "official" else None
                cells.setdefault(backend, {})[mode] = {"value": value, "met": met}
        out.append({"workload": label.format(tasks=tasks), "target": text, "cells": cells,
                    "floor": column != "ratio"})
    return out


def cell(figures: dict[str, Any] | None, unit: str) -> str:
    if not figures:
        return "not run"
    parts = []
    for mode in MODES:
        got = figures.get(mode)
        if got is None or got["value"] is None:
            parts.append("-")
            continue
        text = f"{got['value']:,.0f}" if unit == "µs" else f"{got['value']:.2f}"
        parts.append(f"**{text}**" if got["met"] is False else text)
    return " / ".join(parts)


def print_summary(console: Any, results: dict[str, list[SectionResult]], sizes: Sizes) -> None:
    """Issue 15's table as Markdown: ratios ours / official (medians, same backend and mode),
    then the floor rows; a figure missing its target in **bold**."""
    head = ["workload", *(f"{TITLES[b]} sync / async" for b in BACKENDS), "target"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for item in summary(results, sizes.tasks):
        unit = "µs" if item["workload"].endswith("µs") else "x"
        lines.append("| " + " | ".join([item["workload"], *(cell(item["cells"].get(b), unit)
                                                             for b in BACKENDS),
                                        item["target"]]) + " |")
    console.print("[bold]Summary (issue 15)[/]: ratio = ours / official, medians, same backend, "
                  "mode and durability; below 1 we are faster; the tasks row is steps/s ours / "
                  "official (above 1 we do more); **bold** = target missed.")
    console.print("\n".join(lines), markup=False, soft_wrap=True)
    console.print("Floor = what a super-step cannot avoid, measured bare in the same mode, + "
                  "the JsonPlusSerializer work both sides must do. PostgreSQL: 2 committed "
                  "INSERT round trips (put_writes, put: each waits for its WAL flush) + 1 SELECT 1 "
                  "(get_tuple); Redis: 3 PINGs (our savers send 1 per call); SQLite: 2 committed "
                  "INSERTs (WAL, synchronous=FULL; in-process, no round trip).\n", markup=False)


# --- entry points -------------------------------------------------------------------------------


def run(sizes: Sizes, backends: Sequence[str], urls: dict[str, str], *, console: Any = None,
        verbose: bool = False) -> dict[str, list[SectionResult]]:
    """Every backend's sections at ``sizes``, one backend after another (the smoke test
    calls this with `TINY`); each backend's stores are removed when it is done.

    Raises:
        ServerDown: A server a chosen backend needs does not answer.
    """
    out = {}
    for name in backends:
        b = open_backend(name, urls)
        try:
            if console is not None:
                console.print(f"[bold]{b.title}[/] {b.describe()}\n")
            done: dict[str, Row] = {}
            builders: list[Callable[[], Section]] = [partial(s, b, sizes) for s in SECTIONS]
            builders.append(partial(section_floor, b, sizes, done))
            out[name] = run_suite(builders, rounds=sizes.rounds, console=console,
                                  verbose=verbose, done=done)
        finally:
            removed = b.close()
            if console is not None:
                console.print(f"{b.title}: {removed}\n")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser((__doc__ or "").splitlines()[0])
    p.add_argument("--backend", choices=[*BACKENDS, "all"], default="all")
    cli.add_server_urls(p)
    args = p.parse_args(argv)
    sizes = cli.chosen_sizes(args, FULL, QUICK)
    backends = list(BACKENDS) if args.backend == "all" else [args.backend]
    urls = cli.server_urls(args)
    console = cli.make_console()
    command = cli.command_line("benchmarks.hotpath_bench", argv)
    info = machine_info(["langgraph", "langgraph-checkpoint", "langgraph-checkpoint-sqlite",
                         "langgraph-checkpoint-postgres", "langgraph-checkpoint-plainredis",
                         "langgraph-persist-kit", "aiosqlite", "psycopg", "redis", "hiredis"],
                        **{f"{k}_url": redact(v) for k, v in urls.items() if k in backends})
    print_header(console, info, command, f"backends: {', '.join(backends)}; sizes: "
                                         f"{asdict(sizes)}")
    t0 = time.perf_counter()
    try:
        with cli.sigterm_unwinds():
            results = run(sizes, backends, urls, console=console, verbose=args.verbose)
    except ServerDown as exc:
        console.print(f"[red]{exc}[/]")
        return 2
    print_summary(console, results, sizes)
    console.print(f"total {time.perf_counter() - t0:.1f} s")
    if args.json:
        dump_json(args.json, payload(
            command, info, asdict(sizes), summary=summary(results, sizes.tasks),
            backends={name: to_json(r, info, command, {})["sections"]
                      for name, r in results.items()}))
        console.print(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Backend-independent benchmark machinery: cases, interleaved rounds, stats, tables, JSON.

A suite is a list of `Section`s of `Case`s (a trial factory per side, built afresh
every round; setup untimed) and `Derived` rows. Most cases run a `Work` of the package's
`Call`s (``langgraph_persist_kit._core.calls``), written once for sync and async savers.
Design notes: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import platform
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from importlib import metadata
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

from langgraph_persist_kit._core.calls import Call, aexecute, execute

SIDES = ("ours", "official")
UNITS = {"us": (1e6, "µs"), "ms": (1e3, "ms"), "B": (1.0, "B"), "x": (1.0, "x")}


@dataclass
class Row:
    """The figures of one table row, in the row's display unit."""

    name: str
    ours: float | None
    official: float | None
    ours_p90: float | None = None
    official_p90: float | None = None
    unit: str = "us"
    note: str = ""
    has_ratio: bool = True  # False where ours/official means nothing (rows of ratios)

    @property
    def ratio(self) -> float | None:
        if not self.has_ratio or self.ours is None or not self.official:
            return None
        return self.ours / self.official


@dataclass(frozen=True)
class Target:
    """A goal for one row: ``text`` for the table; ``check`` says met (True) or missed."""

    text: str
    check: Callable[[Row], bool | None]

    @staticmethod
    def ratio_at_most(limit: float) -> Target:
        return Target(f"ratio <= {limit:g}",
                      lambda r: None if r.ratio is None else r.ratio <= limit)

    @staticmethod
    def ours_at_most(limit: float, text: str, strict: bool = False) -> Target:
        return Target(text, lambda r: None if r.ours is None else
                      r.ours < limit if strict else r.ours <= limit)


@dataclass
class Case:
    """A measured row: one trial factory per side, called afresh every round."""

    name: str
    trials: dict[str, Callable[[], Any]]
    unit: str = "us"
    kind: Literal["time", "value"] = "time"
    rounds: int | None = None  # at most this many rounds (None: the suite's count)
    target: Target | None = None
    note: str = ""


@dataclass
class Derived:
    """A row computed from rows measured before it in the same section."""

    name: str
    compute: Callable[[dict[str, Row]], Row]
    target: Target | None = None

    @staticmethod
    def quotient(name: str, top: str, bottom: str, note: str = "",
                 target: Target | None = None) -> Derived:
        """Per side, row ``top`` / row ``bottom`` (e.g. a growth factor); no ours/official ratio."""
        def compute(rows: dict[str, Row]) -> Row:
            a, b = rows[top], rows[bottom]
            return Row(name, a.ours / b.ours if a.ours and b.ours else None,
                       a.official / b.official if a.official and b.official else None,
                       unit="x", note=note, has_ratio=False)
        return Derived(name, compute, target)

    @staticmethod
    def scaled(name: str, source: str, factor: Callable[[], float], unit: str, note: str = "",
               target: Target | None = None) -> Derived:
        """Row ``source``'s medians times ``factor()`` (read when the row is computed)."""
        def compute(rows: dict[str, Row]) -> Row:
            r, k = rows[source], factor()
            return Row(name, None if r.ours is None else r.ours * k,
                       None if r.official is None else r.official * k, unit=unit, note=note)
        return Derived(name, compute, target)


    @staticmethod
    def floor(name: str, ping: str, trips: int, serde: str, note: str) -> Derived:
        """``trips`` x row ``ping`` + row ``serde`` (their *ours* column, in µs): the time a
        client doing ``trips`` round trips and nothing but that serialisation would take."""
        def compute(rows: dict[str, Row]) -> Row:
            p, s = rows[ping].ours, rows[serde].ours
            return Row(name, None if p is None or s is None else trips * p + s, None,
                       unit="us", note=note)
        return Derived(name, compute)

    @staticmethod
    def over_floor(source: str, floor: str, earlier: Mapping[str, Row]) -> Derived:
        """Row ``source`` of an earlier section (read from ``earlier`` when computed), each
        side divided by row ``floor``'s figure: "how close to the floor" (1.0x is the floor)."""
        name = f"{source} / floor"

        def compute(rows: dict[str, Row]) -> Row:
            r, f = earlier[source], rows[floor]
            base = None if f.ours is None else f.ours / UNITS[f.unit][0]  # seconds

            def over(value: float | None) -> float | None:
                return None if value is None or not base else value / UNITS[r.unit][0] / base
            return Row(name, over(r.ours), over(r.official), unit="x", note=f"/ {floor}",
                       has_ratio=False)
        return Derived(name, compute)


@dataclass
class Section:
    title: str
    items: Sequence[Case | Derived]
    note: str = ""


@dataclass
class SectionResult:
    title: str
    rows: list[tuple[Row, Target | None]] = field(default_factory=list)
    note: str = ""


# --- workloads ------------------------------------------------------------------------


@dataclass
class Work:
    """Untimed ``setup`` calls, then timed ``ops``; ``check(result of an op's last call)``.

    A `Call` names both forms of a method (``Call(saver.put, saver.aput, args)``): a sync
    trial makes ``execute(call)``, an async one ``await aexecute(call)``. A listing's calls
    give ``each`` (`same` for the items themselves), so it is drained inside the op.
    """

    ops: Sequence[Sequence[Call]]
    setup: Sequence[Call] = ()
    check: Callable[[Any], None] | None = None


def time_each(items: Iterable[Any], fn: Callable[[Any], Any],
              check: Callable[[Any], None] | None = None) -> list[float]:
    """Seconds each ``fn(item)`` took; ``check(result)`` runs after the clock stops."""
    clock, out = time.perf_counter, []
    for item in items:
        t0 = clock()
        result = fn(item)
        out.append(clock() - t0)
        if check is not None:
            check(result)
    return out


async def atime_each(items: Iterable[Any], fn: Callable[[Any], Any],
                     check: Callable[[Any], None] | None = None) -> list[float]:
    """Seconds each ``await fn(item)`` took (see `time_each`)."""
    clock, out = time.perf_counter, []
    for item in items:
        t0 = clock()
        result = await fn(item)
        out.append(clock() - t0)
        if check is not None:
            check(result)
    return out


def _run_op(op: Sequence[Call]) -> Any:
    result = None
    for c in op:
        result = execute(c)
    return result


async def _arun_op(op: Sequence[Call]) -> Any:
    result = None
    for c in op:
        result = await aexecute(c)
    return result


def work_trial(opened: Any, work_of: Callable[[Any], Work]) -> Any:
    """A trial: enter ``opened`` (a saver's sync or async context manager), build the
    `Work` from the saver, run its setup; the measured callable times its ops."""
    if hasattr(opened, "__aenter__"):
        @asynccontextmanager
        async def atrial() -> Any:
            async with opened as saver:
                work = work_of(saver)
                for c in work.setup:
                    await aexecute(c)
                yield lambda: atime_each(work.ops, _arun_op, work.check)
        return atrial()

    @contextmanager
    def strial() -> Iterator[Any]:
        with opened as saver:
            work = work_of(saver)
            for c in work.setup:
                execute(c)
            yield lambda: time_each(work.ops, _run_op, work.check)
    return strial()


def side_case(name: str, opened: Callable[[str], Any], work_of: Callable[[Any], Work],
              **kw: Any) -> Case:
    """A `Case` running ``work_of(saver)`` on each side's saver, ``opened(side)`` (a sync or
    async context manager yielding it) entered afresh every trial."""
    def make(side: str) -> Any:
        return work_trial(opened(side), work_of)
    return Case(name, {side: partial(make, side) for side in SIDES}, **kw)


def repeat_trial(opened: Any, op: Callable[[Any], Any], n: int, warm: int = 10) -> Any:
    """A trial: enter ``opened`` (a client's sync or async context manager), call ``op(client)``
    ``warm`` times untimed, then time ``n`` calls (``op`` returns an awaitable for an async
    client). For round trips outside any saver, e.g. a PING or a ``SELECT 1``."""
    if hasattr(opened, "__aenter__"):
        @asynccontextmanager
        async def atrial() -> Any:
            async with opened as client:
                for _ in range(warm):
                    await op(client)
                yield lambda: atime_each(range(n), lambda _: op(client))
        return atrial()

    @contextmanager
    def strial() -> Iterator[Any]:
        with opened as client:
            for _ in range(warm):
                op(client)
            yield lambda: time_each(range(n), lambda _: op(client))
    return strial()


class Space:
    """A temporary root directory; `scratch` gives a trial its own, removed afterwards."""

    def __init__(self, root: str | None = None, prefix: str = "persist-kit-bench-"):
        self.root = tempfile.mkdtemp(prefix=prefix, dir=root)

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    @contextmanager
    def scratch(self, name: str = "bench.db") -> Iterator[str]:
        path = tempfile.mkdtemp(dir=self.root)
        try:
            yield os.path.join(path, name)
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


# --- running ----------------------------------------------------------------------------


def run_trial(factory: Callable[[], Any], loop: asyncio.AbstractEventLoop) -> list[float]:
    """Build a trial, run its measured callable once, tear it down; its samples.

    Garbage is collected first, so one trial's leftovers are not charged to the next.
    """
    gc.collect()
    manager = factory()
    if hasattr(manager, "__aenter__"):
        async def whole() -> Any:
            async with manager as measured:
                return await measured()
        samples = loop.run_until_complete(whole())
    else:
        with manager as measured:
            samples = measured()
    if not samples:
        raise RuntimeError("a trial returned no samples")
    return list(samples)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * q / 100)) - 1]


def run_section(section: Section, rounds: int, loop: asyncio.AbstractEventLoop,
                log: Callable[[str], None] = lambda _: None) -> SectionResult:
    """Run a section's cases in interleaved rounds, then compute its rows."""
    cases = [item for item in section.items if isinstance(item, Case)]
    samples: dict[str, dict[str, list[float]]] = {c.name: {s: [] for s in c.trials} for c in cases}
    for r in range(rounds):
        for case in cases:
            if case.rounds is not None and r >= case.rounds:
                continue
            order = [s for s in SIDES if s in case.trials]
            for side in order if r % 2 == 0 else reversed(order):
                samples[case.name][side] += run_trial(case.trials[side], loop)
        log(f"{section.title[:40]}: round {r + 1}/{rounds}")
    result = SectionResult(section.title, note=section.note)
    rows: dict[str, Row] = {}
    for item in section.items:
        row = summarize(item, samples[item.name]) if isinstance(item, Case) else item.compute(rows)
        rows[row.name] = row
        result.rows.append((row, item.target))
    return result


def median_p90(values: Sequence[float], scale: float = 1.0) -> tuple[float | None, float | None]:
    """The median and the p90 of ``values`` times ``scale``; ``(None, None)`` for none."""
    if not values:
        return None, None
    return statistics.median(values) * scale, percentile(values, 90) * scale


def summarize(case: Case, samples: dict[str, list[float]]) -> Row:
    timed = case.kind == "time"
    (ours, ours_p90), (official, official_p90) = (
        median_p90(samples.get(side) or [], UNITS[case.unit][0] if timed else 1.0)
        for side in SIDES)
    return Row(case.name, ours, official, ours_p90 if timed else None,
               official_p90 if timed else None, unit=case.unit, note=case.note)


def run_suite(sections: Sequence[Section | Callable[[], Section]], *, rounds: int,
              console: Console | None = None, verbose: bool = False,
              done: dict[str, Row] | None = None) -> list[SectionResult]:
    """Run sections on one event loop, rendering each table as it completes.

    A section may be given as a builder, called here, so a suite builds one
    section's fixtures at a time; build time is reported, never measured.
    ``done``, if given, receives each finished section's rows by name, so a later
    builder can refer to them (e.g. `Derived.over_floor`).
    """
    loop, results = asyncio.new_event_loop(), []
    log = console.log if (console is not None and verbose) else (lambda _: None)
    try:
        for item in sections:
            t0 = time.perf_counter()
            section = item if isinstance(item, Section) else item()
            t1 = time.perf_counter()
            result = run_section(section, rounds, loop, log)
            result.note = " ".join(filter(None, [result.note, (
                f"Fixtures {t1 - t0:.1f} s (untimed); rounds {time.perf_counter() - t1:.1f} s.")]))
            results.append(result)
            if done is not None:
                done.update((row.name, row) for row, _ in result.rows)
            if console is not None:
                render(console, result)
    finally:
        loop.close()
    return results


# --- reporting --------------------------------------------------------------------------


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "B":
        return f"{value:,.0f} B ({value / 1e6:,.2f} MB)" if value >= 1e5 else f"{value:,.0f} B"
    if unit == "x":
        return f"{value:.2f}x"
    digits = 0 if value >= 100 else 1 if value >= 10 else 2
    return f"{value:,.{digits}f} {UNITS[unit][1]}"


def with_p90(value: float | None, p90: float | None, unit: str) -> str:
    """A table cell: the median, and the p90 underneath in grey."""
    return fmt(value, unit) + ("" if p90 is None else f"\n[dim]p90 {fmt(p90, unit)}[/]")


def mark(met: bool | None) -> str:
    """A target's verdict in a table: met, MISSED, or n/a (no figure to judge)."""
    return "n/a" if met is None else "[green]met[/]" if met else "[red]MISSED[/]"


def verdict(target: Target | None, row: Row) -> tuple[str, bool | None]:
    if target is None:
        return "", None
    met = target.check(row)
    return f"{target.text}: {mark(met)}", met


def print_table(console: Console, table: Table, note: str = "") -> None:
    """The table, its ``note`` in grey under it, and a blank line."""
    console.print(table)
    if note:
        console.print(f"[dim]{note}[/]")
    console.print()


def render(console: Console, result: SectionResult) -> None:
    table = Table(title=result.title, title_justify="left")
    table.add_column("case", overflow="fold", max_width=56)
    for column in ("ours", "official", "ratio"):
        table.add_column(column, justify="right")
    table.add_column("target")
    for row, target in result.rows:
        ratio = "—" if row.ratio is None else f"{row.ratio:.2f}"
        name = row.name + (f"\n[dim]{row.note}[/]" if row.note else "")
        table.add_row(name, with_p90(row.ours, row.ours_p90, row.unit),
                      with_p90(row.official, row.official_p90, row.unit), ratio,
                      verdict(target, row)[0])
    print_table(console, table, result.note)


def machine_info(packages: Sequence[str], **extra: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"python": sys.version.split()[0], **extra,
                            "cpu_count": os.cpu_count(), "platform": platform.platform()}
    for name in packages:
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = None
    return info


def print_header(console: Console, info: dict[str, Any], command: str, *extra: str) -> None:
    console.print(f"[bold]command:[/] {command}")
    console.print("[bold]machine:[/] " + ", ".join(f"{k}={v}" for k, v in info.items()))
    for line in extra:
        console.print(line)
    console.print()


def to_json(results: Sequence[SectionResult], info: dict[str, Any], command: str,
            settings: dict[str, Any]) -> dict[str, Any]:
    sections = [{"title": r.title, "note": r.note, "rows": [{
        "case": row.name, "unit": row.unit, "note": row.note,
        "ours": row.ours, "official": row.official,
        "ours_p90": row.ours_p90, "official_p90": row.official_p90, "ratio": row.ratio,
        "target": target.text if target else None, "target_met": verdict(target, row)[1],
    } for row, target in r.rows]} for r in results]
    return payload(command, info, settings, sections=sections)


def payload(command: str, info: dict[str, Any], settings: dict[str, Any],
            **figures: Any) -> dict[str, Any]:
    """A run's JSON: how it was started, the machine, its sizes, then its figures."""
    return {"command": command, "machine": info, "settings": settings, **figures}


def dump_json(path: str, payload: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")


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

"""Running a suite: interleaved rounds of trials, reduced to medians and p90s.

Owns `run_suite` / `run_section` (each case's sides alternate first and last, round after
round, on one event loop), `run_trial` (one trial, after a ``gc.collect()``), and the
statistics: `percentile` (nearest rank), `median_p90`, `summarize` (a case's samples to
its `Row`). Each finished section is rendered by `benchmarks.report.render`.
"""

from __future__ import annotations

import asyncio
import gc
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console

from benchmarks.cases import SIDES, UNITS, Case, Row, Section, SectionResult
from benchmarks.report import render


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

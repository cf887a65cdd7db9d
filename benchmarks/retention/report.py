"""The retention benchmark's tables."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.report import mark, print_table
from benchmarks.retention.config import FLAT, WRITER_P99, Sizes
from benchmarks.retention.measure import Figures

# --- reporting ---------------------------------------------------------------------------------


def _s(v: float | None) -> str:
    return "—" if v is None else f"{v:,.2f} s" if v >= 1 else f"{v * 1e3:,.1f} ms"


def _mb(v: float | None) -> str:
    return "—" if v is None else f"{v / 1e6:,.2f} MB"


def _kib(v: int | None) -> str:
    return "—" if v is None else f"{v / 1024:,.0f} MiB"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


Row = tuple[str, list[str], str, str]  # name, a cell per size, full / small, target


def call_rows(row: Callable[..., Row], flat: Callable[[float], str], op: str,
              key: str) -> list[Row]:
    """The rows of one maintenance call (``key``: its entry in `Figures`)."""
    def get(f: Figures, name: str) -> Any:
        return getattr(f, key)[name]

    def rss(f: Figures) -> str:
        peak, start = get(f, "rss_peak_kib"), get(f, "rss_start_kib")
        return f"{_kib(peak)} (+{_kib(peak - start)})"

    unit = "batches" if key == "cleanup" else "threads (a batch each)"
    return [
        row(f"{op}: time", lambda f: _s(get(f, "seconds")), lambda f: get(f, "seconds")),
        row(f"{op}: in batches / resting between", lambda f: (
            f"{_s(get(f, 'batch_seconds'))} / {_s(get(f, 'seconds') - get(f, 'batch_seconds'))}")),
        row(f"{op}: deleted", lambda f: _deleted(get(f, "report"))),
        row(f"{op}: {unit}, mean", lambda f: f"{get(f, 'batches'):,}, "
                                             f"{_s(get(f, 'mean_batch'))}"),
        row(f"{op}: longest batch", lambda f: _s(get(f, "longest_batch")),
            lambda f: get(f, "longest_batch")),
        row(f"{op}: tracemalloc peak", lambda f: _mb(get(f, "traced_peak")),
            lambda f: get(f, "traced_peak"), flat),
        row(f"{op}: peak RSS (+ above start)", rss),
    ]


def writer_rows(row: Callable[..., Row], figs: Sequence[Figures], op: str,
                during: str) -> list[Row]:
    """The writer's latency while ``op`` ran (``during``: its entry in ``Figures.writer``)."""
    if not any(during in f.writer for f in figs):
        return []

    def step(f: Figures) -> str:
        d = f.writer.get(during, {})
        return f"{_s(d.get('p50'))} / {_s(d.get('p99'))} (n={d.get('n', 0):,})"

    def slower(f: Figures) -> float | None:
        return _ratio(f.writer.get(during, {}).get("p99"), f.writer["alone"]["p99"])

    ratio = slower(figs[-1])
    return [
        row(f"writer step p50 / p99 during {op}", step),
        (f"writer p99 during {op} / alone",
         ["—" if slower(f) is None else f"{slower(f):.2f}x" for f in figs], "",
         "" if ratio is None else f"<= {WRITER_P99:g}x: {mark(ratio <= WRITER_P99)}"),
    ]


def rows(figs: Sequence[Figures]) -> list[Row]:
    """The table of one backend: a column per size, the growth from the first size to the
    last, and the target."""
    first, last = figs[0], figs[-1]

    def row(name: str, cell: Callable[[Figures], str],
            value: Callable[[Figures], float | None] | None = None,
            target: Callable[[float], str] = lambda _: "") -> Row:
        growth = None if value is None or len(figs) < 2 else _ratio(value(last), value(first))
        return (name, [cell(f) for f in figs], "" if growth is None else f"{growth:.2f}x",
                "" if growth is None else target(growth))

    def flat(growth: float) -> str:
        return f"flat: <= {FLAT:g}x: {mark(growth <= FLAT)}"

    def alone(f: Figures) -> str:
        a = f.writer["alone"]
        return f"{_s(a['p50'])} / {_s(a['p99'])} (n={a['n']:,})"

    return [
        row("checkpoints loaded", lambda f: f"{f.threads * f.checkpoints:,}"),
        row("fast load (setup, untimed)", lambda f: _s(f.load_seconds), lambda f: f.load_seconds),
        row("store bytes, loaded", lambda f: _mb(f.bytes_loaded), lambda f: f.bytes_loaded),
        *call_rows(row, flat, "cleanup_expired", "cleanup"),
        row("writer step p50 / p99 alone", alone),
        *writer_rows(row, figs, "cleanup_expired", "during"),
        row("store bytes, after cleanup (compacted)", lambda f: _mb(f.bytes_after_cleanup),
            lambda f: f.bytes_after_cleanup),
        *call_rows(row, flat, "prune_threads", "prune"),
        *writer_rows(row, figs, "prune_threads", "during_prune"),
        row("store bytes, after prune (not compacted)", lambda f: _mb(f.bytes_after_prune_raw)),
        row("store bytes, after prune (compacted)", lambda f: _mb(f.bytes_after_prune),
            lambda f: f.bytes_after_prune),
        row("prune: store after / before (compacted)", lambda f: (
            f"{_ratio(f.bytes_after_prune, f.bytes_after_cleanup) or 0:.2f}x")),
    ]


def _deleted(report: dict[str, Any]) -> str:
    threads = report.get("threads_deleted", report.get("threads_pruned"))
    return f"{threads:,} threads, {report['checkpoints_deleted']:,} checkpoints"


def render(console: Console, sizes: Sizes, figs: Sequence[Figures]) -> None:
    table = Table(title=f"{figs[0].backend}: cleanup_expired(older_than=30 days, batch_size="
                        f"{sizes.batch_size}) deleting the half idle for 60 days, then "
                        f"prune_threads(keep_latest={sizes.keep_latest}) over every thread left",
                  title_justify="left")
    table.add_column("figure", overflow="fold", max_width=44)
    for f in figs:
        table.add_column(f"{f.threads:,} threads", justify="right")
    table.add_column(f"{figs[-1].threads:,} / {figs[0].threads:,}" if len(figs) > 1 else "",
                     justify="right")
    table.add_column("target")
    for name, cells, growth, target in rows(figs):
        table.add_row(name, *cells, growth, target)
    print_table(console, table, (
        f"Times: the timed pass (no tracemalloc), writer steps every "
        f"{sizes.writer_interval * 1e3:g} ms. tracemalloc peaks: a second store of each size, "
        "the same calls under tracemalloc without the writer. Compacted: after VACUUM "
        "(SQLite) / VACUUM FULL (PostgreSQL), untimed."))

"""Retention at scale: cleanup_expired and prune_threads on a store of N threads x M checkpoints.

Run from the repo root:
    python -m benchmarks.retention_bench [--backend sqlite|postgres|redis|all] [--threads N]
        [--checkpoints-per-thread M] [--quick] [--json FILE]
See benchmarks/README.md (Retention suite) for what each row measures.
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from typing import Any

from rich.console import Console

from benchmarks import cli
from benchmarks import workloads as wl
from benchmarks.report import dump_json, machine_info, payload, print_header
from benchmarks.retention.config import (
    BACKENDS,
    FULL,
    OLDER_THAN,
    QUICK,
    SHARED,
    SMALL,
    Sizes,
    package_revision,
    thread_id,
)
from benchmarks.retention.measure import Figures, Measured, measure
from benchmarks.retention.report import render
from benchmarks.retention.stores import Store, open_store
from benchmarks.retention.writer import ProcessWriter, Writer
from benchmarks.runner import percentile
from benchmarks.servers import PG_DEFAULT, PG_URL_VAR, REDIS_DEFAULT, REDIS_URL_VAR
from langgraph_persist_kit.maintenance import BatchDone, cleanup_expired, prune_threads

# --- the template thread ----------------------------------------------------------------


def write_template(saver: Any, checkpoints: int, tid: str = "template") -> None:
    """One thread through the saver's own ``put_writes`` + ``put`` (`workloads.fill`): 6
    channels (2 change every step, 4 shared by all checkpoints), 2 pending writes per
    checkpoint (stored against its parent, as LangGraph does) and 2 more on the latest
    checkpoint (a step under way)."""
    parent = wl.fill(saver, [(tid, checkpoints)], {"counter": 0, "note": "note-0", **SHARED})
    config = {"configurable": {"thread_id": tid, "checkpoint_ns": "", "checkpoint_id":
                               parent[tid]}}
    saver.put_writes(config, [("counter", checkpoints), ("note", f"note-{checkpoints}")],
                     "pending-task")


def snapshot(saver: Any, tid: str) -> tuple[Any, ...]:
    """What a thread reads back as: latest values, metadata, pending writes, history ids."""
    tup = saver.get_tuple(wl.latest(tid))
    assert tup is not None, f"thread {tid} reads back as missing"
    history = [t.config["configurable"]["checkpoint_id"] for t in saver.list(wl.latest(tid))]
    writes = sorted((w[1], repr(w[2])) for w in tup.pending_writes or ())
    return (tup.checkpoint["id"], tup.checkpoint["channel_values"], tup.metadata, writes,
            history)


def verify_loaded(saver: Any, template: tuple[Any, ...], threads: int) -> None:
    """The saver sees ``threads`` threads (+ the template's store, elsewhere) and a loaded
    thread reads back exactly as the template thread does.

    Raises:
        AssertionError: The loaded store is not what the savers would have written.
    """
    listed, cutoff, idle = 0, time.time() - OLDER_THAN.total_seconds(), 0
    for info in saver.list_threads():
        if info.thread_id.startswith("t-"):
            listed += 1
            idle += info.updated_at.timestamp() < cutoff
    assert listed == threads, f"list_threads sees {listed:,} loaded threads, not {threads:,}"
    assert idle == (threads + 1) // 2, f"{idle:,} threads idle for 30 days, not half"
    for i in {0, 1, threads - 1}:
        got = snapshot(saver, thread_id(i))
        assert got == template, f"{thread_id(i)} reads back as {got!r}, not {template!r}"


def verify_pruned(saver: Any, template: tuple[Any, ...], keep: int, threads: int) -> None:
    """A recent thread kept its ``keep`` newest checkpoints, reading back as before; an old
    one is gone."""
    got = snapshot(saver, thread_id(1))
    assert got[:4] == template[:4], f"pruned thread reads back as {got!r}"
    assert got[4] == template[4][:keep], f"pruned history {got[4]} != {template[4][:keep]}"
    assert saver.get_tuple(wl.latest(thread_id(0))) is None, "an old thread survived"
    if threads > 2:
        assert saver.get_tuple(wl.latest(thread_id(threads - 1))) is not None


# --- one scale of one backend -----------------------------------------------------------------


def call_figures(m: Measured) -> dict[str, Any]:
    report = m.report
    return {"seconds": m.seconds, "report": report._asdict(), "batches": m.batches.count,
            "longest_batch": m.batches.longest,
            "mean_batch": m.batches.total / m.batches.count if m.batches.count else None,
            "batch_seconds": m.batches.total,
            "traced_peak": m.traced_peak, "rss_start_kib": m.rss_start,
            "rss_peak_kib": m.rss_peak}


def overlapping(samples: Sequence[tuple[float, float]], window: tuple[float, float]
                ) -> list[float]:
    """Seconds of the steps that ran (at least partly) while the call did."""
    begin, end = window
    return [seconds for start, seconds in samples if start < end and start + seconds > begin]


def latency(samples: Sequence[float]) -> dict[str, Any]:
    if not samples:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    return {"n": len(samples), "p50": statistics.median(samples),
            "p99": percentile(samples, 99), "max": max(samples)}


def load_store(store: Store, sizes: Sizes, threads: int, fig: Figures,
               log: Callable[[str], None]) -> tuple[Any, ...]:
    """The template thread through the real saver, then the fast load; its snapshot."""
    with store.template_saver() as tpl:
        write_template(tpl, sizes.checkpoints)
        template = snapshot(tpl, "template")
    t0 = time.perf_counter()
    store.load(threads, sizes.chunk)
    fig.load_seconds = time.perf_counter() - t0
    log(f"{store.name}: loaded {threads:,} threads x {sizes.checkpoints} checkpoints in "
        f"{fig.load_seconds:.1f} s")
    return template


def cleanup_call(saver: Any, sizes: Sizes) -> Callable[[Callable[[BatchDone], None]], Any]:
    return lambda on_batch: cleanup_expired(saver, older_than=OLDER_THAN,
                                            batch_size=sizes.batch_size,
                                            on_batch=on_batch)


def prune_call(saver: Any, sizes: Sizes) -> Callable[[Callable[[BatchDone], None]], Any]:
    return lambda on_batch: prune_threads(saver, keep_latest=sizes.keep_latest,
                                          on_batch=on_batch)


def with_writer(writer: Writer, call: Callable[[Callable[[BatchDone], None]], Any]
                ) -> tuple[Measured, dict[str, Any]]:
    """``call`` measured while the writer steps; the writer's steps that overlapped it."""
    writer.start()
    time.sleep(min(0.5, writer.interval * 5))  # the writer is in its stride
    try:
        measured = measure(call, trace=False)
    finally:
        samples = writer.stop()
    return measured, latency(overlapping(samples, measured.window))


def run_scale(store: Store, sizes: Sizes, threads: int, log: Callable[[str], None]) -> Figures:
    """The timed pass: load ``threads`` x ``sizes.checkpoints`` and verify it; the writer
    alone, then cleanup (with the writer), compact, prune, verify, compact."""
    fig = Figures(store.name, threads, sizes.checkpoints)
    template = load_store(store, sizes, threads, fig, log)
    with store.saver() as saver:
        t0 = time.perf_counter()
        verify_loaded(saver, template, threads)
        fig.verify_seconds = time.perf_counter() - t0
        fig.bytes_loaded = store.size(compact=False)
        kind = ProcessWriter if sizes.writer_process else Writer
        with kind(store.writer_spec(), sizes.writer_interval) as writer:
            alone = writer.alone(sizes.writer_steps)
            cleanup, during = with_writer(writer, cleanup_call(saver, sizes))
            fig.writer = {"alone": latency(alone), "during": during,
                          "interval": sizes.writer_interval}
            expected = (threads + 1) // 2
            assert cleanup.report.threads_deleted == expected, (
                f"cleanup deleted {cleanup.report.threads_deleted:,} threads, not {expected:,}")
            fig.cleanup = call_figures(cleanup)
            log(f"{store.name}: cleanup {cleanup.seconds:.1f} s, {during['n']} writer steps "
                "during it")
            t0 = time.perf_counter()
            fig.bytes_after_cleanup = store.size(compact=True)
            fig.compact_seconds = time.perf_counter() - t0
            if sizes.writer_during_prune:
                prune, fig.writer["during_prune"] = with_writer(writer, prune_call(saver, sizes))
            else:
                prune = measure(prune_call(saver, sizes), trace=False)
        fig.prune = call_figures(prune)
        log(f"{store.name}: prune {prune.seconds:.1f} s")
        verify_pruned(saver, template, sizes.keep_latest, threads)
        fig.bytes_after_prune_raw = store.size(compact=False)
        t0 = time.perf_counter()
        fig.bytes_after_prune = store.size(compact=True)
        fig.compact_seconds += time.perf_counter() - t0
    return fig


def memory_pass(store: Store, sizes: Sizes, fig: Figures, log: Callable[[str], None]) -> None:
    """The same calls on a fresh store of the same size under tracemalloc (no writer): their
    peak Python allocation. Apart from the timed pass, as tracing slows them 1.5-3x."""
    traced = Figures(store.name, fig.threads, sizes.checkpoints)
    load_store(store, sizes, fig.threads, traced, log)
    with store.saver() as saver:
        for key, call in (("cleanup", cleanup_call(saver, sizes)),
                          ("prune", prune_call(saver, sizes))):
            m = measure(call, trace=True)
            fig.__dict__[key].update(traced_peak=m.traced_peak, traced_seconds=m.seconds)
            log(f"{store.name}: {key} under tracemalloc {m.seconds:.1f} s, peak "
                f"{(m.traced_peak or 0) / 1e6:.2f} MB")


def run_backend(backend: str, sizes: Sizes, urls: dict[str, str], trace: bool,
                console: Console | None, log: Callable[[str], None]) -> list[Figures]:
    """The 10x smaller size, then the full size, each on a fresh store (and the memory pass
    on another fresh store of each size)."""
    out = []
    scales = [max(2, sizes.threads // SMALL), sizes.threads]
    for threads in scales:
        with open_store(backend, urls) as store:
            if console is not None and threads == scales[0]:
                console.print(f"[bold]{backend}:[/] {store.describe()}")
            fig = run_scale(store, sizes, threads, log)
        if trace:
            with open_store(backend, urls) as store:
                memory_pass(store, sizes, fig, log)
        out.append(fig)
    if console is not None:
        render(console, sizes, out)
    return out


# --- entry points --------------------------------------------------------------------------


def run(sizes: Sizes, backends: Sequence[str], urls: dict[str, str], *, trace: bool = True,
        console: Console | None = None, verbose: bool = False) -> dict[str, list[Figures]]:
    """Every backend at ``sizes`` (the smoke test calls this with `TINY`)."""
    log = console.log if (console is not None and verbose) else (lambda _: None)
    return {b: run_backend(b, sizes, urls, trace, console, log) for b in backends}


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser((__doc__ or "").splitlines()[0])
    p.add_argument("--backend", choices=(*BACKENDS, "all"), default="all")
    p.add_argument("--threads", type=int, help=f"threads in the full store (default "
                   f"{FULL.threads:,}; {QUICK.threads:,} with --quick); a run at 1/{SMALL} "
                   "of it comes first")
    p.add_argument("--checkpoints-per-thread", type=int, help=f"default {FULL.checkpoints}")
    p.add_argument("--batch-size", type=int, help=f"cleanup batch size (default "
                   f"{FULL.batch_size})")
    p.add_argument("--no-tracemalloc", action="store_true",
                   help="skip the memory pass (a second store per size, the calls under "
                        "tracemalloc); peak RSS is measured either way")
    p.add_argument("--writer-during-prune", action="store_true",
                   help="also run the concurrent writer during the prune")
    p.add_argument("--writer-process", action="store_true",
                   help="run the concurrent writer in a child process (default: a thread of "
                        "this process, sharing its GIL with the maintenance call)")
    p.add_argument("--postgres-url", default=os.environ.get(PG_URL_VAR, PG_DEFAULT))
    p.add_argument("--redis-url", default=os.environ.get(REDIS_URL_VAR, REDIS_DEFAULT))
    args = p.parse_args(argv)
    with cli.sigterm_unwinds():  # every store is still dropped
        return _main(args, argv)


def _main(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    sizes = QUICK if args.quick else FULL
    for name, value in (("threads", args.threads), ("checkpoints", args.checkpoints_per_thread),
                        ("batch_size", args.batch_size),
                        ("writer_during_prune", args.writer_during_prune or None),
                        ("writer_process", args.writer_process or None)):
        if value is not None:
            sizes = replace(sizes, **{name: value})
    backends = BACKENDS if args.backend == "all" else (args.backend,)
    urls = {"postgres": args.postgres_url, "redis": args.redis_url}
    console = cli.make_console()
    command = cli.command_line("benchmarks.retention_bench", argv)
    info = machine_info(["langgraph", "langgraph-persist-kit", "psycopg", "redis"],
                        sqlite=sqlite3.sqlite_version, git=package_revision())
    print_header(console, info, command, f"sizes: {asdict(sizes)}")
    t0 = time.perf_counter()
    results: dict[str, Any] = {}
    for backend in backends:  # one backend failing (a server restart) leaves the others
        try:
            results[backend] = [asdict(f) for f in run(
                sizes, [backend], urls, trace=not args.no_tracemalloc, console=console,
                verbose=args.verbose)[backend]]
        except Exception as exc:
            console.print(f"[red]{backend} failed:[/] {type(exc).__name__}: {exc}")
            results[backend] = {"error": f"{type(exc).__name__}: {exc}"}
        if args.json:  # after every backend, so a long run keeps what it measured
            dump_json(args.json, payload(command, info, asdict(sizes),
                                         backends=results))
    console.print(f"total {time.perf_counter() - t0:.1f} s")
    if args.json:
        console.print(f"JSON written to {args.json}")
    return 1 if any("error" in r for r in results.values() if isinstance(r, dict)) else 0


if __name__ == "__main__":
    sys.exit(main())

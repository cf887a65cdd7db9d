"""Retention at scale: cleanup_expired and prune_threads on a store of N threads x M checkpoints.

Run from the repo root:
    python -m benchmarks.retention_bench [--backend sqlite|postgres|redis|all] [--threads N]
        [--checkpoints-per-thread M] [--quick] [--json FILE]
See benchmarks/README.md (Retention suite) for what each row measures.
"""

from __future__ import annotations

import gc
import multiprocessing
import operator
import os
import resource
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import traceback
import tracemalloc
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from typing import Annotated, Any, TypedDict
from urllib.parse import urlsplit, urlunsplit

from langgraph.graph import END, START, StateGraph
from rich.console import Console
from rich.table import Table

from benchmarks import common
from benchmarks import workloads as wl
from langgraph_persist_kit.maintenance import BatchDone, cleanup_expired, prune_threads

PG_URL_VAR, PG_DEFAULT = "PERSIST_KIT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL_VAR, REDIS_DEFAULT = "PERSIST_KIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"
BACKENDS = ("sqlite", "postgres", "redis")
DAY = 86_400.0
OLD_AGE, RECENT_AGE = 60 * DAY, 3_600.0  # how long ago the old / recent threads were written
OLDER_THAN = timedelta(days=30)  # cleanup_expired's cutoff: the old half goes
FLAT = 2.0  # target: peak memory at the full size <= FLAT x at the 10x smaller size
WRITER_P99 = 2.0  # target: writer p99 during cleanup <= 2x its p99 alone
SHARED = {  # channel values every checkpoint of a thread shares (stored once per thread)
    "user_id": "u-42", "route": "agent", "locale": "en-US",
    "system": "You are a support agent for an online shop. " * 12,  # ~550 bytes
}


@dataclass(frozen=True)
class Sizes:
    threads: int = 100_000  # the full store; a run at threads // SMALL comes first
    checkpoints: int = 10  # per thread
    batch_size: int = 500  # cleanup_expired's batch_size (its default)
    keep_latest: int = 5
    writer_steps: int = 300  # writer steps measured alone, just before the cleanup
    writer_interval: float = 0.02  # seconds from one writer step's start to the next
    chunk: int = 10_000  # threads per loader statement / pipeline flush
    writer_during_prune: bool = False  # also run the writer during the prune
    writer_process: bool = False  # the writer in a child process instead of a thread


FULL = Sizes()
# Small, as maintenance rests >= 100 ms after each SQLite batch, and a prune batch is a thread.
QUICK = Sizes(threads=200, writer_steps=100)
TINY = Sizes(threads=40, checkpoints=6, keep_latest=3, writer_steps=10, chunk=16)
SMALL = 10  # the first run of each backend is at threads // SMALL


def package_revision() -> str | None:
    """The git commit the package runs from, ``+dirty`` when langgraph_persist_kit/ has
    uncommitted changes (``None`` outside a git checkout)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head, dirty = (subprocess.run(["git", "-C", root, *args], capture_output=True,
                                      text=True, check=True, timeout=10).stdout.strip()
                       for args in (["rev-parse", "--short", "HEAD"],
                                    ["status", "--porcelain", "--", "langgraph_persist_kit"]))
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def thread_id(i: int) -> str:
    """The loaded threads' ids; even ``i`` are the old half (what the cleanup deletes)."""
    return f"t-{i:07d}"


# --- the template thread ----------------------------------------------------------------


def write_template(saver: Any, checkpoints: int, tid: str = "template") -> None:
    """One thread through the saver's own ``put_writes`` + ``put``: 6 channels (2 change every
    step, 4 shared by all checkpoints), 2 pending writes per checkpoint (stored against its
    parent, as LangGraph does) and 2 more on the latest checkpoint (a step under way)."""
    script = wl.ThreadScript(saver, tid, {"counter": 0, "note": "note-0", **SHARED})
    for i in range(checkpoints):
        put = script.advance({"counter": i, "note": f"note-{i}"},
                             [("counter", i), ("note", f"note-{i}")])
        for c in put.calls(saver):
            common.call(c)
    config = {"configurable": {"thread_id": tid, "checkpoint_ns": "", "checkpoint_id":
                               script.parent}}
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


# --- the concurrent writer ------------------------------------------------------------------


class LiveState(TypedDict):
    items: Annotated[list, operator.add]


def live_graph(saver: Any) -> Any:
    """One node appending to a list channel that grows by one item per invoke."""
    builder: Any = StateGraph(LiveState)
    builder.add_node("step", lambda state: {"items": [len(state["items"])]})
    builder.add_edge(START, "step")
    builder.add_edge("step", END)
    return builder.compile(checkpointer=saver)


Spec = tuple[str, str, str]  # backend, file or URL, schema or key prefix: a saver, picklable


def open_saver(spec: Spec, pool: int | None = None) -> AbstractContextManager[Any]:
    """The saver of a `Spec`, from ``from_conn_string`` (``pool``: PostgreSQL's max size)."""
    backend, where, namespace = spec
    if backend == "sqlite":
        from langgraph_persist_kit.sqlite import SqliteSaver
        return SqliteSaver.from_conn_string(where)
    if backend == "postgres":
        from langgraph_persist_kit.postgres import PostgresSaver
        options: dict[str, Any] = {} if pool is None else {"pool_max_size": pool}
        return PostgresSaver.from_conn_string(where, schema=namespace, **options)
    from langgraph_persist_kit.redis import RedisSaver
    return RedisSaver.from_conn_string(where, key_prefix=namespace)


def live_thread(spec: Spec, stack: ExitStack) -> Callable[[], Any]:
    """Open the writer's saver (closed with ``stack``) and its graph on a new live thread,
    warm them up; one step of it."""
    graph = live_graph(stack.enter_context(open_saver(spec, pool=2)))
    config = wl.latest(f"live-{uuid.uuid4().hex[:8]}")

    def step() -> Any:
        return graph.invoke({"items": []}, config)
    for _ in range(5):  # untimed: connections, prepared statements, scripts
        step()
    return step


def paced_steps(step: Callable[[], Any], interval: float, steps: int | None,
                stopped: Callable[[], bool], wait: Callable[[float], Any]
                ) -> list[tuple[float, float]]:
    """``step()`` every ``interval`` seconds (or as soon as the previous one ends), ``steps``
    times or until ``stopped()``; ``wait(seconds)`` sleeps, returning early on a stop.
    ``(start, seconds)`` per step (``perf_counter``: one clock for every process)."""
    clock, samples = time.perf_counter, list[tuple[float, float]]()
    while not stopped() and (steps is None or len(samples) < steps):
        t0 = clock()
        step()
        samples.append((t0, clock() - t0))
        pause = t0 + interval - clock()
        if pause > 0:
            wait(pause)
    return samples


class Writer:
    """A graph on a live thread, stepped from its own Python thread through its own saver;
    one step = one ``invoke`` (the loop's ``get_tuple``, the input checkpoint, the node's
    writes and its checkpoint), started every ``interval`` seconds."""

    def __init__(self, spec: Spec, interval: float):
        self.spec, self.interval = spec, interval
        self._stack = ExitStack()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._result: list[Any] = []

    def __enter__(self) -> Writer:
        self.step = live_thread(self.spec, self._stack)
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.stop()
        finally:
            self._stack.close()

    def _run(self, steps: int | None) -> None:
        try:
            self._result = [paced_steps(self.step, self.interval, steps, self._stop.is_set,
                                        self._stop.wait)]
        except BaseException as exc:  # raised again by stop()
            self._result = [exc]

    def start(self, steps: int | None = None) -> None:
        """Step in the background (``steps`` times, or until `stop`)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(steps,), daemon=True)
        self._thread.start()

    def stop(self) -> list[tuple[float, float]]:
        """Stop stepping; ``(start, seconds)`` of each step since `start`."""
        if self._thread is None:
            return []
        self._stop.set()
        self._thread.join()
        self._thread = None
        result = self._result.pop()
        if isinstance(result, BaseException):
            raise RuntimeError("the concurrent writer failed") from result
        return result

    def alone(self, steps: int) -> list[float]:
        """``steps`` steps with nothing else running: seconds each."""
        self.start(steps)
        assert self._thread is not None
        self._thread.join()
        return [seconds for _start, seconds in self.stop()]


def _writer_process(spec: Spec, interval: float, conn: Any) -> None:
    """`ProcessWriter`'s child: runs ``("run", steps)`` commands until ``("exit", None)``;
    ``("stop", None)`` ends a run of ``steps=None``; replies ``("samples", [...])``."""
    try:
        with ExitStack() as stack:
            step = live_thread(spec, stack)
            conn.send(("ready", None))
            while True:
                command, steps = conn.recv()
                if command == "exit":
                    return
                if command == "run":
                    conn.send(("samples", paced_steps(step, interval, steps, conn.poll,
                                                      conn.poll)))
    except BaseException:
        conn.send(("error", traceback.format_exc()))


class ProcessWriter(Writer):
    """`Writer` in a child process (``--writer-process``): no GIL shared with the maintenance
    call, as when cron runs the cleanup apart from the application."""

    def __enter__(self) -> ProcessWriter:
        self._running = False
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_writer_process,
                                        args=(self.spec, self.interval, child), daemon=True)
        self._process.start()
        self._stack.callback(self._end)
        self._reply()
        return self

    def _end(self) -> None:
        if self._process.is_alive():
            self._conn.send(("exit", None))
            self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()
        self._conn.close()

    def _reply(self) -> Any:
        kind, payload = self._conn.recv()
        if kind == "error":
            raise RuntimeError(f"the concurrent writer process failed:\n{payload}")
        return payload

    def start(self, steps: int | None = None) -> None:
        self._conn.send(("run", steps))
        self._running = steps is None

    def stop(self) -> list[tuple[float, float]]:
        if not self._running:
            return []
        self._running = False
        self._conn.send(("stop", None))
        return self._reply()  # the child reads the stop itself

    def alone(self, steps: int) -> list[float]:
        self.start(steps)
        return [seconds for _start, seconds in self._reply()]


# --- measuring one call -----------------------------------------------------------------------


def rss_high_water_reset() -> bool:
    """Reset the process's peak RSS (Linux ``clear_refs``); False where that is impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def rss_kib(name: str = "VmHWM") -> int:
    """``VmHWM`` (peak) or ``VmRSS`` of this process in KiB; ``ru_maxrss`` off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@dataclass
class Batches:
    """``on_batch`` target: count, total and longest of the batches (constant memory)."""
    count: int = 0
    longest: float = 0.0
    total: float = 0.0
    last: BatchDone | None = None

    def __call__(self, done: BatchDone) -> None:
        self.count, self.total, self.last = self.count + 1, self.total + done.seconds, done
        self.longest = max(self.longest, done.seconds)


@dataclass
class Measured:
    seconds: float
    report: Any
    batches: Batches
    traced_peak: int | None  # bytes tracemalloc saw allocated above the start, at the peak
    rss_start: int  # KiB
    rss_peak: int  # KiB, the process's peak RSS during the call
    window: tuple[float, float]  # perf_counter at start and end


def measure(fn: Callable[[Callable[[BatchDone], None]], Any], trace: bool) -> Measured:
    """Run ``fn(on_batch)`` once: wall time, its batches, tracemalloc peak and RSS peak."""
    gc.collect()
    batches = Batches()
    reset = rss_high_water_reset()
    rss_start = rss_kib("VmRSS")
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    try:
        report = fn(batches)
        t1 = time.perf_counter()
        traced = None
        if trace:
            traced = tracemalloc.get_traced_memory()[1]
    finally:
        if trace:
            tracemalloc.stop()
    rss_peak = rss_kib("VmHWM") if reset else rss_kib("ru_maxrss")
    return Measured(t1 - t0, report, batches, traced, rss_start, rss_peak, (t0, t1))


# --- stores -------------------------------------------------------------------------------------


class Store:
    """A backend's scratch store: created on enter, dropped on exit. Subclasses load it fast
    (rows / keys replicated from a template thread the real saver wrote) and measure it."""

    name = ""

    def saver(self) -> AbstractContextManager[Any]:
        """The saver the maintenance calls run on (``from_conn_string`` defaults)."""
        raise NotImplementedError

    def writer_spec(self) -> Spec:
        """The concurrent writer's saver (it opens its own connection)."""
        raise NotImplementedError

    def template_saver(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def load(self, threads: int, chunk: int) -> None:
        raise NotImplementedError

    def size(self, compact: bool) -> int:
        """Bytes the store takes; ``compact``: after compacting it (untimed)."""
        raise NotImplementedError

    def describe(self) -> str:
        return ""

    def close(self) -> None:
        pass

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def ages(now: float) -> tuple[float, float]:
    """Unix seconds the old and the recent threads' first rows are dated at."""
    return now - OLD_AGE, now - RECENT_AGE


class SqliteStore(Store):
    """A temporary file; the template thread lives in another file, ATTACHed while loading."""

    name = "sqlite"

    def __init__(self, root: str | None = None):
        self.space = common.Space(root, prefix="persist-kit-retention-")
        self.path, self.template = self.space.path("store.db"), self.space.path("template.db")

    def saver(self) -> AbstractContextManager[Any]:
        return open_saver(self.writer_spec())

    def writer_spec(self) -> Spec:
        return ("sqlite", self.path, "")

    def template_saver(self) -> AbstractContextManager[Any]:
        from langgraph_persist_kit.sqlite import SqliteSaver
        return SqliteSaver.from_conn_string(self.template, synchronous="normal")

    def load(self, threads: int, chunk: int) -> None:
        with self.saver():  # the schema, by the saver's own migrations
            pass
        old, recent = ages(time.time())
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            # a rollback journal while loading (no WAL the size of the store), WAL after
            for pragma in ("journal_mode=DELETE", "synchronous=OFF", "cache_size=-262144"):
                conn.execute(f"PRAGMA {pragma}")
            conn.execute("ATTACH DATABASE ? AS tpl", (self.template,))
            t0 = conn.execute("SELECT min(created_at) FROM tpl.threads").fetchone()[0]
            # the triggers keep the registry, as for every row the savers store
            for lo in range(0, threads, chunk):
                params = {"lo": lo, "hi": min(lo + chunk, threads), "t0": t0, "old": old,
                          "recent": recent}
                conn.execute("BEGIN")
                for sql in SQLITE_LOAD:
                    conn.execute(sql, params)
                conn.execute("COMMIT")
            conn.execute("DETACH DATABASE tpl")
            conn.execute("ANALYZE")
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()

    def size(self, compact: bool) -> int:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            if compact:
                conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            pages, free, page = (conn.execute(f"PRAGMA {p}").fetchone()[0]
                                 for p in ("page_count", "freelist_count", "page_size"))
            return int((pages - free) * page)
        finally:
            conn.close()

    def describe(self) -> str:
        return (f"SQLite {sqlite3.sqlite_version}, file {self.path} (WAL, the saver's default "
                "synchronous=FULL); size = (page_count - freelist_count) x page_size")

    def close(self) -> None:
        self.space.close()


_SQLITE_THREADS = """WITH RECURSIVE n(i) AS (
    SELECT :lo UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :hi)
"""
_SQLITE_AT = "CASE WHEN n.i % 2 = 0 THEN :old ELSE :recent END + (t.created_at - :t0)"
SQLITE_LOAD = [  # per chunk of threads [lo, hi): every row of the template thread, renamed
    _SQLITE_THREADS + """
INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type,
                         checkpoint, channel_versions, metadata, run_id, created_at)
SELECT printf('t-%07d', n.i), t.checkpoint_ns, t.checkpoint_id, t.parent_checkpoint_id, t.type,
       t.checkpoint, t.channel_versions, t.metadata, t.run_id, """ + _SQLITE_AT + """
FROM n CROSS JOIN tpl.checkpoints AS t
ORDER BY n.i, t.checkpoint_ns, t.checkpoint_id""",
    _SQLITE_THREADS + """
INSERT INTO channel_values (thread_id, checkpoint_ns, channel, version, type, value)
SELECT printf('t-%07d', n.i), t.checkpoint_ns, t.channel, t.version, t.type, t.value
FROM n CROSS JOIN tpl.channel_values AS t
ORDER BY n.i, t.checkpoint_ns, t.channel, t.version""",
    _SQLITE_THREADS + """
INSERT INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, value,
                    task_path, created_at)
SELECT printf('t-%07d', n.i), t.checkpoint_ns, t.checkpoint_id, t.task_id, t.idx, t.channel,
       t.type, t.value, t.task_path, """ + _SQLITE_AT + """
FROM n CROSS JOIN tpl.writes AS t
ORDER BY n.i, t.checkpoint_ns, t.checkpoint_id, t.task_id, t.idx""",
]


class PostgresStore(Store):
    """A database ``pk_retention_<pid>`` (dropped at exit): the store in schema ``bench``, the
    template thread in schema ``tpl``."""

    name = "postgres"
    TABLES = ("threads", "checkpoints", "channel_values", "writes")

    def __init__(self, url: str):
        import psycopg
        self.server_url, self.db = url, f"pk_retention_{os.getpid()}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.db}"')
        self.url = urlunsplit(urlsplit(url)._replace(path="/" + self.db))

    def saver(self) -> AbstractContextManager[Any]:
        return open_saver(self.writer_spec())

    def writer_spec(self) -> Spec:
        return ("postgres", self.url, "bench")

    def template_saver(self) -> AbstractContextManager[Any]:
        from langgraph_persist_kit.postgres import PostgresSaver
        return PostgresSaver.from_conn_string(self.url, schema="tpl")

    def load(self, threads: int, chunk: int) -> None:
        import psycopg
        with self.saver():  # the schema, by the saver's own migrations
            pass
        old, recent = ages(time.time())
        with psycopg.connect(self.url) as conn:
            conn.execute("SET synchronous_commit = off")
            for lo in range(0, threads, chunk):
                params = {"lo": lo, "hi": min(lo + chunk, threads), "old": old, "recent": recent}
                for sql in POSTGRES_LOAD:
                    conn.execute(sql, params)
                conn.commit()
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")  # what autovacuum would have done by now
            conn.execute("CHECKPOINT")  # the load's WAL is not the measured calls' to flush

    def size(self, compact: bool) -> int:
        import psycopg
        with psycopg.connect(self.url, autocommit=True) as conn:
            tables = ", ".join(f"bench.{t}" for t in self.TABLES)
            conn.execute(f"VACUUM {'FULL ' if compact else ''}ANALYZE {tables}")
            conn.execute("CHECKPOINT")
            row = conn.execute(" + ".join(f"pg_total_relation_size('bench.{t}')"
                                          for t in self.TABLES).join(("SELECT ", ""))).fetchone()
            return int(row[0]) if row else 0

    def describe(self) -> str:
        import psycopg
        with psycopg.connect(self.url) as conn:
            row = conn.execute("SELECT current_setting('server_version'), "
                               "current_setting('synchronous_commit')").fetchone()
        assert row is not None
        return (f"PostgreSQL {row[0]} at {common.redact(self.server_url)} (synchronous_commit="
                f"{row[1]}), database {self.db}, schema bench; size = pg_total_relation_size of "
                "its 4 tables (with indexes and TOAST) after VACUUM, compacted: VACUUM FULL")

    def close(self) -> None:
        import psycopg
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')


_PG_FROM = """FROM generate_series(%(lo)s, %(hi)s - 1) AS g
CROSS JOIN tpl.{table} AS t CROSS JOIN (SELECT created_at AS t0 FROM tpl.threads) AS z"""
_PG_ID = "'t-' || lpad(g::text, 7, '0')"
_PG_AT = ("to_timestamp(CASE WHEN g %% 2 = 0 THEN %(old)s ELSE %(recent)s END) "
          "+ (t.{column} - z.t0)")
POSTGRES_LOAD = [  # per chunk of threads [lo, hi): every row of the template thread, renamed
    f"""INSERT INTO bench.threads (thread_id, created_at, updated_at, latest_checkpoint_id,
                                   metadata)
SELECT {_PG_ID}, {_PG_AT.format(column="created_at")}, {_PG_AT.format(column="updated_at")},
       t.latest_checkpoint_id, t.metadata
{_PG_FROM.format(table="threads")}
ORDER BY 1""",
    f"""INSERT INTO bench.checkpoints (thread_id, checkpoint_ns, checkpoint_id,
    parent_checkpoint_id, type, checkpoint, channel_versions, metadata, run_id, created_at)
SELECT {_PG_ID}, t.checkpoint_ns, t.checkpoint_id, t.parent_checkpoint_id, t.type, t.checkpoint,
       t.channel_versions, t.metadata, t.run_id, {_PG_AT.format(column="created_at")}
{_PG_FROM.format(table="checkpoints")}
ORDER BY 1, 2, 3""",
    f"""INSERT INTO bench.channel_values (thread_id, checkpoint_ns, channel, version, type, value)
SELECT {_PG_ID}, t.checkpoint_ns, t.channel, t.version, t.type, t.value
{_PG_FROM.format(table="channel_values")}
ORDER BY 1, 2, 3""",
    f"""INSERT INTO bench.writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel,
                              type, value, task_path, created_at)
SELECT {_PG_ID}, t.checkpoint_ns, t.checkpoint_id, t.task_id, t.idx, t.channel, t.type, t.value,
       t.task_path, {_PG_AT.format(column="created_at")}
{_PG_FROM.format(table="writes")}
ORDER BY 1, 2, 3, 4, 5""",
]


class RedisStore(Store):
    """Keys under ``pk-bench-<pid>-<hex>-retention-*`` (SCAN + UNLINK at exit): the store under
    ``...-store``, the template thread under ``...-tpl``."""

    name = "redis"

    def __init__(self, url: str):
        import redis
        self.url, self.run = url, f"pk-bench-{os.getpid()}-{uuid.uuid4().hex[:8]}-retention"
        self.prefix, self.tpl_prefix = f"{self.run}-store", f"{self.run}-tpl"
        self.client: Any = redis.Redis.from_url(url)
        self.client.ping()
        self.baseline = self.used_memory()

    def used_memory(self) -> int:
        return int(self.client.info("memory")["used_memory"])

    def saver(self) -> AbstractContextManager[Any]:
        return open_saver(self.writer_spec())

    def writer_spec(self) -> Spec:
        return ("redis", self.url, self.prefix)

    def template_saver(self) -> AbstractContextManager[Any]:
        from langgraph_persist_kit.redis import RedisSaver
        return RedisSaver.from_conn_string(self.url, key_prefix=self.tpl_prefix)

    def load(self, threads: int, chunk: int) -> None:
        from langgraph_persist_kit.redis import keys as k
        with self.saver():  # the key space's schema marker
            pass
        tpl = k.KeySpace(self.tpl_prefix).thread_keys("template")
        info = self.client.hgetall(tpl[0])
        members = self.client.zrange(tpl[1], 0, -1)
        headers = self.client.hmget(tpl[2], members)
        assert all(k.unpack(h)[2] == "" for h in headers if h), "template has run ids"
        t0 = float(info[b"created"])
        offset = float(info[b"updated"]) - t0
        entries = [(cid, ns) for ns, cid in (m.split(b"\x00", 1) for m in members)]
        space = k.KeySpace(self.prefix)
        old, recent = ages(time.time())
        pipe = self.client.pipeline(transaction=False)
        for i in range(threads):
            tid = thread_id(i)
            keys = space.thread_keys(tid)
            for source, target in zip(tpl[1:7], keys[1:7], strict=True):  # idx cp body val widx w
                pipe.copy(source, target)
            born = old if i % 2 == 0 else recent
            pipe.hset(keys[0], mapping={**info, b"created": repr(born),
                                        b"updated": repr(born + offset)})
            pipe.zadd(keys[7], {tid: born + offset})
            raw = k.encode(tid)
            pipe.zadd(keys[8], {cid + b"\x00" + raw + b"\x00" + ns: 0 for cid, ns in entries})
            if (i + 1) % chunk == 0 or i + 1 == threads:
                pipe.execute()
        space.thread_keys.cache_clear()

    def size(self, compact: bool) -> int:
        return self.used_memory() - self.baseline

    def describe(self) -> str:
        server = self.client.info("server")["redis_version"]
        return (f"Redis {server} at {common.redact(self.url)}, keys under {self.run}-*; size = "
                "INFO memory used_memory minus its value before the run (other clients of the "
                "server count too)")

    def close(self) -> None:
        deleted = 0
        for batch in _chunks(self.client.scan_iter(match=f"{self.run}-*", count=2000), 2000):
            deleted += self.client.unlink(*batch)
        self.client.close()


def _chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def open_store(backend: str, urls: dict[str, str]) -> Store:
    """A fresh store; ``urls``: the servers by backend, and optionally ``"sqlite"``: the
    directory the SQLite files go in (a temporary one under it, removed at exit)."""
    if backend == "sqlite":
        return SqliteStore(urls.get("sqlite"))
    if backend == "postgres":
        return PostgresStore(urls["postgres"])
    return RedisStore(urls["redis"])


# --- one scale of one backend -----------------------------------------------------------------


@dataclass
class Figures:
    """Everything measured at one size of one backend (seconds, bytes, KiB)."""
    backend: str
    threads: int
    checkpoints: int
    load_seconds: float = 0.0
    verify_seconds: float = 0.0
    bytes_loaded: int = 0
    cleanup: dict[str, Any] = field(default_factory=dict)
    writer: dict[str, Any] = field(default_factory=dict)
    bytes_after_cleanup: int = 0
    prune: dict[str, Any] = field(default_factory=dict)
    bytes_after_prune_raw: int = 0
    bytes_after_prune: int = 0
    compact_seconds: float = 0.0


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
            "p99": common.percentile(samples, 99), "max": max(samples)}


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


# --- reporting ---------------------------------------------------------------------------------


def _s(v: float | None) -> str:
    return "—" if v is None else f"{v:,.2f} s" if v >= 1 else f"{v * 1e3:,.1f} ms"


def _mb(v: float | None) -> str:
    return "—" if v is None else f"{v / 1e6:,.2f} MB"


def _kib(v: int | None) -> str:
    return "—" if v is None else f"{v / 1024:,.0f} MiB"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _mark(met: bool) -> str:
    return "[green]met[/]" if met else "[red]MISSED[/]"


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
         "" if ratio is None else f"<= {WRITER_P99:g}x: {_mark(ratio <= WRITER_P99)}"),
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
        return f"flat: <= {FLAT:g}x: {_mark(growth <= FLAT)}"

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
    console.print(table)
    console.print(f"[dim]Times: the timed pass (no tracemalloc), writer steps every "
                  f"{sizes.writer_interval * 1e3:g} ms. tracemalloc peaks: a second store of "
                  "each size, the same calls under tracemalloc without the writer. Compacted: "
                  "after VACUUM (SQLite) / VACUUM FULL (PostgreSQL), untimed.[/]")
    console.print()


# --- entry points --------------------------------------------------------------------------


def run(sizes: Sizes, backends: Sequence[str], urls: dict[str, str], *, trace: bool = True,
        console: Console | None = None, verbose: bool = False) -> dict[str, list[Figures]]:
    """Every backend at ``sizes`` (the smoke test calls this with `TINY`)."""
    log = console.log if (console is not None and verbose) else (lambda _: None)
    return {b: run_backend(b, sizes, urls, trace, console, log) for b in backends}


def main(argv: Sequence[str] | None = None) -> int:
    p = common.parser((__doc__ or "").splitlines()[0])
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
    # a SIGTERM (timeout, kill) unwinds like Ctrl-C, so every store is still dropped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    sizes = QUICK if args.quick else FULL
    for name, value in (("threads", args.threads), ("checkpoints", args.checkpoints_per_thread),
                        ("batch_size", args.batch_size),
                        ("writer_during_prune", args.writer_during_prune or None),
                        ("writer_process", args.writer_process or None)):
        if value is not None:
            sizes = replace(sizes, **{name: value})
    backends = BACKENDS if args.backend == "all" else (args.backend,)
    urls = {"postgres": args.postgres_url, "redis": args.redis_url}
    console = common.make_console()
    command = common.command_line("benchmarks.retention_bench", argv)
    info = common.machine_info(["langgraph", "langgraph-persist-kit", "psycopg", "redis"],
                               sqlite=sqlite3.sqlite_version, git=package_revision())
    common.print_header(console, info, command, f"sizes: {asdict(sizes)}")
    t0 = time.perf_counter()
    results = run(sizes, backends, urls, trace=not args.no_tracemalloc, console=console,
                  verbose=args.verbose)
    console.print(f"total {time.perf_counter() - t0:.1f} s")
    if args.json:
        common.dump_json(args.json, {
            "command": command, "machine": info, "settings": asdict(sizes),
            "backends": {b: [asdict(f) for f in figs] for b, figs in results.items()},
        })
        console.print(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

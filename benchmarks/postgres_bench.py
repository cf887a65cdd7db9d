"""PostgreSQL suite: langgraph_persist_kit.postgres vs the official langgraph-checkpoint-postgres.

Run from the repo root:
    python -m benchmarks.postgres_bench [--rounds N] [--quick] [--json FILE] [--url URL]
See benchmarks/README.md for what each row measures.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import psycopg
from langgraph.checkpoint.postgres import PostgresSaver as OfficialPostgresSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver as OfficialAsyncPostgresSaver
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from benchmarks import cli, servers
from benchmarks import workloads as wl
from benchmarks.cases import SIDES, UNITS, Case, Derived, Row, Section, SectionResult, Target
from benchmarks.report import machine_info
from benchmarks.runner import run_suite
from benchmarks.trials import Work, side_case
from langgraph_persist_kit._core.urls import redact
from langgraph_persist_kit.postgres import AsyncPostgresSaver, PostgresSaver

URL_VAR, DEFAULT_URL = servers.PG_URL_VAR, servers.PG_DEFAULT
# What the official docs pass to a pool's connections (and what its from_conn_string uses).
OFFICIAL_KWARGS = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
UNITS.setdefault("/s", (1.0, "steps/s"))  # section 3's throughput rows


@dataclass(frozen=True)
class Sizes:
    rounds: int = 9
    steps: int = 200  # 1: super-steps per round
    warm: int = 6  # 1, 3: untimed super-steps on another thread (prepares statements)
    invokes: int = 30  # 2: graph invokes per round
    tasks: int = 8  # 3: concurrent tasks = pool size
    bursts: int = 3  # 3: timed bursts per trial
    burst_steps: int = 25  # 3: super-steps per task per burst
    reads: int = 200  # 4: get_tuple calls per round
    small: int = 10  # 4: checkpoints of the short thread
    big: int = 10_000  # 4: checkpoints of the long thread
    pings: int = 300  # 5: SELECT 1 round trips per round


FULL = Sizes()
QUICK = Sizes(rounds=3, steps=50, invokes=8, bursts=2, burst_steps=10, reads=50, big=2_000,
              pings=100)
TINY = Sizes(rounds=1, steps=3, warm=1, invokes=2, tasks=2, bursts=1, burst_steps=2, reads=3,
             small=3, big=20, pings=3)
WARM_READS = 10  # untimed get_tuple calls after opening a saver (section 4)


# --- databases: ours in schemas of one database, official in a database per case ------------


@dataclass(frozen=True)
class Store:
    """Where one case keeps its rows: a schema in our database; an official database."""
    ours_url: str
    schema: str
    official_url: str


class Stores:
    """Creates ``pk_bench_<pid>_*`` databases on the server and drops them all at `close`."""

    def __init__(self, url: str):
        self.url, self.prefix, self.created = url, f"pk_bench_{os.getpid()}_", list[str]()
        self.ours_url = self._create("ours")

    def _create(self, label: str) -> str:
        self.created.append(self.prefix + label)
        return servers.create_database(self.url, self.prefix + label)

    def new(self, label: str) -> Store:
        """A fresh schema ``s_<label>`` in our database and a fresh official database."""
        return Store(self.ours_url, f"s_{label}", self._create(label))

    def close(self) -> None:
        servers.drop_databases(self.url, self.created)
        self.created.clear()


# --- savers ---------------------------------------------------------------------------------


@contextmanager
def sync_saver(side: str, store: Store) -> Iterator[Any]:
    """Ours on its pool (``from_conn_string`` defaults); the official one on one connection."""
    if side == "ours":
        with PostgresSaver.from_conn_string(store.ours_url, schema=store.schema) as saver:
            yield saver
    else:
        with OfficialPostgresSaver.from_conn_string(store.official_url) as saver:
            saver.setup()
            yield saver


@asynccontextmanager
async def async_saver(side: str, store: Store, pool: int | None = None) -> AsyncIterator[Any]:
    """As `sync_saver`; with ``pool``, both sides on a pool of at most ``pool`` connections."""
    if side == "ours":
        options: dict[str, Any] = {} if pool is None else {"pool_max_size": pool}
        async with AsyncPostgresSaver.from_conn_string(
                store.ours_url, schema=store.schema, **options) as saver:
            yield saver
    elif pool is None:
        async with OfficialAsyncPostgresSaver.from_conn_string(store.official_url) as official:
            await official.setup()
            yield official
    else:
        async with AsyncConnectionPool(  # as its docs show; min_size: the pool's default 4
                store.official_url, min_size=min(4, pool), max_size=pool, open=False,
                kwargs=OFFICIAL_KWARGS) as conns:
            await conns.wait()
            on_pool = OfficialAsyncPostgresSaver(conns)  # type: ignore[arg-type]
            await on_pool.setup()
            yield on_pool


def saver_case(name: str, store: Store, mode: str, work_of: Callable[[Any], Work],
               **kw: Any) -> Case:
    """``work_of(saver)`` on each side's ``mode`` saver, opened afresh every trial."""
    opener = async_saver if mode == "async" else sync_saver
    return side_case(name, lambda side: opener(side, store), work_of, **kw)


# --- 1. saver super-step ------------------------------------------------------------------------


def section_superstep(env: Env) -> Section:
    sizes = env.sizes

    def work(saver: Any) -> Work:
        return wl.warm_chat_work(saver, sizes.steps, sizes.warm)

    items = [saver_case(f"super-step, {mode}", env.stores.new(f"step_{mode}"), mode, work,
                        target=Target.ratio_at_most(0.5)) for mode in ("sync", "async")]
    return Section(f"1. Saver super-step: put_writes(2) + put + get_tuple(latest), µs per step "
                   f"({sizes.steps} steps/round on a new thread; the message list grows 1/step; "
                   "2 of 6 channels change)", items)


# --- 2. compiled graph ---------------------------------------------------------------------------


def section_graph(env: Env) -> Section:
    sizes = env.sizes

    def case(name: str, mode: str, work: Callable[[Any], Work], **kw: Any) -> Case:
        return saver_case(name, env.stores.new(f"graph_{mode}"), mode, work, **kw)

    items = wl.graph_rows(case, sizes.invokes, dict.fromkeys(("sync", "async"),
                                                              Target.ratio_at_most(0.6)))
    return Section(f"2. Compiled graph (3 nodes in sequence + add_messages), {sizes.invokes} "
                   "invokes/round on a new thread", items)


# --- 3. throughput ------------------------------------------------------------------------------


def per_second(name: str, source: str, target: Target | None = None) -> Derived:
    """Super-steps per second from a row of µs per step (ratio > 1: we do more)."""
    def compute(rows: dict[str, Row]) -> Row:
        r = rows[source]
        return Row(name, r.ours and 1e6 / r.ours, r.official and 1e6 / r.official, unit="/s",
                   note="1e6 / the row above; ratio = ours/official, above 1 means we do more")
    return Derived(name, compute, target)


def section_throughput(env: Env) -> Section:
    sizes, store = env.sizes, env.stores.new("throughput")
    name = f"{sizes.tasks} tasks, µs of wall time per super-step"

    def trial(side: str) -> Any:
        return wl.concurrent_chat(partial(async_saver, side, store, sizes.tasks), sizes.tasks,
                                  sizes.warm, sizes.bursts, sizes.burst_steps)

    case = Case(name, {side: partial(trial, side) for side in SIDES},
                note="ours: from_conn_string(pool_max_size=N); official: AsyncPostgresSaver("
                     "AsyncConnectionPool(max_size=N, kwargs=autocommit/prepare_threshold=0/"
                     "dict_row))")
    at_least_3 = Target("ours/official >= 3", lambda r: None if r.ratio is None else r.ratio >= 3)
    return Section(f"3. Throughput: {sizes.tasks} concurrent async tasks, each on its own thread, "
                   f"one saver on a pool of {sizes.tasks}; {sizes.bursts} bursts of "
                   f"{sizes.burst_steps} super-steps per task per round",
                   [case, per_second("super-steps per second, all tasks", name, at_least_3)])


# --- 4. get_tuple vs thread length ----------------------------------------------------------------


def populate(side: str, store: Store, threads: Sequence[tuple[str, int]]) -> None:
    """Fill a store fast, through each saver's own put_writes + put, on one connection with
    ``synchronous_commit=off``, then ANALYZE (untimed; the timed reads use default savers)."""
    url = store.ours_url if side == "ours" else store.official_url
    kwargs = {"autocommit": True} if side == "ours" else OFFICIAL_KWARGS
    with psycopg.connect(url, **kwargs) as conn:
        conn.execute("SET synchronous_commit = off")
        saver: Any = (PostgresSaver(conn, schema=store.schema) if side == "ours"
                      else OfficialPostgresSaver(conn))
        saver.setup()
        wl.fill(saver, threads)
        conn.execute("ANALYZE")


def section_get_tuple(env: Env) -> Section:
    sizes = env.sizes
    alone, shared = env.stores.new("history_short"), env.stores.new("history_long")
    for side in SIDES:
        populate(side, alone, [("short", sizes.small)])
        populate(side, shared, [("long", sizes.big), ("short", sizes.small)])

    items: list[Case | Derived] = []
    for mode in ("sync", "async"):
        def case(name: str, thread_id: str, mode: str = mode) -> Case:
            work = wl.read_work(thread_id, sizes.reads, WARM_READS)
            if thread_id == "short":
                return saver_case(name, alone, mode, work, note="the only thread of its store")
            return saver_case(name, shared, mode, work)

        rows = wl.length_rows(mode, sizes.small, sizes.big, case,
                              "long thread / the short thread alone in its store")
        rows.insert(1, saver_case(
            f"{rows[0].name}, next to the long thread", shared, mode,
            wl.read_work("short", sizes.reads, WARM_READS),
            note=f"same thread, in the store of the {sizes.big:,}-checkpoint thread: the cost "
                 "of the store's size alone"))
        items += rows
    return Section(f"4. get_tuple of the latest checkpoint vs thread length, µs per call "
                   f"({sizes.reads} calls/round; stores built once, reused every round)", items)


# --- 5. the machine's floor ----------------------------------------------------------------------


def floor(name: str, ping: str, serde: str) -> Derived:
    return Derived.floor(name, ping, 3, serde, "3 x SELECT 1 + serialisation")


def section_floor(env: Env) -> Section:
    sizes, url, one = env.sizes, env.stores.ours_url, ("ours",)
    trips = partial(servers.select_trial, url, sizes.pings)  # on a connection of its own
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS floor_commit (x int)")
    pings = {mode: f"SELECT 1 round trip, {mode}" for mode in ("sync", "async")}
    ser = f"serialisation per super-step ({sizes.steps} steps)"
    items: list[Case | Derived] = [
        Case(pings["sync"], dict.fromkeys(one, partial(trips, False)),
             note="psycopg Connection, autocommit"),
        Case(pings["async"], dict.fromkeys(one, partial(trips, True)),
             note="psycopg AsyncConnection, autocommit"),
        Case(ser, dict.fromkeys(one, partial(wl.serde_trial, sizes.steps)),
             note="JsonPlusSerializer: dumps_typed of 2 writes + 2 changed channels, "
                  "loads_typed of the 6 channel values read back"),
        Case("committed 1-row INSERT round trip, sync",
             dict.fromkeys(one, partial(trips, False, "INSERT INTO floor_commit VALUES (1)")),
             note="for reference, not in the floor: a commit waits for the WAL flush"),
        floor("floor per super-step, sync", pings["sync"], ser),
        floor("floor per super-step, async", pings["async"], ser),
    ]
    for mode in ("sync", "async"):  # section 2's steps write other values: no floor here
        if f"super-step, {mode}" in env.done:
            items.append(Derived.over_floor(f"super-step, {mode}",
                                            f"floor per super-step, {mode}", env.done))
    return Section("5. The floor: the round trips and serialisation a section-1 super-step "
                   "cannot avoid (one figure for both savers, in the ours column), and how "
                   "close each section-1 figure is to it", items)


# --- entry points ------------------------------------------------------------------------------


@dataclass
class Env:
    sizes: Sizes
    stores: Stores
    done: dict[str, Row]  # rows of the sections run so far, by name


SECTIONS = (section_superstep, section_graph, section_throughput, section_get_tuple,
            section_floor)


def durability(url: str, stores: Stores) -> str:
    """The server's settings and what a default-configured saver of each side runs with."""
    with psycopg.connect(url) as conn:
        server = {k: conn.execute(f"SHOW {k}").fetchone()[0]  # type: ignore[index]
                  for k in ("server_version", "synchronous_commit", "fsync", "wal_sync_method")}
    store, seen = stores.new("settings"), {}
    for side in SIDES:
        with sync_saver(side, store) as saver:
            conns = saver.conn.connection() if side == "ours" else nullcontext(saver.conn)
            with conns as conn:
                row = conn.execute("SHOW synchronous_commit").fetchone()
                seen[side] = row[0] if side == "ours" else row["synchronous_commit"]
    return (f"server: {', '.join(f'{k}={v}' for k, v in server.items())}; synchronous_commit "
            f"on each saver's connection: ours={seen['ours']}, official={seen['official']}. "
            "Both savers autocommit each write (a WAL flush per commit): same durability.")


def run(sizes: Sizes, url: str = DEFAULT_URL, *, console: Any = None,
        verbose: bool = False) -> list[SectionResult]:
    """Run every section at ``sizes`` (the smoke test calls this with `TINY`)."""
    stores = Stores(url)
    env = Env(sizes, stores, {})
    try:
        if console is not None:
            console.print(f"durability: {durability(url, stores)}\nDatabases {stores.prefix}* "
                          f"on {redact(url)} (dropped at exit).\n")
        return run_suite([partial(build, env) for build in SECTIONS],
                         rounds=sizes.rounds, console=console, verbose=verbose,
                         done=env.done)
    finally:
        stores.close()


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser((__doc__ or "").splitlines()[0])
    p.add_argument("--url", default=os.environ.get(URL_VAR, DEFAULT_URL),
                   help=f"server to run on (default: ${URL_VAR} or {DEFAULT_URL}); the suite "
                        "creates and drops databases named pk_bench_*")
    args = p.parse_args(argv)
    sizes = cli.chosen_sizes(args, FULL, QUICK)
    console = cli.make_console()
    command = cli.command_line("benchmarks.postgres_bench", argv)
    info = machine_info(["langgraph", "langgraph-checkpoint",
                         "langgraph-checkpoint-postgres", "langgraph-persist-kit",
                         "psycopg", "psycopg-pool"], url=redact(args.url))
    return cli.run_and_report(
        console, info, command, asdict(sizes),
        lambda: run(sizes, args.url, console=console, verbose=args.verbose), args.json,
    )


if __name__ == "__main__":
    sys.exit(main())

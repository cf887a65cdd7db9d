"""SQLite suite: langgraph_persist_kit.sqlite vs the official langgraph-checkpoint-sqlite.

Run from the repo root:  python -m benchmarks.sqlite_bench [--rounds N] [--quick] [--json FILE]
See benchmarks/README.md for what each row measures.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver as OfficialSqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver as OfficialAsyncSqliteSaver

from benchmarks import cli
from benchmarks.cases import SIDES, Case, Derived, Section, SectionResult, Target
from benchmarks.report import machine_info
from benchmarks.runner import run_suite
from benchmarks.trials import Space, Work, side_case
from benchmarks.workloads import (
    ChatState,
    ask,
    chat_work,
    compile_graph,
    fill,
    graph_rows,
    latest,
    length_rows,
    read_work,
    reply,
)
from langgraph_persist_kit._core.calls import Call, same
from langgraph_persist_kit.sqlite import AsyncSqliteSaver, SqliteSaver


@dataclass(frozen=True)
class Sizes:
    rounds: int = 9
    steps: int = 200  # 1: super-steps per round
    reads: int = 200  # 2: get_tuple calls per round
    small: int = 10  # 2: checkpoints of the short thread
    big: int = 10_000  # 2: checkpoints of the long thread
    threads: int = 10_000  # 3: threads in the DB
    per_thread: int = 3  # 3: checkpoints per thread
    users: int = 1_000  # 3: distinct metadata "user" values (threads/users match the filter)
    turns: int = 200  # 4: chat turns
    blob: int = 100_000  # 4: bytes of the unchanged string field
    invokes: int = 30  # 5: graph invokes per round
    normal_rows: bool = True  # 1: extra rows, ours at synchronous="normal"


FULL = Sizes()
QUICK = Sizes(rounds=3, steps=50, reads=50, big=2_000, threads=2_000, users=200, turns=40,
              invokes=8, normal_rows=False)
TINY = Sizes(rounds=1, steps=3, reads=3, small=3, big=20, threads=20, per_thread=2, users=10,
             turns=3, blob=1_000, invokes=2)

WARM = 10  # untimed get_tuple calls after opening a saver (section 2)


# --- savers ---------------------------------------------------------------------------


def _file(where: str | Space) -> Any:
    return where.scratch() if isinstance(where, Space) else nullcontext(where)


@contextmanager
def sync_saver(side: str, where: str | Space, synchronous: str = "full") -> Iterator[Any]:
    """A set-up saver on a file (or a scratch file of a `Space`, removed afterwards):
    ours at ``synchronous``, or the official one with its defaults."""
    with _file(where) as path:
        if side == "official":
            with OfficialSqliteSaver.from_conn_string(path) as saver:
                saver.setup()
                yield saver
        else:
            with SqliteSaver.from_conn_string(path, synchronous=synchronous) as saver:  # type: ignore[arg-type]
                yield saver


@asynccontextmanager
async def async_saver(side: str, where: str | Space, synchronous: str = "full"
                      ) -> AsyncIterator[Any]:
    with _file(where) as path:
        if side == "official":
            async with OfficialAsyncSqliteSaver.from_conn_string(path) as saver:
                await saver.setup()
                yield saver
        else:
            async with AsyncSqliteSaver.from_conn_string(path, synchronous=synchronous) as saver:  # type: ignore[arg-type]
                yield saver


def saver_case(name: str, space: Space, mode: str, work_of: Callable[[Any], Work],
               paths: dict[str, str] | None = None, synchronous: str = "full",
               **kw: Any) -> Case:
    """``work_of(saver)`` on each side's ``mode`` ("sync"/"async") saver, on ``paths[side]``
    (kept across rounds) or a fresh scratch file per trial. ``synchronous``: ours only."""
    opener = async_saver if mode == "async" else sync_saver

    def opened(side: str) -> Any:
        where = paths[side] if paths else space
        return opener(side, where, synchronous if side == "ours" else "full")
    return side_case(name, opened, work_of, **kw)


def populate(side: str, path: str, threads: Sequence[tuple[str, int, dict]]) -> None:
    """Fill a DB fast (``synchronous=OFF``; untimed): `workloads.fill` with
    ``(thread_id, checkpoints, metadata)``."""
    with sync_saver(side, path) as saver:
        saver.conn.execute("PRAGMA synchronous=OFF")
        fill(saver, threads)


# --- 1. saver super-step -------------------------------------------------------------------


def section_superstep(space: Space, sizes: Sizes) -> Section:
    def work(saver: Any) -> Work:
        return chat_work(saver, sizes.steps)

    items: list[Case | Derived] = [
        saver_case("super-step, sync (both synchronous=FULL)", space, "sync", work,
                   target=Target.ratio_at_most(0.6)),
        saver_case("super-step, async (both synchronous=FULL)", space, "async", work,
                   target=Target.ratio_at_most(0.5)),
    ]
    if sizes.normal_rows:
        items += [saver_case(f"super-step, {mode}: ours synchronous=NORMAL vs official FULL "
                             "(NOT the same durability)", space, mode, work, synchronous="normal")
                  for mode in ("sync", "async")]
    return Section(f"1. Saver super-step: put_writes(2) + put + get_tuple(latest), µs per step "
                   f"({sizes.steps} steps/round on a fresh DB; the message list grows 1/step; "
                   "2 of 6 channels change)", items)


# --- 2. get_tuple vs thread length ------------------------------------------------------------


def section_get_tuple(space: Space, sizes: Sizes) -> Section:
    paths = {side: space.path(f"history-{side}.db") for side in SIDES}
    for side, path in paths.items():
        populate(side, path, [("short", sizes.small, {}), ("long", sizes.big, {})])

    items: list[Case | Derived] = []
    for mode in ("sync", "async"):
        def case(name: str, thread_id: str, mode: str = mode) -> Case:
            return saver_case(name, space, mode, read_work(thread_id, sizes.reads, WARM), paths)
        items += length_rows(mode, sizes.small, sizes.big, case)
    return Section(f"2. get_tuple of the latest checkpoint vs thread length, µs per call "
                   f"({sizes.reads} calls/round; one DB per saver, reused every round)", items)


# --- 3. threads and metadata filters ------------------------------------------------------------


def section_threads(space: Space, sizes: Sizes) -> Section:
    paths = {side: space.path(f"threads-{side}.db") for side in SIDES}
    spec = [(f"thread-{i:06d}", sizes.per_thread, {"user": f"u-{i % sizes.users}"})
            for i in range(sizes.threads)]
    for side, path in paths.items():
        populate(side, path, spec)
    flt = {"source": "input", "user": "u-7"}
    matches = sum(1 for i in range(sizes.threads) if i % sizes.users == 7)

    def expect(count: int, distinct: bool = False) -> Callable[[Any], None]:
        def check(found: list) -> None:  # runs after the clock stops
            n = len(set(found)) if distinct else len(found)
            assert n == count, f"{n} results, expected {count}"
        return check

    def threads_work(repeat: int) -> Callable[[Any], Work]:
        def work(saver: Any) -> Work:
            if isinstance(saver, (SqliteSaver, AsyncSqliteSaver)):
                ours: Any = saver  # has both forms; mypy sees only its mode's
                threads = Call(ours.list_threads, ours.alist_threads, each=same)
                return Work([[threads]] * repeat, check=expect(sizes.threads))
            walk = Call(saver.list, saver.alist, (None,),
                        each=lambda t: t.config["configurable"]["thread_id"])
            return Work([[walk]] * repeat, check=expect(sizes.threads, distinct=True))
        return work

    def filter_work(saver: Any) -> Work:
        listed = Call(saver.list, saver.alist, (None,), {"filter": flt}, same)
        return Work([[listed]] * 3, check=expect(matches))

    walk = ("official: no list_threads API; a user's equivalent, a full list(None) walk "
            "keeping each thread_id")
    n, items = f"{sizes.threads:,} threads", []
    for mode, repeat in (("sync", 3), ("async", 1)):
        items.append(saver_case(
            f"list_threads(), {n}, {mode}", space, mode, threads_work(repeat), paths, unit="ms",
            target=Target.ours_at_most(50, "ours < 50 ms", strict=True),
            note=walk + ("; 1 call/round, the official walk takes seconds" if repeat == 1 else "")))
    for mode in ("sync", "async"):
        items.append(saver_case(
            f"list(None, filter={flt}), {mode}", space, mode, filter_work, paths, unit="ms",
            note=f"{matches} of {sizes.threads * sizes.per_thread:,} checkpoints match"))
    return Section(f"3. Threads and metadata filters: one DB of {n} x {sizes.per_thread} "
                   "checkpoints per saver, ms per call", items)


# --- 4 and 5. real compiled graphs ---------------------------------------------------------------


def disk_bytes(path: str) -> int:
    """DB + WAL + SHM sizes after ``wal_checkpoint(TRUNCATE)`` on a fresh connection."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()
    return sum(os.path.getsize(p) for p in (path, path + "-wal", path + "-shm")
               if os.path.exists(p))


def section_bytes(space: Space, sizes: Sizes) -> Section:
    blob = ("lorem ipsum dolor sit amet " * (sizes.blob // 27 + 1))[: sizes.blob]

    def chat_bytes(side: str, path: str) -> float:
        with sync_saver(side, path) as saver:
            graph, config = compile_graph(ChatState, {"chat": reply}, saver, False), latest("chat")
            for n in range(sizes.turns):
                graph.invoke({**ask(n), "blob": blob} if n == 0 else ask(n), config)
            state = graph.get_state(config).values
            assert len(state["messages"]) == 2 * sizes.turns and state["blob"] == blob
        return float(disk_bytes(path))

    @contextmanager
    def trial(side: str) -> Iterator[Any]:
        with space.scratch() as path:
            yield lambda: [chat_bytes(side, path)]  # measures bytes, not time

    case = Case(f"bytes on disk after {sizes.turns} turns (+{sizes.blob:,} B unchanged field)",
                {side: partial(trial, side) for side in SIDES}, unit="B",
                kind="value", rounds=1, target=Target.ratio_at_most(0.3),
                note="db + wal + shm after PRAGMA wal_checkpoint(TRUNCATE); sync savers")
    return Section("4. Storage: a real compiled graph (1 node), 1 human + 1 AI message per turn",
                   [case], note="Deterministic: measured once.")


def section_graph(space: Space, sizes: Sizes) -> Section:
    def case(name: str, mode: str, work: Callable[[Any], Work], **kw: Any) -> Case:
        return saver_case(name, space, mode, work, **kw)

    items = graph_rows(case, sizes.invokes, {"sync": Target.ratio_at_most(0.6),
                                             "async": Target.ratio_at_most(0.5)})
    return Section(f"5. Compiled graph (3 nodes in sequence + add_messages), {sizes.invokes} "
                   "invokes/round on one thread of a fresh DB", items)


# --- entry points ----------------------------------------------------------------------------


SECTIONS = (section_superstep, section_get_tuple, section_threads, section_bytes, section_graph)


def pragma_synchronous(side: str, space: Space) -> int:
    """The ``PRAGMA synchronous`` a default-configured saver runs with (2 = FULL)."""
    with sync_saver(side, space) as saver:
        return saver.conn.execute("PRAGMA synchronous").fetchone()[0]


def run(sizes: Sizes, *, console: Any = None, space_root: str | None = None,
        verbose: bool = False) -> list[SectionResult]:
    """Run every section at ``sizes`` (the smoke test calls this with `TINY`)."""
    space = Space(space_root)
    try:
        if console is not None:
            console.print(f"durability: PRAGMA synchronous of a default-configured saver: ours="
                          f"{pragma_synchronous('ours', space)}, official="
                          f"{pragma_synchronous('official', space)} (2 = FULL, 1 = NORMAL); "
                          f"both in WAL mode. DB files under {space.root} (removed at exit).\n")
        builders = [lambda b=b: b(space, sizes) for b in SECTIONS]
        return run_suite(builders, rounds=sizes.rounds, console=console, verbose=verbose)
    finally:
        space.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = cli.parser((__doc__ or "").splitlines()[0]).parse_args(argv)
    sizes = cli.chosen_sizes(args, FULL, QUICK)
    console = cli.make_console()
    command = cli.command_line("benchmarks.sqlite_bench", argv)
    info = machine_info(["langgraph", "langgraph-checkpoint", "langgraph-checkpoint-sqlite",
                         "langgraph-persist-kit", "aiosqlite"],
                        sqlite=sqlite3.sqlite_version)
    return cli.run_and_report(
        console, info, command, asdict(sizes),
        lambda: run(sizes, console=console, verbose=args.verbose), args.json,
    )


if __name__ == "__main__":
    sys.exit(main())

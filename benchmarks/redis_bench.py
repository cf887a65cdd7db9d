"""Redis suite: langgraph_persist_kit.redis vs the module-free langgraph-checkpoint-plainredis.

Run from the repo root:
    python -m benchmarks.redis_bench [--rounds N] [--quick] [--json FILE] [--url URL]
See benchmarks/README.md for what each row measures.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import redis
from langgraph_checkpoint_plainredis import AsyncRedisSaver as PlainAsyncRedisSaver
from langgraph_checkpoint_plainredis import RedisSaver as PlainRedisSaver
from redis.utils import HIREDIS_AVAILABLE

from benchmarks import cli, servers
from benchmarks import workloads as wl
from benchmarks.cases import SIDES, Case, Derived, Row, Section, SectionResult, Target
from benchmarks.report import machine_info
from benchmarks.runner import run_suite
from benchmarks.servers import ServerDown
from benchmarks.trials import Work, side_case
from langgraph_persist_kit._core.calls import Call, same
from langgraph_persist_kit._core.urls import redact
from langgraph_persist_kit.redis import AsyncRedisSaver, RedisSaver

URL_VAR, DEFAULT_URL = servers.REDIS_URL_VAR, servers.REDIS_DEFAULT
MODES = ("sync", "async")


@dataclass(frozen=True)
class Sizes:
    rounds: int = 9
    steps: int = 200  # 1: super-steps per round
    warm: int = 6  # 1: untimed super-steps on another thread first (loads the Lua scripts)
    reads: int = 200  # 2: get_tuple calls per round
    small: int = 10  # 2: checkpoints of the short thread
    big: int = 10_000  # 2: checkpoints of the long thread
    listed: int = 100  # 3: checkpoints of the listed thread
    limit: int = 10  # 3: list(config, limit=...)
    lists: int = 100  # 3: list calls per round
    pings: int = 1_000  # 4: PING round trips per round
    invokes: int = 30  # 5: graph invokes per round


FULL = Sizes()
QUICK = Sizes(rounds=3, steps=50, reads=50, big=2_000, lists=30, pings=300, invokes=8)
TINY = Sizes(rounds=1, steps=3, warm=1, reads=3, small=3, big=20, listed=12, lists=3, pings=3,
             invokes=2)
WARM = 10  # untimed reads after opening a saver


# --- the server and the run's keys ---------------------------------------------------------


def server_info(url: str) -> dict[str, Any]:
    """The server's version and persistence settings.

    Raises:
        ServerDown: With a message naming `URL_VAR`.
    """
    with (servers.answering(url, "--url", "the suite may write keys to"),
          redis.Redis.from_url(url, socket_connect_timeout=5) as client):
        info: dict[str, Any] = {"redis_version": client.info("server")["redis_version"]}
        try:
            for name in ("appendonly", "appendfsync", "save"):
                info.update(client.config_get(name))
        except redis.ResponseError:  # CONFIG disabled (managed servers)
            pass
        return info


@dataclass(frozen=True)
class Store:
    """Where one case keeps its keys: a ``key_prefix`` per side."""
    url: str
    prefixes: Mapping[str, str]


class KeySpaces:
    """Key prefixes of one run, ``pk-bench-<pid>-<random>-<label>-<side>``; `close` deletes
    every key under the run's prefix (SCAN + UNLINK: benchmark cleanup, not a saver API)."""

    def __init__(self, url: str):
        self.url, self.run = url, f"pk-bench-{servers.run_id()}"

    def new(self, label: str) -> Store:
        return Store(self.url, {side: f"{self.run}-{label}-{side}" for side in SIDES})

    def close(self) -> int:
        """Delete the run's keys; how many there were."""
        return servers.unlink_keys(self.url, f"{self.run}-*")


# --- savers -----------------------------------------------------------------------------------


@contextmanager
def sync_saver(side: str, store: Store) -> Iterator[Any]:
    """Ours from ``from_conn_string`` (its defaults); plainredis from ``url=`` (its defaults)."""
    prefix = store.prefixes[side]
    if side == "ours":
        with RedisSaver.from_conn_string(store.url, key_prefix=prefix) as saver:
            yield saver
        return
    plain = PlainRedisSaver(url=store.url, prefix=prefix)
    try:
        yield plain
    finally:
        plain.close()


@asynccontextmanager
async def async_saver(side: str, store: Store) -> AsyncIterator[Any]:
    prefix = store.prefixes[side]
    if side == "ours":
        async with AsyncRedisSaver.from_conn_string(store.url, key_prefix=prefix) as saver:
            yield saver
        return
    plain = PlainAsyncRedisSaver(url=store.url, prefix=prefix)
    try:
        yield plain
    finally:
        await plain.aclose()


def saver_case(name: str, store: Store, mode: str, work_of: Callable[[Any], Work],
               **kw: Any) -> Case:
    """``work_of(saver)`` on each side's ``mode`` saver, opened afresh every trial."""
    opener = async_saver if mode == "async" else sync_saver
    return side_case(name, lambda side: opener(side, store), work_of, **kw)


def populate(store: Store, threads: Sequence[tuple[str, int]]) -> None:
    """`workloads.fill` each side's store through its own sync saver (untimed)."""
    for side in SIDES:
        with sync_saver(side, store) as saver:
            wl.fill(saver, threads)


def client_protocol(client: Any) -> int:
    """The RESP version a saver's client speaks."""
    conn = client.connection_pool.get_connection()
    try:
        return int(conn.protocol)
    finally:
        client.connection_pool.release(conn)


# --- 1. saver super-step ------------------------------------------------------------------------


def section_superstep(env: Env) -> Section:
    sizes = env.sizes

    def work(saver: Any) -> Work:
        return wl.warm_chat_work(saver, sizes.steps, sizes.warm)

    items = [saver_case(f"super-step, {mode}", env.keys.new(f"step-{mode}"), mode, work,
                        target=Target.ratio_at_most(0.35)) for mode in MODES]
    return Section(f"1. Saver super-step: put_writes(2) + put + get_tuple(latest), µs per step "
                   f"({sizes.steps} steps/round on a new thread; the message list grows 1/step; "
                   "2 of 6 channels change)", items)


# --- 2. get_tuple vs thread length ----------------------------------------------------------------


def section_get_tuple(env: Env) -> Section:
    sizes, store = env.sizes, env.keys.new("history")
    populate(store, [("short", sizes.small), ("long", sizes.big)])
    items: list[Case | Derived] = []
    for mode in MODES:
        def case(name: str, thread_id: str, mode: str = mode) -> Case:
            return saver_case(name, store, mode, wl.read_work(thread_id, sizes.reads, WARM))
        items += wl.length_rows(mode, sizes.small, sizes.big, case)
    return Section(f"2. get_tuple of the latest checkpoint vs thread length, µs per call "
                   f"({sizes.reads} calls/round; one key space per saver, built once)", items)


# --- 3. list ------------------------------------------------------------------------------------


def list_name(sizes: Sizes, mode: str) -> str:
    return f"list(config, limit={sizes.limit}), {sizes.listed:,} checkpoints, {mode}"


def section_list(env: Env) -> Section:
    sizes, store = env.sizes, env.keys.new("list")
    populate(store, [("listed", sizes.listed)])

    def check(found: list) -> None:  # runs after the clock stops
        assert len(found) == sizes.limit, f"{len(found)} checkpoints, expected {sizes.limit}"

    def work(saver: Any) -> Work:
        op = [Call(saver.list, saver.alist, (wl.latest("listed"),), {"limit": sizes.limit},
                   same)]
        return Work([op] * sizes.lists, setup=op * WARM, check=check)

    items = [saver_case(list_name(sizes, mode), store, mode, work,
                        target=Target.ratio_at_most(0.2),
                        note="config = thread_id + checkpoint_ns (as get_state_history passes "
                             "it); the tuples are drained in the op")
             for mode in MODES]
    return Section(f"3. list(config, limit={sizes.limit}) of one thread of {sizes.listed} "
                   f"checkpoints, µs per call ({sizes.lists} calls/round, newest first)", items)


# --- 4. the machine's floor ----------------------------------------------------------------------


def section_floor(env: Env) -> Section:
    sizes, url, one = env.sizes, env.keys.url, ("ours",)
    trips = partial(servers.ping_trial, url, sizes.pings)  # on a client of its own
    ping = {mode: f"PING round trip, {mode}" for mode in MODES}
    step = f"serialisation per super-step ({sizes.steps} steps)"
    read = f"serialisation per get_tuple ({sizes.small}-checkpoint thread)"
    listed = f"serialisation per list(limit={sizes.limit})"
    config = wl.latest("t")
    items: list[Case | Derived] = [
        Case(ping["sync"], dict.fromkeys(one, partial(trips, False)),
             note="redis.Redis.ping(), median of the round trips"),
        Case(ping["async"], dict.fromkeys(one, partial(trips, True)),
             note="redis.asyncio.Redis.ping()"),
        Case(step, dict.fromkeys(one, partial(wl.serde_trial, sizes.steps)),
             note="JsonPlusSerializer: dumps_typed of 2 writes + 2 changed channels, "
                  "loads_typed of the 6 channel values read back"),
        Case(read, dict.fromkeys(one, partial(
            wl.read_serde_trial, [("t", sizes.small)], lambda s: [s.get_tuple(config)],
            sizes.reads)), note="loads_typed of the 6 channel values of the latest checkpoint "
                                "(the section-2 threads hold the same small values)"),
        Case(listed, dict.fromkeys(one, partial(
            wl.read_serde_trial, [("t", sizes.listed)],
            lambda s: list(s.list(config, limit=sizes.limit)), sizes.lists)),
             note=f"loads_typed of the channel values and pending writes of {sizes.limit} "
                  "checkpoints"),
    ]
    for mode in MODES:
        items += [Derived.floor(f"floor per super-step, {mode}", ping[mode], 3, step,
                                "3 x PING + serialisation"),
                  Derived.floor(f"floor per get_tuple, {mode}", ping[mode], 1, read,
                                "1 x PING + serialisation"),
                  Derived.floor(f"floor per list, {mode}", ping[mode], 1, listed,
                                "1 x PING + serialisation")]
    for mode in MODES:  # section 5's steps write other values: no floor there
        short, long = wl.length_names(mode, sizes.small, sizes.big)
        for source, floor in ((f"super-step, {mode}", f"floor per super-step, {mode}"),
                              (short, f"floor per get_tuple, {mode}"),
                              (long, f"floor per get_tuple, {mode}"),
                              (list_name(sizes, mode), f"floor per list, {mode}")):
            if source in env.done:
                items.append(Derived.over_floor(source, floor, env.done))
    return Section("4. The floor: the PING round trips and serialisation each operation cannot "
                   "avoid (one figure for both savers, in the ours column; ours sends 1 round "
                   "trip per put, put_writes, get_tuple and list page), and how close each "
                   "figure of sections 1-3 is to it", items)


# --- 5. compiled graph ---------------------------------------------------------------------------


def section_graph(env: Env) -> Section:
    def case(name: str, mode: str, work: Callable[[Any], Work], **kw: Any) -> Case:
        return saver_case(name, env.keys.new(f"graph-{mode}"), mode, work, **kw)

    return Section(f"5. Compiled graph (3 nodes in sequence + add_messages), {env.sizes.invokes} "
                   "invokes/round on a new thread (no target: LangGraph's own per-step work "
                   "is shared by both savers)", wl.graph_rows(case, env.sizes.invokes, {}))


# --- entry points ------------------------------------------------------------------------------


@dataclass
class Env:
    sizes: Sizes
    keys: KeySpaces
    done: dict[str, Row]  # rows of the sections run so far, by name


SECTIONS = (section_superstep, section_get_tuple, section_list, section_floor, section_graph)


def describe(url: str, keys: KeySpaces, info: Mapping[str, Any]) -> str:
    """The server, its persistence, and the client each saver runs on."""
    resp = {}
    store = keys.new("settings")
    for side in SIDES:
        with sync_saver(side, store) as saver:
            resp[side] = client_protocol(saver.client)
    settings = ", ".join(f"{k}={v!r}" for k, v in info.items())
    return (f"server: {redact(url)}, {settings}. Both savers write to this server with "
            f"no WAIT/fsync of their own: the same durability. Clients: ours RESP{resp['ours']} "
            f"(redis-py's default, from_conn_string), plainredis RESP{resp['official']} (its "
            f"default); hiredis parser: {HIREDIS_AVAILABLE}. Keys under {keys.run}-* (one "
            "key_prefix per saver and case; deleted at exit).")


def run(sizes: Sizes, url: str = DEFAULT_URL, *, console: Any = None,
        verbose: bool = False) -> list[SectionResult]:
    """Run every section at ``sizes`` (``main`` with ``--quick`` uses `QUICK`).

    Raises:
        ServerDown: The server does not answer.
    """
    info = server_info(url)
    keys = KeySpaces(url)
    env = Env(sizes, keys, {})
    try:
        if console is not None:
            console.print(describe(url, keys, info) + "\n")
        return run_suite([partial(build, env) for build in SECTIONS], rounds=sizes.rounds,
                         console=console, verbose=verbose, done=env.done)
    finally:
        deleted = keys.close()
        if console is not None:
            console.print(f"deleted {deleted:,} keys under {keys.run}-*")


def main(argv: Sequence[str] | None = None) -> int:
    p = cli.parser((__doc__ or "").splitlines()[0])
    p.add_argument("--url", default=os.environ.get(URL_VAR, DEFAULT_URL),
                   help=f"server to run on (default: ${URL_VAR} or {DEFAULT_URL}); the suite "
                        "writes keys under pk-bench-<pid>-* and deletes them at exit")
    args = p.parse_args(argv)
    sizes = cli.chosen_sizes(args, FULL, QUICK)
    console = cli.make_console()
    command = cli.command_line("benchmarks.redis_bench", argv)
    try:
        server = server_info(args.url)
    except ServerDown as exc:
        console.print(f"[red]{exc}[/]")
        return 2
    info = machine_info(["langgraph", "langgraph-checkpoint",
                         "langgraph-checkpoint-plainredis", "langgraph-persist-kit",
                         "redis", "hiredis"], url=redact(args.url),
                        redis_server=server["redis_version"])
    return cli.run_and_report(
        console, info, command, asdict(sizes),
        lambda: run(sizes, args.url, console=console, verbose=args.verbose), args.json,
    )


if __name__ == "__main__":
    sys.exit(main())

"""Smoke test of the benchmark suites: every case runs at a tiny size (the Redis suite in its
``--quick`` mode) and yields figures.

Catches a benchmark broken by an API change; the figures themselves mean nothing here.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from rich.console import Console

from benchmarks import sqlite_bench
from benchmarks.cases import SIDES, Case, Section
from benchmarks.report import machine_info, to_json
from benchmarks.runner import percentile, run_suite
from tests.helpers.backends import REDIS_URL


@pytest.mark.timeout(60)
def test_sqlite_suite_runs_every_case_at_a_tiny_size(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, width=132)
    results = sqlite_bench.run(sqlite_bench.TINY, console=console, space_root=str(tmp_path))

    assert [r.title.split(".")[0] for r in results] == ["1", "2", "3", "4", "5"]
    rows = [row for result in results for row, _ in result.rows]
    assert len(rows) >= 17
    for row in rows:
        assert row.ours is not None and row.ours > 0, f"{row.name}: ours={row.ours}"
        assert row.official is not None and row.official > 0, f"{row.name}: {row.official}"
    assert "MISSED" in out.getvalue() or "met" in out.getvalue()  # tables were rendered
    payload = to_json(results, machine_info([]), "test", {})
    assert json.loads(json.dumps(payload))["sections"][0]["rows"][0]["ours"] > 0
    assert list(tmp_path.iterdir()) == []  # DB files cleaned up


@pytest.mark.timeout(60)
def test_postgres_suite_runs_every_case_at_a_tiny_size() -> None:
    import psycopg

    from benchmarks import postgres_bench

    url = os.environ.get(postgres_bench.URL_VAR, postgres_bench.DEFAULT_URL)
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {url} does not answer ({exc}). Start it, or set "
                    f"{postgres_bench.URL_VAR} to a server the suite may create databases on.",
                    pytrace=False)
    out = io.StringIO()
    results = postgres_bench.run(postgres_bench.TINY, url, console=Console(file=out, width=132))

    assert [r.title.split(".")[0] for r in results] == ["1", "2", "3", "4", "5"]
    for result in results:
        for row, _ in result.rows:
            assert row.ours is not None and row.ours > 0, f"{row.name}: ours={row.ours}"
            if not result.title.startswith("5.") or row.name.endswith("/ floor"):
                assert row.official is not None and row.official > 0, f"{row.name}: official"
    floor_rows = [row.name for row, _ in results[-1].rows if row.name.endswith("/ floor")]
    assert floor_rows == ["super-step, sync / floor", "super-step, async / floor"]
    assert "MISSED" in out.getvalue() or "met" in out.getvalue()
    assert "synchronous_commit" in out.getvalue()
    with psycopg.connect(url) as conn:  # every database the run created was dropped
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                            (f"pk_bench_{os.getpid()}_%",)).fetchall()
    assert left == []


@pytest.mark.timeout(120)
def test_redis_suite_runs_in_quick_mode(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import redis

    from benchmarks import redis_bench

    url = REDIS_URL  # the tests' own database, not the benchmarks' default db 0
    down = None
    try:
        redis_bench.server_info(url)
    except redis_bench.ServerDown as exc:
        down = str(exc)
    if down:  # never a skip: a missing server fails the run, naming the variable
        pytest.fail(down, pytrace=False)
    out = tmp_path / "redis.json"
    assert redis_bench.main(["--quick", "--url", url, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    payload = json.loads(out.read_text())

    assert payload["settings"]["rounds"] == redis_bench.QUICK.rounds
    sections = payload["sections"]
    assert [s["title"].split(".")[0] for s in sections] == ["1", "2", "3", "4", "5"]
    for section in sections:
        for row in section["rows"]:
            assert row["ours"] is not None and row["ours"] > 0, f"{row['case']}: ours"
            if not section["title"].startswith("4.") or row["case"].endswith("/ floor"):
                assert row["official"] is not None and row["official"] > 0, row["case"]
    floor_rows = [row["case"] for row in sections[3]["rows"] if row["case"].endswith("/ floor")]
    assert len(floor_rows) == 8 and floor_rows[0] == "super-step, sync / floor"
    targets = [row["target"] for section in sections for row in section["rows"] if row["target"]]
    assert "ratio <= 0.35" in targets and "ratio <= 0.2" in targets and "ours <= 1.3x" in targets
    assert "RESP" in printed and ("MISSED" in printed or "met" in printed)
    with redis.Redis.from_url(url) as client:  # every key the run wrote was deleted
        assert list(client.scan_iter(match=f"pk-bench-{os.getpid()}-*", count=1000)) == []


def test_percentile_and_interleaving_order() -> None:
    assert percentile([5, 1, 4, 2, 3], 50) == 3
    assert percentile([5, 1, 4, 2, 3], 90) == 5
    order: list[str] = []

    @contextmanager
    def trial(side: str) -> Iterator[Callable[[], list[float]]]:
        order.append(side)
        yield lambda: [1.0]

    case = Case("c", {side: partial(trial, side) for side in SIDES})
    result = run_suite([Section("s", [case])], rounds=3)
    assert order == ["ours", "official", "official", "ours", "ours", "official"]
    assert result[0].rows[0][0].ratio == 1.0


@pytest.mark.timeout(60)
def test_retention_suite_runs_on_every_backend_at_a_tiny_size(tmp_path: Path) -> None:
    import psycopg
    import redis

    from benchmarks import retention_bench as rb
    from benchmarks.retention.config import TINY

    urls = {"postgres": os.environ.get(rb.PG_URL_VAR, rb.PG_DEFAULT),
            "redis": REDIS_URL, "sqlite": str(tmp_path)}
    out = io.StringIO()
    results = rb.run(TINY, rb.BACKENDS, urls, console=Console(file=out, width=160))

    assert list(results) == list(rb.BACKENDS)
    small, full = TINY.threads // rb.SMALL, TINY.threads
    for backend, figs in results.items():
        assert [f.threads for f in figs] == [small, full], backend
        for f in figs:
            assert f.cleanup["report"]["threads_deleted"] == f.threads // 2, backend
            assert f.prune["report"]["threads_pruned"] == f.threads // 2 + 1, backend  # + live
            assert f.cleanup["longest_batch"] > 0 and f.prune["longest_batch"] > 0
            assert f.cleanup["traced_peak"] > 0 and f.prune["traced_peak"] > 0
            assert f.writer["alone"]["n"] == TINY.writer_steps and "p99" in f.writer["during"]
            assert f.bytes_loaded > 0
            if backend != "redis":  # used_memory moves with the allocator and other clients'
                assert 0 < f.bytes_after_prune < f.bytes_after_cleanup, backend  # keys
    printed = out.getvalue()
    assert "writer p99 during cleanup_expired / alone" in printed and "flat: <= 2x" in printed
    assert list(tmp_path.iterdir()) == []  # SQLite files removed
    with psycopg.connect(urls["postgres"]) as conn:
        assert conn.execute("SELECT datname FROM pg_database WHERE datname = %s",
                            (f"pk_retention_{os.getpid()}",)).fetchall() == []
    with redis.Redis.from_url(urls["redis"]) as client:
        assert list(client.scan_iter(match=f"pk-bench-{os.getpid()}-*", count=1000)) == []


@pytest.mark.timeout(120)
def test_locks_suite_runs_in_quick_mode(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import psycopg
    import redis

    from benchmarks import locks_bench
    from benchmarks.locks import config

    pg = os.environ.get(config.PG_URL_VAR, config.PG_DEFAULT)
    rd = REDIS_URL
    out = tmp_path / "locks.json"
    assert locks_bench.main(["--quick", "--postgres-url", pg, "--redis-url", rd,
                             "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    payload = json.loads(out.read_text())

    assert payload["settings"]["rounds"] == config.QUICK.rounds
    backends = payload["backends"]
    assert list(backends) == list(config.BACKENDS)
    for backend, figures in backends.items():
        assert "error" not in figures, figures.get("error")
        for mode in config.MODES:  # target 1: run time with and without, and what is sent
            run = figures["run_time"][mode]
            assert run["bare_ms"] > 0 and run["locked_ms"] > 0 and run["lock_alone_us"] > 0
            assert run["ratio"] > 0 and run["runs"] == config.QUICK.rounds * config.QUICK.runs
            trips = figures["round_trips"][mode]
            if backend == "sqlite":  # no server: two system calls, no round trip
                assert trips["round_trips_added_per_run"] == 0
                assert trips["added"] == {"lockf(LOCK_EX|LOCK_NB)": 1, "lockf(LOCK_UN)": 1}
            else:
                assert run["round_trip_us"] > 0
                # the patches count every client of this process: a thread an earlier test
                # left running can add to the bare runs, never to the lock's own calls
                assert 1 <= trips["round_trips_added_per_run"] <= 2, (backend, mode, trips)
                own = (("pg_try_advisory_lock", "pg_advisory_unlock") if backend == "postgres"
                       else ("SET",))
                assert all(trips["added"][name] == 1 for name in own), (backend, mode, trips)
            assert trips["target_met"] is True
        throughput = figures["throughput"]  # target 2: figures only, no timing asserted
        assert throughput["processes"] == 8 and len(throughput["locked_samples"]) == 2
        assert throughput["bare_runs_per_s"] > 0 and throughput["locked_runs_per_s"] > 0
        assert throughput["target"] == "ratio >= 0.8" and throughput["ratio"] > 0
    assert "Throughput" in printed and ("MISSED" in printed or "met" in printed)
    with psycopg.connect(pg) as conn:  # the run's schema was dropped, its keys deleted
        assert conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                            (f"pk\\_locks\\_{os.getpid()}\\_%",)).fetchall() == []
    with redis.Redis.from_url(rd) as client:
        assert list(client.scan_iter(match=f"pk-bench-{os.getpid()}-*", count=1000)) == []


@pytest.mark.timeout(60)
def test_storage_suite_measures_every_side_and_draws_the_chart(tmp_path: Path) -> None:
    from benchmarks import servers, storage_bench

    urls = {"postgres": os.environ.get(servers.PG_URL_VAR, servers.PG_DEFAULT),
            "redis": REDIS_URL}
    sizes = storage_bench.TINY
    results = storage_bench.run(sizes, urls)

    assert list(results) == [side.name for side in storage_bench.SIDES]
    for name, measured in results.items():
        points = measured.bytes
        assert list(points) == [0, 2, 4], name
        assert points[4] > points[0] >= 0, (name, points)
        assert measured.get_state_us > 0, name
        assert measured.super_step_us > 0, name
    memory, config = InMemorySaver(), {"configurable": {"thread_id": "count"}}
    storage_bench.chat_graph(storage_bench.Chat).compile(checkpointer=memory).invoke(
        {"messages": [("user", "hi")]}, config)
    assert len(list(memory.list(config))) == storage_bench.SUPER_STEPS  # per turn
    figures = storage_bench.figures(results, sizes)
    assert figures["ours, SQLite"]["vs_official"] > 0
    assert figures["official SQLite"]["vs_official"] is None
    chart = tmp_path / "storage.png"
    storage_bench.chart(results, sizes, str(chart))
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = io.StringIO()
    Console(file=out, width=160).print(storage_bench.table(results, sizes))
    assert "ours, Redis" in out.getvalue()


@pytest.mark.timeout(60)
def test_long_read_suite_times_both_storages_on_every_backend() -> None:
    from benchmarks import long_read_bench, servers

    urls = {"postgres": os.environ.get(servers.PG_URL_VAR, servers.PG_DEFAULT),
            "redis": REDIS_URL}
    results = long_read_bench.run(3, 1, urls)

    assert list(results) == list(long_read_bench.BACKENDS)
    for backend, row in results.items():
        assert row["on"] > 0 and row["off"] > 0, backend
        assert row["ratio"] == pytest.approx(row["on"] / row["off"]), backend
    table = long_read_bench.table(results, 3)
    assert table.row_count == 3


@pytest.mark.timeout(120)
def test_superstep_suite_times_ours_and_the_official_savers_in_both_modes() -> None:
    from benchmarks import servers, superstep_bench

    urls = {"postgres": os.environ.get(servers.PG_URL_VAR, servers.PG_DEFAULT),
            "redis": REDIS_URL}
    results = superstep_bench.run(2, 1, urls)

    assert list(results) == [f"{b} {m}" for b in superstep_bench.BACKENDS
                             for m in superstep_bench.MODES]
    for name, row in results.items():
        assert row["ours"] > 0 and row["official"] > 0 and row["memory"] > 0, name
        assert row["ratio"] == pytest.approx(row["ours"] / row["official"]), name
        assert row["floor"] == pytest.approx(row["memory"] / row["official"]), name
    assert superstep_bench.table(results, 2, 1).row_count == 6


@pytest.mark.timeout(90)
def test_hotpath_suite_runs_every_row_on_every_backend_at_a_tiny_size(tmp_path: Path) -> None:
    import psycopg
    import redis

    from benchmarks import hotpath_bench as hb
    from benchmarks import servers

    urls = {"postgres": os.environ.get(servers.PG_URL_VAR, servers.PG_DEFAULT),
            "redis": REDIS_URL, "sqlite": str(tmp_path)}
    out = io.StringIO()
    console = Console(file=out, width=160)
    try:
        results = hb.run(hb.TINY, hb.BACKENDS, urls, console=console)
    except servers.ServerDown as exc:  # never a skip: a missing server fails, naming its variable
        pytest.fail(str(exc), pytrace=False)

    assert list(results) == list(hb.BACKENDS)
    for backend, sections in results.items():
        assert [r.title.split(" ")[1] for r in sections] == ["1.", "2.", "3.", "4."], backend
        for result in sections:
            floor = result.title.split(" ")[1] == "4."
            for row, _ in result.rows:
                assert row.ours is not None and row.ours > 0, (backend, row.name, "ours")
                if not floor or row.name.endswith("/ floor"):
                    assert row.official is not None and row.official > 0, (backend, row.name)
    rows = hb.summary(results, hb.TINY.tasks)
    assert len(rows) == len(hb.RATIO_ROWS) + len(hb.FLOOR_ROWS)
    for item in rows:
        for backend in hb.BACKENDS:
            modes = item["cells"][backend]
            tasks_row = item["workload"].startswith(f"{hb.TINY.tasks} async tasks")
            assert list(modes) == (["async"] if tasks_row else ["sync", "async"]), item
            assert all(m["value"] > 0 for m in modes.values()), (backend, item)
    hb.print_summary(console, results, hb.TINY)
    printed = out.getvalue()
    assert "| workload | SQLite sync / async | PostgreSQL sync / async | Redis sync / async |" \
        in printed and "PRAGMA synchronous" in printed and "synchronous_commit" in printed
    assert list(tmp_path.iterdir()) == []  # SQLite files removed
    with psycopg.connect(urls["postgres"]) as conn:  # databases dropped, keys deleted
        assert conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                            (f"pk_bench_{os.getpid()}_%",)).fetchall() == []
    with redis.Redis.from_url(urls["redis"]) as client:
        assert list(client.scan_iter(match=f"pk-bench-{os.getpid()}-*", count=1000)) == []

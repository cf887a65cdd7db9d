"""Switching in and out: threads copied between the official savers' stores
(``langgraph-checkpoint-sqlite``, ``-postgres``, ``langgraph-checkpoint-plainredis``,
named by ``langgraph-*`` URLs) and ours, both ways, by ``copy_threads`` and by
``persist-kit copy`` (issue 16). Real graphs with interrupts, a subgraph and ``Send``
(the scenario of tests/helpers/transfer.py) must have equal ``get_state_history`` and
``get_state(subgraphs=True)`` on both sides."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver as OfficialAsyncPostgresSaver

from langgraph_persist_kit import (
    acopy_threads,
    async_saver_from_url,
    copy_threads,
    saver_from_url,
)
from langgraph_persist_kit.cli import cli
from langgraph_persist_kit.errors import ConfigurationError
from langgraph_persist_kit.sqlite import SqliteSaver
from langgraph_persist_kit.transfer.official import official_saver_from_url
from tests.helpers.backends import Space, postgres_url, store_url
from tests.helpers.crafted import CraftingSerde, put_crafted_thread
from tests.helpers.harness import Harness, open_harness
from tests.helpers.official import (
    OFFICIAL_KINDS,
    Point,
    official_harness,
    official_store,
    points_of,
    put_point_thread,
)
from tests.helpers.transfer import GRAPHS, assert_identical_threads, fill

OURS = ["sqlite", "postgres", "redis"]
CASES = [(official, ours) for official in OFFICIAL_KINDS for ours in OURS]
ours_harness = contextmanager(open_harness)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("direction", ["in", "out"])
@pytest.mark.parametrize(("official", "ours"), CASES, ids=[f"{o}-{u}" for o, u in CASES])
def test_threads_move_exactly(tmp_path: Path, official: str, ours: str, direction: str) -> None:
    space = Space(tmp_path, __name__)
    with official_store(official, space) as url, official_harness(url) as theirs, \
            ours_harness(ours, "sync", space) as mine:
        source, target = (theirs, mine) if direction == "in" else (mine, theirs)
        fill(source)
        report = copy_threads(source.saver, target.saver)
        assert report.threads == len(GRAPHS) and report.checkpoints > 30
        assert_identical_threads(source, target)


@pytest.mark.parametrize("official", OFFICIAL_KINDS)
def test_persist_kit_copy_takes_official_urls_on_either_side(tmp_path: Path,
                                                            official: str) -> None:
    space = Space(tmp_path, __name__)
    ours_url = f"sqlite:///{tmp_path / 'ours.db'}"
    with official_store(official, space) as url:
        with official_harness(url) as theirs:
            fill(theirs)
        result = run("copy", url, ours_url)
        assert result.exit_code == 0, result.output
        assert "copied 5 threads" in result.output
        with official_harness(url) as theirs, saver_from_url(ours_url) as saver:
            assert_identical_threads(theirs, Harness("sqlite", "sync", saver, None))
            for name in GRAPHS:
                theirs.saver.delete_thread(name)
        result = run("copy", ours_url, url, "--thread", "sub", "--thread", "paused")
        assert result.exit_code == 0, result.output
        again = run("copy", ours_url, url, "--thread", "sub", "--if-exists", "skip")
        assert again.exit_code == 0 and "skipped 1" in again.output, again.output
        with official_harness(url) as theirs:
            listed = {t.config["configurable"]["thread_id"] for t in theirs.saver.list(None)}
            assert listed == {"sub", "paused"}


async def test_async_savers_both_ways(tmp_path: Path) -> None:
    space = Space(tmp_path, __name__)
    with official_store("postgres", space) as url, store_url("sqlite", space) as ours_url:
        with official_harness(url) as theirs:
            fill(theirs)
        async with (OfficialAsyncPostgresSaver.from_conn_string(url.removeprefix("langgraph-"))
                    as theirs_async, async_saver_from_url(ours_url) as ours):
            assert (await acopy_threads(theirs_async, ours)).threads == len(GRAPHS)
            for name in GRAPHS:
                await theirs_async.adelete_thread(name)
            assert (await acopy_threads(ours, theirs_async)).threads == len(GRAPHS)
        with official_harness(url) as theirs, saver_from_url(ours_url) as saver:
            assert_identical_threads(theirs, Harness("sqlite", "sync", saver, None))


def test_official_urls_say_what_is_wrong(tmp_path: Path) -> None:
    for url, error in ((f"langgraph-sqlite:///{tmp_path / 'missing.db'}", "no SQLite database"),
                       ("langgraph-mongo://host/db", "unknown official store URL")):
        with pytest.raises(ConfigurationError, match=error), official_saver_from_url(url):
            pass
    assert not (tmp_path / "missing.db").exists()
    result = run("threads", f"langgraph-sqlite:///{tmp_path / 'x.db'}")
    assert result.exit_code == 1 and "only `persist-kit copy`" in result.output
    target = f"sqlite:///{tmp_path / 'y.db'}"
    for source, error in (
            ("langgraph-postgres://app:hunter2-secret@127.0.0.1:1/db", "official store"),
            ("langgraph-plainredis://:hunter2-secret@127.0.0.1:1/0", "official store"),
            ("langgraph-plainredis://:hunter2-secret@127.0.0.1:port/0", "not a valid plainredis"),
            (f"{postgres_url(__name__)}?schema=x".replace("postgresql", "langgraph-postgresql"),
             "search_path")):
        result = run("copy", source, target)
        assert result.exit_code == 1, result.output
        assert result.output.count("\n") == 1 and error in result.output, result.output
        assert "hunter2-secret" not in result.output
    assert not (tmp_path / "y.db").exists()  # a source that fails creates no target


def test_a_source_is_only_read(tmp_path: Path) -> None:
    """A copy never sets an official source up: a database without its tables is an
    error naming them, and gets none."""
    empty = postgres_url(__name__).replace("postgresql", "langgraph-postgresql", 1)
    result = run("copy", empty, f"sqlite:///{tmp_path / 'z.db'}")
    assert result.exit_code == 1 and "does not exist" in result.output, result.output
    with psycopg.connect(postgres_url(__name__)) as conn:
        assert conn.execute("SELECT to_regclass('public.checkpoints')").fetchone() == (None,)


@pytest.mark.parametrize("official", OFFICIAL_KINDS)
def test_a_crafted_official_store_runs_no_code(tmp_path: Path, official: str,
                                              marker: Path) -> None:
    """A crafted value (a msgpack extension naming ``os.system``) runs nothing: the
    official PostgreSQL store's values move as bytes; the stores whose values must be
    decoded are read strictly, and the copy stops there, naming the type."""
    space = Space(tmp_path, __name__)
    with official_store(official, space) as url:
        with official_saver_from_url(url, create=True, serde=CraftingSerde(marker)) as saver:
            put_crafted_thread(saver)
        result = run("copy", url, f"sqlite:///{tmp_path / 'ours.db'}")
        with official_saver_from_url(url) as theirs, \
                saver_from_url(f"sqlite:///{tmp_path / 'api.db'}") as ours:
            if official == "postgres":  # raw: copied, the crafted bytes unchanged
                assert result.exit_code == 0, result.output
                assert copy_threads(theirs, ours).threads == 1  # theirs: the default serde
            else:
                assert result.exit_code == 1 and "os.system" in result.output, result.output
                with pytest.raises(ConfigurationError, match=r"os\.system"):
                    copy_threads(theirs, ours)
                assert list(ours.list(None)) == []
    assert not marker.exists()


@pytest.mark.parametrize("direction", ["in", "out"])
@pytest.mark.parametrize("official", ["sqlite", "plainredis"])
def test_a_type_of_your_own_stops_the_copy_or_is_allowed(tmp_path: Path, official: str,
                                                        direction: str) -> None:
    """Where values are decoded (the official SQLite saver, plainredis), a type the strict
    decoding does not rebuild fails the copy before anything is written, naming it; with
    ``allow_types`` it arrives as itself."""
    space = Space(tmp_path, __name__)
    with official_store(official, space) as url, official_harness(url) as theirs, \
            ours_harness("sqlite", "sync", space) as mine:
        source, target = (theirs, mine) if direction == "in" else (mine, theirs)
        put_point_thread(source.saver)
        with pytest.raises(ConfigurationError, match=r"tests\.helpers\.official\.Point"):
            copy_threads(source.saver, target.saver)
        assert target.saver.get_tuple({"configurable": {"thread_id": "p"}}) is None
        copy_threads(source.saver, target.saver, allow_types=[Point])
        assert points_of(target.saver) == (Point(1, 2), Point(3, 4))


def test_values_pass_raw_where_values_are_kept_apart(tmp_path: Path) -> None:
    """The official PostgreSQL saver, and a subclass of ours, take raw values: a type of
    the user's own arrives as itself, no allow_types needed."""

    class MySaver(SqliteSaver):  # a user's subclass, defined in the user's module
        pass

    space = Space(tmp_path, __name__)
    with official_store("postgres", space) as url, official_harness(url) as theirs, \
            ours_harness("sqlite", "sync", space) as mine:
        put_point_thread(mine.saver)
        copy_threads(mine.saver, theirs.saver)
        assert points_of(theirs.saver) == (Point(1, 2), Point(3, 4))
        with MySaver.from_conn_string(str(tmp_path / "mine.db")) as subclassed:
            copy_threads(theirs.saver, subclassed)
            assert points_of(subclassed) == (Point(1, 2), Point(3, 4))

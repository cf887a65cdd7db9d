"""Input no store can hold is a `ConfigurationError` before anything is written, on every
backend x mode: metadata nested thousands deep, lone surrogates (``"\\udcff"``, what
``errors="surrogateescape"`` makes of undecodable bytes) in ids, namespaces, channel
names, metadata and filters, NaN or infinite channel versions, and malformed PostgreSQL
schema names."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.conformance.test_utils import (
    generate_checkpoint,
    generate_config,
    generate_metadata,
)

from langgraph_persist_kit import async_saver_from_url, saver_from_url
from langgraph_persist_kit.errors import ConfigurationError
from langgraph_persist_kit.postgres import PostgresSaver
from langgraph_persist_kit.postgres._plans import PostgresPlans
from tests.helpers.backends import fresh_schema, postgres_url, redis_url
from tests.helpers.harness import Harness

LONE = "\udcff"


def nested(depth: int) -> Any:
    """``depth`` containers inside each other, dicts and lists in turn."""
    value: Any = "leaf"
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


def put(h: Harness, *, thread_id: str = "t", ns: str = "", checkpoint_id: str | None = None,
        channel: str = "c", metadata: dict[str, Any] | None = None,
        version: Any = 1) -> Any:
    checkpoint = generate_checkpoint(channel_values={channel: 1},
                                     channel_versions={channel: version})
    if checkpoint_id is not None:
        checkpoint["id"] = checkpoint_id
    meta = {**generate_metadata(), **(metadata or {})}
    return h.call("put", generate_config(thread_id, checkpoint_ns=ns), checkpoint, meta,
                  {channel: version})


def assert_nothing_stored(h: Harness) -> None:
    assert h.call("list", None) == []
    assert h.call("list_threads") == []


BAD_PUTS = {
    "deep metadata": {"metadata": {"deep": nested(5000)}},
    "metadata just past the depth limit": {"metadata": {"deep": nested(101)}},
    "surrogate metadata value": {"metadata": {"user": f"ada{LONE}"}},
    "surrogate metadata key": {"metadata": {f"k{LONE}": 1}},
    "surrogate nested metadata": {"metadata": {"a": {"b": [1, {"c": LONE}]}}},
    "surrogate thread id": {"thread_id": f"t{LONE}"},
    "surrogate namespace": {"ns": f"sub{LONE}:1"},
    "surrogate checkpoint id": {"checkpoint_id": f"1ef{LONE}"},
    "surrogate channel": {"channel": f"messages{LONE}"},
    "NaN version": {"version": float("nan")},
    "infinite version": {"version": float("inf")},
}


@pytest.mark.parametrize("case", list(BAD_PUTS), ids=list(BAD_PUTS))
def test_bad_puts_are_refused_and_write_nothing(harness: Harness, case: str) -> None:
    with pytest.raises(ConfigurationError):
        put(harness, **BAD_PUTS[case])
    assert_nothing_stored(harness)


def test_metadata_at_the_depth_limit_round_trips(harness: Harness) -> None:
    stored = put(harness, metadata={"deep": nested(99)})  # + the metadata dict: 100
    assert harness.call("get_tuple", stored).metadata["deep"] == nested(99)


@pytest.mark.parametrize("what", ["task_id", "channel", "task_path"])
def test_bad_writes_are_refused_and_write_nothing(harness: Harness, what: str) -> None:
    stored = put(harness)
    args = {"task_id": "task", "channel": "c", "task_path": ""}
    args[what] += LONE
    with pytest.raises(ConfigurationError, match="surrogate"):
        harness.call("put_writes", stored, [(args["channel"], 1)], args["task_id"],
                     args["task_path"])
    assert harness.call("get_tuple", stored).pending_writes == []


BAD_FILTERS = {
    "surrogate key": {f"user{LONE}": "ada"},
    "surrogate value": {"user": f"ada{LONE}"},
    "surrogate in a json value": {"user": {"name": LONE}},
    "deep value": {"user": nested(5000)},
}


@pytest.mark.parametrize("case", list(BAD_FILTERS), ids=list(BAD_FILTERS))
def test_bad_filters_are_refused(harness: Harness, case: str) -> None:
    put(harness, metadata={"user": "ada"})
    with pytest.raises(ConfigurationError):
        harness.call("list", None, filter=BAD_FILTERS[case])
    with pytest.raises(ConfigurationError):
        harness.call("list_threads", filter=BAD_FILTERS[case])


@pytest.mark.parametrize("method", ["get_tuple", "list", "delete_thread"])
def test_surrogate_thread_ids_in_reads_and_deletes_are_refused(harness: Harness,
                                                                method: str) -> None:
    put(harness)
    config = generate_config(f"t{LONE}")
    with pytest.raises(ConfigurationError, match="surrogate"):
        harness.call(method, config["configurable"]["thread_id"] if method == "delete_thread"
                     else config)
    assert len(harness.call("list", None)) == 1


@pytest.mark.parametrize("bad", ["", "1abc", 'a"b', "a;drop", "x" * 64, "sp ace", "ümlaut",
                                 "abc\n", "abc\r\n", "\nabc", "abc\x00"])
def test_schema_names_must_be_plain_identifiers(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="schema"):
        PostgresPlans(bad)
    with pytest.raises(ConfigurationError, match="schema"):
        PostgresSaver(None, schema=bad)  # type: ignore[arg-type]
    url = "postgresql://postgres@127.0.0.1:1/nowhere"  # refused before any connection
    with pytest.raises(ConfigurationError, match="schema"), \
            PostgresSaver.from_conn_string(url, schema=bad):
        pass


# --- options no saver takes --------------------------------------------------------

OPENERS = {
    "sqlite": lambda tmp: ["sqlite:///" + str(tmp / "store.db")],
    "postgres": lambda tmp: [postgres_url(__name__) + f"?schema={fresh_schema()}"],
    "redis": lambda tmp: [redis_url()],
}


@pytest.mark.parametrize("backend", list(OPENERS))
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_unknown_keyword_options_are_named(backend: str, mode: str, tmp_path: Path) -> None:
    (url,) = OPENERS[backend](tmp_path)
    with pytest.raises(ConfigurationError, match=r"'busy_timout'.*did you mean"):
        if mode == "sync":
            with saver_from_url(url, busy_timout=5):
                pass
        else:
            async def open_async() -> None:
                async with async_saver_from_url(url, busy_timout=5):
                    pass

            asyncio.run(open_async())
    assert not (tmp_path / "store.db").exists()  # refused before anything was opened


def test_sqlite_url_options_are_read_and_unknown_ones_named(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with pytest.raises(ConfigurationError, match=r"unknown SQLite URL option 'bogus'"), \
            saver_from_url(url + "?bogus=1"):
        pass
    assert list(tmp_path.iterdir()) == []  # no file named "store.db?bogus=1"
    with pytest.raises(ConfigurationError, match="synchronous"), \
            saver_from_url(url + "?synchronous=sometimes"):
        pass
    with saver_from_url(url + "?synchronous=normal&busy_timeout=7.5") as saver:
        assert saver.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert saver.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 7500
    with saver_from_url(url + "?synchronous=normal", synchronous="full") as saver:
        assert saver.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # the keyword wins

"""``langgraph_persist_kit.server.checkpointer`` outside a server: what it opens, and its
startup errors (the Agent Server itself: test_agent_server.py)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from langgraph.checkpoint.base import empty_checkpoint

from langgraph_persist_kit.errors import ConfigurationError
from langgraph_persist_kit.server import URL_VARIABLE, checkpointer, server_serde
from langgraph_persist_kit.sqlite import AsyncSqliteSaver
from tests.helpers.backends import POSTGRES_URL, fresh_schema, postgres_url


async def test_opens_the_async_saver_the_url_names(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URL_VARIABLE, f"sqlite:///{tmp_path / 'agents.db'}?append_deltas=false")
    async with checkpointer() as saver:
        assert isinstance(saver, AsyncSqliteSaver)
        assert saver.deltas is None  # the option in the URL reached the saver
        assert await saver.aget_tuple({"configurable": {"thread_id": "t"}}) is None
    assert (tmp_path / "agents.db").exists()


@pytest.mark.parametrize("value", [None, "", "  "])
async def test_a_missing_url_says_what_to_set(value: str | None,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    if value is None:
        monkeypatch.delenv(URL_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(URL_VARIABLE, value)
    with pytest.raises(ConfigurationError, match=f"{URL_VARIABLE} is not set"):
        async with checkpointer():
            pass


async def test_a_wrong_url_names_the_variable_and_hides_the_password(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URL_VARIABLE, "mysql://admin:s3cret-pw@db:3306/agents")
    with pytest.raises(ConfigurationError, match=URL_VARIABLE) as caught:
        async with checkpointer():
            pass
    assert "s3cret-pw" not in str(caught.value)
    monkeypatch.setenv(URL_VARIABLE, f"{POSTGRES_URL}?shema=typo")
    with pytest.raises(ConfigurationError, match="shema"):
        async with checkpointer():
            pass


def test_the_server_serializer_outside_a_server(monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """In a server it is ``langgraph_api.serde.Serializer`` (test_agent_server.py checks the
    server's log); without langgraph_api, or without the server's settings, ``None``."""
    monkeypatch.setitem(sys.modules, "langgraph_api.serde", None)  # not installed
    assert server_serde() is None
    monkeypatch.delitem(sys.modules, "langgraph_api.serde")
    monkeypatch.delenv("REDIS_URI", raising=False)  # a setting the server always has
    with caplog.at_level(logging.WARNING, logger="langgraph_persist_kit.server"):
        assert server_serde() is None
    assert "uses LangGraph's default serializer" in caplog.text


async def test_postgres_pool_options_in_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = fresh_schema()
    monkeypatch.setenv(URL_VARIABLE, f"{postgres_url(__name__)}?schema={schema}&pool_min_size=2"
                                     "&pool_max_size=3&pool_timeout=7.5")
    async with checkpointer() as saver:
        assert (saver.conn.min_size, saver.conn.max_size, saver.conn.timeout) == (2, 3, 7.5)
        await saver.aput({"configurable": {"thread_id": "t", "checkpoint_ns": ""}},
                         empty_checkpoint(), {}, {})
        assert len([t async for t in saver.alist(None)]) == 1
    monkeypatch.setenv(URL_VARIABLE, f"{POSTGRES_URL}?pool_max_size=many")
    with pytest.raises(ConfigurationError, match="pool_max_size in the URL must be a whole"):
        async with checkpointer():
            pass

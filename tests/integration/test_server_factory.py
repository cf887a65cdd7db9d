"""``langgraph_persist_kit.server.checkpointer`` outside a server: what it opens, and its
startup errors (the Agent Server itself: test_agent_server.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from langgraph_persist_kit.errors import ConfigurationError
from langgraph_persist_kit.server import URL_VARIABLE, checkpointer, server_serde
from langgraph_persist_kit.sqlite import AsyncSqliteSaver
from tests.helpers.backends import POSTGRES_URL


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


def test_the_server_serializer_or_langgraphs_default() -> None:
    serde = server_serde()  # langgraph_api is a test dependency; outside a server its
    # settings may not load, and the default serializer is used then
    assert serde is None or isinstance(serde, JsonPlusSerializer)

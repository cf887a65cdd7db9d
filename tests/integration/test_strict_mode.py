"""Savers in strict msgpack mode: a real graph with LangChain messages on every backend.

Strict means LangGraph rebuilds only its safe types (LangChain messages among
them) and the types allowed on top. Two ways are tested: a serializer built
strict (`strict_serde`, also under ``EncryptedSerializer``) on SQLite,
PostgreSQL and Redis, sync and async, compared with an ``InMemorySaver``; and
``LANGGRAPH_STRICT_MSGPACK=true``, which LangGraph reads once at import, so that
test runs the graphs in a fresh Python process. The ``--allow-type`` option
and ``PERSIST_KIT_ALLOW_TYPES`` are tested through a command that opens a
store as every ``persist-kit`` command does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer

from langgraph_persist_kit.cli.base import ALLOW_TYPE, PersistKitGroup, open_store
from langgraph_persist_kit.strict_serde import strict_serde
from tests.helpers.backends import Space, store_url
from tests.helpers.differential import assert_same_thread, thread
from tests.helpers.harness import Harness, open_harness
from tests.helpers.paths import ROOT
from tests.helpers.strict import Ticket, ticket_graph

BACKENDS = ["sqlite", "postgres", "redis"]
CASES = [(b, m, s) for b in BACKENDS for m in ("sync", "async") for s in ("strict", "aes")]


def serde_for(kind: str, allow: list[Any]) -> Any:
    strict = strict_serde(allow)
    return strict if kind == "strict" else EncryptedSerializer.from_pycryptodome_aes(
        strict, key=b"0123456789abcdef")


def two_turns(h: Harness, graph: Any) -> Any:
    for text in ("hello", "again"):
        h.invoke(graph, {"messages": [HumanMessage(content=text, id=f"h-{text}")]}, thread("s"))
    return h.get_state(graph, thread("s")).values


@pytest.mark.parametrize(("backend", "mode", "serde"), CASES,
                         ids=[f"{b}-{m}-{s}" for b, m, s in CASES])
def test_a_graph_runs_strict_on_every_backend(
    backend: str, mode: str, serde: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    space = Space(tmp_path, __name__)
    for harness in open_harness(backend, mode, space, serde=serde_for(serde, [Ticket])):
        reference = Harness("memory", mode, InMemorySaver(serde=serde_for(serde, [Ticket])),
                            harness.loop)
        pair = [(h, ticket_graph().compile(checkpointer=h.saver)) for h in (harness, reference)]
        values = [two_turns(h, graph) for h, graph in pair]
        assert values[0] == values[1]
        assert [type(m) for m in values[0]["messages"]] == [HumanMessage, AIMessage] * 2
        assert values[0]["ticket"] == Ticket(2, "again")
        assert_same_thread(pair, thread("s"))
    assert "Deserializing unregistered type" not in caplog.text  # nothing beyond the allowlist


def test_strict_without_the_type_rebuilds_nothing_of_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    with open_store_with(url, strict_serde([Ticket])) as saver:
        two_turns(Harness("sqlite", "sync", saver, None),
                  ticket_graph().compile(checkpointer=saver))
    with open_store_with(url, strict_serde()) as saver:
        values = ticket_graph().compile(checkpointer=saver).get_state(thread("s")).values
    assert values["ticket"] == {"number": 2, "title": "again"}  # plain data, no Ticket built
    assert isinstance(values["messages"][0], HumanMessage)  # messages are safe types


def open_store_with(url: str, serde: Any) -> Any:
    from langgraph_persist_kit import saver_from_url

    return saver_from_url(url, serde=serde)


@click.group(cls=PersistKitGroup)
def probe_cli() -> None:
    """Opens a store as every persist-kit command does."""


@probe_cli.command()
@click.argument("url")
@ALLOW_TYPE
def ticket(url: str) -> None:
    with open_store(url) as saver:
        values = ticket_graph().compile(checkpointer=saver).get_state(thread("s")).values
    click.echo(type(values["ticket"]).__name__)


def test_allow_type_option_and_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    with open_store_with(url, strict_serde([Ticket])) as saver:
        two_turns(Harness("sqlite", "sync", saver, None),
                  ticket_graph().compile(checkpointer=saver))
    runner = CliRunner()
    name = f"{Ticket.__module__}.Ticket"
    assert runner.invoke(probe_cli, ["ticket", url]).stdout == "dict\n"
    assert runner.invoke(probe_cli, ["ticket", url, "--allow-type", name]).stdout == "Ticket\n"
    result = runner.invoke(probe_cli, ["ticket", url], env={"PERSIST_KIT_ALLOW_TYPES": name})
    assert result.stdout == "Ticket\n"
    result = runner.invoke(probe_cli, ["ticket", url, "--allow-type", "Ticket"])
    assert result.exit_code == 2 and "module.Class" in result.output
    result = runner.invoke(probe_cli, ["ticket", url], env={"PERSIST_KIT_ALLOW_TYPES": "a b.C"})
    assert result.exit_code == 1 and "module.Class" in result.output


SCRIPT = """
import asyncio, json
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph_persist_kit import async_saver_from_url, saver_from_url
from tests.helpers.strict import Ticket, ticket_graph

def run(graph):
    for text in ("hello", "again"):
        graph.invoke({{"messages": [HumanMessage(content=text, id="h-" + text)]}}, CONFIG)
    return graph

async def arun(graph):
    for text in ("hello", "again"):
        await graph.ainvoke({{"messages": [HumanMessage(content=text, id="h-" + text)]}}, CONFIG)
    return (await graph.aget_state(CONFIG)).values

def describe(values, saver):
    return {{"messages": [[type(m).__name__, m.content] for m in values["messages"]],
            "ticket": type(values["ticket"]).__name__,
            "strict": saver.serde._allowed_msgpack_modules is not True}}

CONFIG = {{"configurable": {{"thread_id": "s"}}}}
out = {{}}
memory = run(ticket_graph().compile(checkpointer=InMemorySaver()))
out["memory"] = describe(memory.get_state(CONFIG).values, memory.checkpointer)
with saver_from_url({url!r}) as saver:
    graph = run(ticket_graph().compile(checkpointer=saver))
    out["sync"] = describe(graph.get_state(CONFIG).values, graph.checkpointer)

async def main():
    async with async_saver_from_url({url!r}) as saver:
        graph = ticket_graph().compile(checkpointer=saver)
        await saver.adelete_thread("s")
        out["async"] = describe(await arun(graph), graph.checkpointer)

asyncio.run(main())
print(json.dumps(out))
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_langgraph_strict_msgpack_environment(backend: str, tmp_path: Path) -> None:
    """``LANGGRAPH_STRICT_MSGPACK=true``: compile() allows the state's types (Ticket)."""
    with store_url(backend, Space(tmp_path, __name__)) as url:
        script = tmp_path / "strict_run.py"
        script.write_text(textwrap.dedent(SCRIPT.format(url=url)))
        # the script imports tests.helpers.strict: the repository is on its path
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "LANGGRAPH_STRICT_MSGPACK": "true", "PYTHONPATH": path}
        done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                              text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    expected = {"messages": [["HumanMessage", "hello"], ["AIMessage", "reply 1"],
                             ["HumanMessage", "again"], ["AIMessage", "reply 2"]],
                "ticket": "Ticket", "strict": True}
    assert out == {"memory": expected, "sync": expected, "async": expected}
    assert "Blocked deserialization" not in done.stderr

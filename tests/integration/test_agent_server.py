"""End to end: the real LangGraph Agent Server (``langgraph dev``) on
``langgraph_persist_kit.server.checkpointer``, each backend, driven by ``langgraph-sdk``
as an application would, and checked in our store directly (issue 16)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client

from langgraph_persist_kit import saver_from_url
from tests.helpers.agent_server import agent_server, write_project
from tests.helpers.backends import Space, store_url

pytestmark = pytest.mark.slow


def stored(url: str, thread_id: str) -> list[Any]:
    """The thread's checkpoints as our store holds them, newest first."""
    with saver_from_url(url) as saver:
        return list(saver.list({"configurable": {"thread_id": thread_id}}))


def ids_of(history: list[dict]) -> list[str]:
    return [h["checkpoint"]["checkpoint_id"] for h in history]


async def wait_for_run_checkpoint(url: str, thread_id: str, run_id: str) -> None:
    for _ in range(200):
        if any(t.metadata.get("run_id") == run_id for t in stored(url, thread_id)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} stored no checkpoint")


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "redis"])
async def test_the_agent_server_runs_on_our_checkpointer(backend: str, tmp_path: Path) -> None:
    project = write_project(tmp_path / "project")
    with store_url(backend, Space(tmp_path, __name__)) as url:
        with agent_server(project, url) as server:
            # our saver, with the server's serializer (langgraph.json's serde applies)
            assert "serializer langgraph_api.serde.Serializer" in server.log.read_text()
            client = get_client(url=server.url)
            tid = (await client.threads.create(metadata={"owner": "e2e"}))["thread_id"]

            # a turn that stops at the approval interrupt, then its answer
            first = await client.runs.wait(tid, "agent", input={"messages": ["hi"]})
            assert first["__interrupt__"][0]["value"] == {"question": "approve?",
                                                          "last": "echo: hi"}
            assert (await client.threads.get_state(tid))["next"] == ["approval"]
            done = await client.runs.wait(tid, "agent", command={"resume": "yes"})
            assert done["messages"] == ["hi", "echo: hi", "approval: yes"]
            assert done["approved"] is True

            # history is our store, checkpoint for checkpoint; `before` in the SDK's shape
            history = await client.threads.get_history(tid, limit=50)
            ours = stored(url, tid)
            assert ids_of(history) == [t.config["configurable"]["checkpoint_id"] for t in ours]
            assert {t.metadata["thread_id"] for t in ours} == {tid}
            older = await client.threads.get_history(
                tid, limit=50, before={"checkpoint_id": ids_of(history)[2]})
            assert ids_of(older) == ids_of(history)[3:]

            # update_state writes a checkpoint of source "update"
            await client.threads.update_state(tid, {"messages": ["edited"]})
            assert (await client.threads.get_state(tid))["values"]["messages"][-1] == "edited"
            assert stored(url, tid)[0].metadata["source"] == "update"

            # copy: the copy's checkpoints name the copy; the source's run deletion spares it
            copy = (await client.threads.copy(tid))["thread_id"]
            copied = stored(url, copy)
            assert {t.metadata["thread_id"] for t in copied} == {copy}
            assert [h["values"] for h in await client.threads.get_history(copy, limit=50)] == [
                h["values"] for h in await client.threads.get_history(tid, limit=50)]
            with saver_from_url(url) as saver:
                assert [t.thread_id for t in saver.list_threads(filter={"thread_id": tid})] == [
                    tid]
            runs = await client.runs.list(tid)
            oldest = min(runs, key=lambda r: r["created_at"])["run_id"]
            await client.runs.delete(tid, oldest)
            assert not [t for t in stored(url, tid) if t.metadata.get("run_id") == oldest]
            assert len(stored(url, copy)) == len(copied)

            # multitask_strategy="rollback": the first run's checkpoints are deleted
            other = (await client.threads.create())["thread_id"]
            slow = await client.runs.create(other, "agent", input={"messages": ["slow"]})
            await wait_for_run_checkpoint(url, other, slow["run_id"])
            fast = await client.runs.create(other, "agent", input={"messages": ["fast"]},
                                            multitask_strategy="rollback")
            await client.runs.join(other, fast["run_id"])
            values = (await client.threads.get_state(other))["values"]
            assert values["messages"] == ["fast", "echo: fast"]
            assert not [t for t in stored(url, other)
                        if t.metadata.get("run_id") == slow["run_id"]]

            # search, then delete
            found = {t["thread_id"] for t in await client.threads.search(
                metadata={"owner": "e2e"})}
            assert {tid, copy} <= found
            await client.threads.delete(copy)
            assert stored(url, copy) == []
            before_restart = await client.threads.get_state(tid)

        # a restart finds every thread where it was
        with agent_server(project, url) as server:
            client = get_client(url=server.url)
            after = await client.threads.get_state(tid)
            assert after["values"] == before_restart["values"]
            assert after["checkpoint"] == before_restart["checkpoint"]

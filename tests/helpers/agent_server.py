"""A real LangGraph Agent Server (``langgraph dev``) on our checkpointer, for
test_agent_server.py: a project directory with a small graph and ``langgraph.json``
naming ``langgraph_persist_kit.server.checkpointer``, the server on a free port with
``PERSIST_KIT_URL`` set, stopped (and its log shown on failure) afterwards."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import httpx

from tests.helpers.backends import require_tool

GRAPH = '''\
"""A chat turn, then an approval interrupt(); a message "slow" makes the chat wait (so
a second run can roll the first back)."""
import asyncio
import operator
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt


class State(TypedDict, total=False):
    messages: Annotated[list[str], operator.add]
    approved: bool


async def chat(state: State) -> State:
    last = state["messages"][-1]
    if last == "slow":
        await asyncio.sleep(30)
    return {"messages": [f"echo: {last}"]}


def approval(state: State) -> State:
    answer = interrupt({"question": "approve?", "last": state["messages"][-1]})
    return {"approved": answer == "yes", "messages": [f"approval: {answer}"]}


graph = (StateGraph(State).add_node(chat).add_node(approval)
         .add_edge(START, "chat").add_edge("chat", "approval").add_edge("approval", END)
         .compile())
'''

CONFIG = {
    "dependencies": ["."],
    "graphs": {"agent": "./graph.py:graph"},
    "env": {},
    "checkpointer": {"path": "langgraph_persist_kit.server.checkpointer"},
}

QUIET = {  # no analytics, version check or tracing: the machine has no internet
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGSMITH_TRACING": "false",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
}


def write_project(where: Path) -> Path:
    """The server's project directory: graph.py and langgraph.json."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "graph.py").write_text(GRAPH)
    (where / "langgraph.json").write_text(json.dumps(CONFIG, indent=2))
    return where


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server(NamedTuple):
    url: str  # the base URL
    log: Path  # what the server printed


@contextmanager
def agent_server(project: Path, store_url: str, *, startup: float = 60.0) -> Iterator[Server]:
    """``langgraph dev`` in ``project`` on ``store_url``, ready."""
    langgraph = require_tool("langgraph", _venv_tool("langgraph"),
                             purpose="the Agent Server test (pip install 'langgraph-cli[inmem]')")
    port = free_port()
    log = project / f"server-{port}.log"
    env = {**os.environ, **QUIET, "PERSIST_KIT_URL": store_url}
    with log.open("w") as out:
        process = subprocess.Popen(
            [langgraph, "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(process, url, log, startup)
        yield Server(url, log)
    except BaseException:
        sys.stderr.write(f"--- langgraph dev log ({log}) ---\n{log.read_text()[-6000:]}\n")
        raise
    finally:
        _stop(process)


def _venv_tool(name: str) -> str | None:
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else None


def _wait_ready(process: subprocess.Popen, url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"langgraph dev exited with {process.returncode}:\n"
                                 f"{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"langgraph dev did not answer on {url} within {timeout} s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

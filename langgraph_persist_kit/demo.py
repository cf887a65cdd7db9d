"""The ``persist-kit demo`` agent: a real LangGraph graph that survives a restart.

Owns: the scripted demo agent (planner -> human approval -> tool -> responder, no LLM
and no network), the first process of the demo (`run_demo`: two turns, a pause at an
``interrupt()``, time travel afterwards) and its second process (``python -m
langgraph_persist_kit.demo resume ...``: reopen the database and resume the thread).

Run ``persist-kit demo`` rather than this module: ``persist-kit`` starts the
second process itself.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Literal, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, interrupt
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.text import Text

from langgraph_persist_kit._core.urls import backend_of, redact, sqlite_path
from langgraph_persist_kit.errors import ConfigurationError, PersistKitError
from langgraph_persist_kit.strict_serde import strict_serde
from langgraph_persist_kit.urls import saver_from_url

__all__ = ["DEFAULT_DB", "build_graph", "main", "resume_in_this_process", "run_demo"]

DEFAULT_DB = "sqlite:///persist-kit-demo.db"
"""Where ``persist-kit demo`` keeps its threads unless ``--db`` says otherwise."""

SURVIVED = "The conversation survived the restart"
"""The line the second process prints once the resumed thread has its old messages."""

DB_VARIABLE = "PERSIST_KIT_DEMO_DB"
"""How the first process hands the store URL to the second: in its environment, not
its command line, which every user of the machine can read (``ps``)."""

CHILD_TIMEOUT = 120.0
"""Seconds the second process may take before the demo gives up."""

TURNS = ("Hi! I'm Ada.", "What's the weather in Lisbon tomorrow?")
"""What the scripted user says, one message per turn."""

WEATHER = {"lisbon": "24 C and sunny", "paris": "17 C with light rain"}


# --- the agent -------------------------------------------------------------------------


class DemoState(TypedDict, total=False):
    """The demo agent's state: the conversation, and the human's last verdict."""

    messages: Annotated[list[AnyMessage], add_messages]
    approved: bool | None



def _open(url: str) -> Any:
    """The store at ``url``, read strictly: it may be anyone's, and the demo's state
    holds only LangGraph's safe types (LangChain messages among them)."""
    return saver_from_url(url, serde=strict_serde())

def _user_name(messages: Sequence[AnyMessage]) -> str:
    """The name the user gave earlier in the conversation ("friend" if none)."""
    for message in messages:
        if isinstance(message, HumanMessage):
            found = re.search(r"\b(?:I'm|I am|my name is)\s+([A-Z][a-z]+)", str(message.content))
            if found:
                return found.group(1)
    return "friend"


def planner(state: DemoState) -> dict[str, Any]:
    """Decide whether the last user message needs the weather tool (a scripted 'LLM')."""
    messages = state["messages"]
    text = str(messages[-1].content)
    if "weather" not in text.lower():
        return {"approved": None}
    found = re.search(r"\bin ([A-Z][a-z]+)", text)
    city = found.group(1) if found else "Lisbon"
    call = {"name": "get_weather", "args": {"city": city}, "id": f"call_{len(messages)}"}
    reply = AIMessage(content=f"I'll look up the weather in {city}.", tool_calls=[call])
    return {"messages": [reply], "approved": None}


def route_after_planner(state: DemoState) -> Literal["approval", "responder"]:
    """Tool calls go through human approval; anything else straight to the responder."""
    last = state["messages"][-1]
    return "approval" if isinstance(last, AIMessage) and last.tool_calls else "responder"


def approval(state: DemoState) -> dict[str, Any]:
    """Pause the graph with ``interrupt()`` until a human approves the tool call."""
    call = state["messages"][-1].tool_calls[0]  # type: ignore[union-attr]
    answer = interrupt({"question": f"Approve calling {call['name']}({call['args']})?"})
    return {"approved": str(answer).strip().lower() in {"approve", "yes", "y", "true"}}


def route_after_approval(state: DemoState) -> Literal["tool", "responder"]:
    """Run the tool only if the human approved it."""
    return "tool" if state.get("approved") else "responder"


def tool(state: DemoState) -> dict[str, Any]:
    """A scripted ``get_weather`` tool: a fixed forecast, no network."""
    call = state["messages"][-1].tool_calls[0]  # type: ignore[union-attr]
    city = str(call["args"]["city"])
    forecast = WEATHER.get(city.lower(), "19 C and cloudy")
    result = ToolMessage(content=f"{city} tomorrow: {forecast}", tool_call_id=call["id"])
    return {"messages": [result]}


def responder(state: DemoState) -> dict[str, Any]:
    """Answer the user, by name, from what the earlier nodes found."""
    messages = state["messages"]
    name = _user_name(messages)
    last = messages[-1]
    if isinstance(last, ToolMessage):
        text = f"Here you go, {name}: {last.content}."
    elif state.get("approved") is False:
        text = f"No problem, {name}: I won't look it up."
    else:
        text = f"Nice to meet you, {name}! Ask me about the weather anywhere."
    return {"messages": [AIMessage(content=text)]}


def build_graph(checkpointer: BaseCheckpointSaver) -> CompiledStateGraph:
    """Compile the demo agent on ``checkpointer``.

    ``START -> planner -> [approval (interrupt) -> tool] -> responder -> END``
    """
    builder = StateGraph(DemoState)
    builder.add_node("planner", planner)
    builder.add_node("approval", approval)
    builder.add_node("tool", tool)
    builder.add_node("responder", responder)
    builder.add_edge(START, "planner")
    builder.add_conditional_edges("planner", route_after_planner)
    builder.add_conditional_edges("approval", route_after_approval)
    builder.add_edge("tool", "responder")
    builder.add_edge("responder", END)
    return builder.compile(checkpointer=checkpointer)


def _config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


def _speaker(message: AnyMessage) -> str:
    if isinstance(message, ToolMessage):
        return "tool"
    return {"human": "user", "ai": "assistant"}.get(message.type, message.type)


def _describe(message: AnyMessage) -> str:
    """One line for a message, tool calls included."""
    text = str(message.content)
    if isinstance(message, AIMessage):
        for call in message.tool_calls:
            text += f" [calls {call['name']}({call['args']})]"
    return text


def _pending_question(graph: CompiledStateGraph, thread_id: str) -> str | None:
    """The question of the interrupt the thread is paused at, if any."""
    for pending in graph.get_state(_config(thread_id)).interrupts:
        value = pending.value
        return str(value.get("question", value) if isinstance(value, dict) else value)
    return None


# --- the first process -----------------------------------------------------------------


def _say(console: Console, message: AnyMessage) -> None:
    line = Text("  ")
    line.append(f"{_speaker(message):<11}", style="bold cyan")
    line.append(_describe(message))
    console.print(line)


def _resume_elsewhere(url: str, thread_id: str) -> list[str]:
    """Run the second process on ``thread_id``; return its output lines.

    Raises:
        PersistKitError: When it fails or takes longer than `CHILD_TIMEOUT`.
    """
    command = [sys.executable, "-m", "langgraph_persist_kit.demo", "resume"]
    command += ["--thread", thread_id, "--parent-pid", str(os.getpid())]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", DB_VARIABLE: url}
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=env,
            timeout=CHILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise PersistKitError(f"the resuming process took over {CHILD_TIMEOUT:g}s") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise PersistKitError(
            f"the resuming process failed (exit {done.returncode}): {redact(last)}"
        )
    return done.stdout.rstrip().splitlines()


def _check_store(url: str) -> None:
    """Refuse a store the demo cannot use, before it prints anything.

    A SQLite file in a directory that does not exist is refused by the saver itself,
    which the demo opens before its banner.

    Raises:
        ConfigurationError: For an in-memory SQLite database (the second process
            could not see it).
    """
    if backend_of(url) == "sqlite" and sqlite_path(url) == ":memory:":
        raise ConfigurationError(
            "the demo resumes its thread in a second process, which cannot see an in-memory "
            "database: give --db a file, e.g. sqlite:///persist-kit-demo.db"
        )


def run_demo(url: str = DEFAULT_DB, console: Console | None = None) -> str:
    """The quickstart: persist a conversation, resume it in a new process, time travel.

    1. Runs two turns of the demo agent on a fresh thread; the second pauses at
       ``interrupt()``, waiting for a human to approve a tool call.
    2. Closes the database and starts a new Python process that reopens it and
       resumes the thread with ``Command(resume="approve")``.
    3. Back here, branches from the paused checkpoint (``graph.update_state``)
       and answers "reject" instead, so the thread's history becomes a tree.

    Args:
        url: The store, ``sqlite:///persist-kit-demo.db`` by default.
        console: Where to explain each step (a new stdout console by default).

    Returns:
        The demo thread's id.

    Raises:
        ConfigurationError: For a URL of no usable backend, an in-memory database
            or a SQLite file in a missing directory.
        PersistKitError: When the store or the second process fails (before
            anything is printed when the store cannot be opened).
    """
    _check_store(url)
    console = console or Console(highlight=False)
    thread_id = f"demo-{uuid.uuid4().hex[:8]}"
    config = _config(thread_id)

    with _open(url) as saver:  # opened before the banner: a bad store prints nothing
        console.rule("[bold]persist-kit demo")
        console.print(
            "A small LangGraph agent (planner -> human approval -> tool -> responder) with "
            "scripted replies: no LLM, no network. LangGraph saves a checkpoint after every "
            f"step in [bold]{escape(redact(url))}[/], under thread [bold]{escape(thread_id)}[/]."
        )
        graph = build_graph(saver)
        for number, text in enumerate(TURNS, start=1):
            console.print(f"\n[bold]Turn {number}[/]")
            before = len(graph.get_state(config).values.get("messages", []))
            result = graph.invoke({"messages": [HumanMessage(content=text)]}, config)
            for message in result["messages"][before:]:
                _say(console, message)
        question = _pending_question(graph, thread_id)
        paused_at = graph.get_state(config).config
    if question is None:
        raise PersistKitError("the demo agent did not pause at its interrupt")
    console.print(f"  [bold yellow]{'paused':<11}[/]{escape(question)}")
    console.print(
        "\nThe agent is waiting for a human. Its state is only on disk now: this process has "
        "closed the database. A [bold]new Python process[/] will reopen it and resume:"
    )

    lines = _resume_elsewhere(url, thread_id)
    console.print(Panel(Text("\n".join(lines)), title="second process", title_align="left"))

    console.print(
        "\n[bold]Time travel[/]: back in the first process, branch from the checkpoint where "
        'the agent was paused and answer "reject" this time.'
    )
    with _open(url) as saver:
        graph = build_graph(saver)
        branch = graph.update_state(paused_at, None)
        result = graph.invoke(Command(resume="reject"), branch)
        _say(console, result["messages"][-1])
    console.print(
        "Both answers stay in the thread's history: the approved branch and the rejected one."
    )
    return thread_id


# --- the second process ----------------------------------------------------------------


def resume_in_this_process(url: str, thread_id: str, *, answer: str, parent_pid: int) -> None:
    """Reopen ``url``, show the thread's messages, resume it with ``answer``; print plainly.

    Raises:
        PersistKitError: When the thread is missing or not paused.
    """
    print(f"Process {os.getpid()} (the first one was {parent_pid}) reopened {redact(url)}.")
    with _open(url) as saver:
        graph = build_graph(saver)
        config = _config(thread_id)
        earlier = graph.get_state(config).values.get("messages", [])
        question = _pending_question(graph, thread_id)
        if not earlier or question is None:
            raise PersistKitError(f"thread {thread_id!r} is not paused in {redact(url)}")
        print(f"Thread {thread_id} is paused at: {question}")
        print(f"{len(earlier)} messages written by process {parent_pid} are still here:")
        for message in earlier:
            print(f"  {_speaker(message):<11}{_describe(message)}")
        print(f'Resuming with Command(resume="{answer}"):')
        result = graph.invoke(Command(resume=answer), config)
        for message in result["messages"][len(earlier) :]:
            print(f"  {_speaker(message):<11}{_describe(message)}")
        kept = result["messages"][: len(earlier)]
        if [m.id for m in kept] != [m.id for m in earlier]:
            raise PersistKitError("the resumed thread lost messages from before the restart")
    print(f"{SURVIVED}: {len(result['messages'])} messages in thread {thread_id}.")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m langgraph_persist_kit.demo resume ...`` (the second process).

    Returns:
        The exit code: 0, or 1 after printing one ``error:`` line.
    """
    parser = argparse.ArgumentParser(
        prog="python -m langgraph_persist_kit.demo",
        description="The second process of `persist-kit demo`; run `persist-kit demo` instead.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    resume = commands.add_parser("resume", help="reopen the database and resume a paused thread")
    resume.add_argument("--db", default=os.environ.get(DB_VARIABLE, DEFAULT_DB),
                        help=f"store URL (default: ${DB_VARIABLE}, else {DEFAULT_DB})")
    resume.add_argument("--thread", required=True, help="the paused demo thread")
    resume.add_argument("--answer", default="approve", help="the human's answer")
    resume.add_argument("--parent-pid", type=int, default=0, help="pid of the first process")
    args = parser.parse_args(argv)
    try:
        resume_in_this_process(args.db, args.thread, answer=args.answer, parent_pid=args.parent_pid)
    except (PersistKitError, OSError) as exc:
        print(f"error: {redact(' '.join(str(exc).split()))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

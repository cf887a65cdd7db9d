"""Two requests on one thread at the same moment: what goes wrong, and the three fixes.

A scripted support agent (no LLM, no network) takes a while to answer. A user sends two
messages at once (double texting), as two web requests would, on two threads of this
process; the same happens across pods and processes, and the fixes hold there too.

    python examples/double_texting.py                       # SQLite in a temp dir
    python examples/double_texting.py --db postgresql://postgres@127.0.0.1:5432/postgres
    python examples/double_texting.py --db redis://127.0.0.1:6379/0

1. no protection: both runs start from the same checkpoint and one turn is lost;
2. ``LockedGraph``: the second request waits its turn, both turns are kept;
3. ``LockedGraph(wait=0)``: the second request is refused at once (HTTP 409);
4. ``VersionedGraph``: two clicks on one approval screen, one wins, the other is told
   the thread changed.
"""

from __future__ import annotations

import argparse
import operator
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph

from langgraph_persist_kit import saver_from_url
from langgraph_persist_kit.concurrency import (
    LockedGraph,
    StaleThreadError,
    ThreadBusyError,
    VersionedGraph,
)


class Chat(TypedDict, total=False):
    messages: Annotated[list[str], operator.add]
    turns: int


def agent() -> StateGraph:
    """Answers each message after 0.3 s of "thinking", counting its turns (read, then write)."""

    def answer(state: Chat) -> Chat:
        turns = state.get("turns", 0)
        time.sleep(0.3)
        return {"messages": [f"agent: answer #{turns + 1}"], "turns": turns + 1}

    builder = StateGraph(Chat)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    builder.add_edge("answer", END)
    return builder


def at_once(*requests: Callable[[], str]) -> list[str]:
    """Run the requests on threads that start together; their outcomes, in order."""
    start = threading.Barrier(len(requests))
    outcomes = [""] * len(requests)

    def serve(i: int) -> None:
        start.wait()
        outcomes[i] = requests[i]()

    threads = [threading.Thread(target=serve, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def send(graph: Any, thread_id: str, text: str) -> Callable[[], str]:
    def request() -> str:
        try:
            graph.invoke({"messages": [f"user: {text}"]},
                         {"configurable": {"thread_id": thread_id}})
            return "200 ok"
        except ThreadBusyError:
            return "409 busy"

    return request


def show(graph: Any, thread_id: str, title: str, outcomes: list[str]) -> None:
    values = graph.get_state({"configurable": {"thread_id": thread_id}}).values
    kept = sum(message.startswith("user:") for message in values["messages"])
    print(f"{title}: requests {outcomes}; the agent answered {values['turns']} time(s); "
          f"{kept} user message(s) kept")
    for message in values["messages"]:
        print(f"    {message}")
    print()


def main(url: str) -> None:
    run = uuid.uuid4().hex[:6]
    with saver_from_url(url) as saver:
        graph = agent().compile(checkpointer=saver)

        t = f"plain-{run}"
        show(graph, t, "1. no protection", at_once(send(graph, t, "hi"), send(graph, t, "hello?")))

        t = f"locked-{run}"
        locked = LockedGraph(graph)
        show(graph, t, "2. LockedGraph (wait)",
             at_once(send(locked, t, "hi"), send(locked, t, "hello?")))

        t = f"refused-{run}"
        refusing = LockedGraph(graph, wait=0)
        show(graph, t, "3. LockedGraph(wait=0) (reject)",
             at_once(send(refusing, t, "hi"), send(refusing, t, "hello?")))

        t = f"versioned-{run}"
        graph.invoke({"messages": ["user: refund order 17?"]}, {"configurable": {"thread_id": t}})
        seen = graph.get_state({"configurable": {"thread_id": t}}).config["configurable"]
        versioned = VersionedGraph(graph)

        def click(who: str) -> Callable[[], str]:
            def request() -> str:
                try:
                    versioned.invoke({"messages": [f"{who}: approved"]},
                                     {"configurable": {"thread_id": t}},
                                     expected_checkpoint_id=seen["checkpoint_id"])
                    return f"200 ok ({who})"
                except StaleThreadError:
                    return f"409 stale ({who}): the thread changed, reload it"

            return request

        show(graph, t, "4. VersionedGraph (compare-and-set)", at_once(click("ann"), click("bob")))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="a store URL (default: SQLite in a temp dir)")
    args = parser.parse_args()
    if args.db:
        main(args.db)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(f"sqlite:///{os.path.join(tmp, 'chat.db')}")

"""Fork a paused LangGraph session, replay it from a past step, and draw its tree.

A scripted refund agent (no LLM, no network) pauses at ``interrupt()`` for a
human's approval. We fork the session there and answer "approve" on the fork and
"reject" on the original, then re-run the original from a past step with an
edited state, and print the thread's checkpoint tree as Mermaid.

    python examples/fork_and_replay.py [--db URL]

URL is any store langgraph-persist-kit knows: sqlite:///path.db,
postgresql://user@host/db?schema=NAME, redis://host:6379/0?key_prefix=NAME.
Without --db, a SQLite file in a temporary directory, removed at the end.
"""

import argparse
import operator
import re
import tempfile
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from langgraph_persist_kit import checkpoint_tree, fork_session, replay, saver_from_url

AUTO_APPROVE_LIMIT = 50  # refunds up to $50 need no human


# --- the agent: assistant -> approval (interrupt) -> tool ------------------------------


class State(TypedDict, total=False):
    request: str
    amount: int
    approved: bool
    log: Annotated[list[str], operator.add]  # each node appends one line


def assistant(state: State) -> dict:
    """A scripted 'LLM': read the amount from the request and plan a refund."""
    amount = int(re.search(r"\$(\d+)", state["request"]).group(1))
    return {"amount": amount, "log": [f"assistant: I'll refund ${amount}."]}


def approval(state: State) -> dict:
    """Large refunds wait for a human: ``interrupt()`` pauses the graph here."""
    if state["amount"] <= AUTO_APPROVE_LIMIT:
        return {"approved": True, "log": ["approval: auto-approved (small amount)"]}
    answer = interrupt({"question": f"Refund ${state['amount']}? (approve/reject)"})
    return {"approved": answer == "approve", "log": [f"approval: human said {answer!r}"]}


def tool(state: State) -> dict:
    """The action: a fake payments API."""
    return {"log": [f"tool: refunded ${state['amount']}"]}


def build_graph(checkpointer: BaseCheckpointSaver):
    builder = StateGraph(State)
    builder.add_node("assistant", assistant)
    builder.add_node("approval", approval)
    builder.add_node("tool", tool)
    builder.add_edge(START, "assistant")
    builder.add_edge("assistant", "approval")
    builder.add_conditional_edges("approval", lambda s: "tool" if s["approved"] else END)
    builder.add_edge("tool", END)
    return builder.compile(checkpointer=checkpointer)


def show(title: str, values: dict) -> None:
    print(f"{title}:")
    for line in values["log"]:
        print(f"    {line}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", metavar="URL",
        help="store URL: sqlite:///path.db, postgresql://..., redis://... "
        "(default: a SQLite file in a temporary directory, removed at the end)",
    )
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        url = args.db
        if url is None:  # removed with everything in it when the stack closes
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="fork-and-replay-"))
            url = f"sqlite:///{Path(folder) / 'fork_and_replay.db'}"
        print(f"database: {url}" if args.db is None else "database: the store of --db")
        saver = stack.enter_context(saver_from_url(url))
        run(saver)


def run(saver: BaseCheckpointSaver) -> None:
    """Steps 1 to 5 on ``saver``'s store."""
    graph = build_graph(saver)
    config = {"configurable": {"thread_id": f"refund-{uuid.uuid4().hex[:8]}"}}

    # 1. Run until the graph pauses at interrupt() (invoke returns "__interrupt__").
    result = graph.invoke({"request": "Please refund $120 for order 42"}, config)
    print(f"\npaused: {result['__interrupt__'][0].value['question']}")

    # 2. Fork the session at the interrupt: a new thread with the same history,
    #    also paused. (Without a checkpoint_id, the config means the latest one.)
    fork_id = fork_session(graph, config)
    fork_config = {"configurable": {"thread_id": fork_id}}
    print(f"forked {config['configurable']['thread_id']} into {fork_id}\n")

    # 3. Answer the interrupt differently on each thread: they never affect each other.
    show("fork (approve)", graph.invoke(Command(resume="approve"), fork_config))
    show("original (reject)", graph.invoke(Command(resume="reject"), config))
    rejected = graph.get_state(config).config  # this checkpoint id pins the branch
    print(f"fork unchanged: approved={graph.get_state(fork_config).values['approved']}")

    # 4. Replay the original from a past step with an edited state: the checkpoint
    #    where the assistant had planned and approval was next. `update` is applied
    #    as if the assistant had written it, then the graph runs on from there.
    past = next(s for s in graph.get_state_history(config) if s.next == ("approval",))
    edit = {"amount": 30, "log": ["(edit) amount changed to $30"]}
    show("\nreplay with $30", replay(graph, past.config, update=edit, as_node="assistant"))
    # The thread's latest state is now the replayed branch; the rejected one stays.
    show("original branch is still there", graph.get_state(rejected).values)

    # 5. The original thread's tree: the first branch plus one per time travel.
    #    (`persist-kit history --format mermaid` draws the same from the shell.)
    tree = checkpoint_tree(saver, config["configurable"]["thread_id"])
    print(
        f"\nbranches: {len(tree.branches())} (fork: "
        f"{len(checkpoint_tree(saver, fork_id).branches())})"
    )
    print(tree.to_mermaid(), end="")


if __name__ == "__main__":
    main()

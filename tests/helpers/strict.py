"""A graph whose state holds a type of the application's own (test_strict_mode.py, in
process and in the fresh Python process its strict-environment test starts)."""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.messages import AIMessage
from langgraph.graph import MessagesState, StateGraph

from tests.helpers.graphs import one_node_graph


@dataclass
class Ticket:
    """A type of the application's own: strict mode rebuilds it only when allowed."""

    number: int
    title: str


class TicketState(MessagesState):
    ticket: Ticket


def ticket_graph() -> StateGraph:
    def bot(state: TicketState) -> dict:
        turn = sum(1 for m in state["messages"] if m.type == "human")
        return {"messages": [AIMessage(content=f"reply {turn}", id=f"ai-{turn}")],
                "ticket": Ticket(turn, state["messages"][-1].content)}

    return one_node_graph(TicketState, bot)

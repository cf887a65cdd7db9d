"""A thread's checkpoints as a tree of branches, and its Mermaid diagram.

Owns: `CheckpointTree` (what `checkpoint_tree` returns and ``persist-kit history
--format mermaid`` draws) and the record shape of one checkpoint.

Time travel (``invoke`` from a past checkpoint, ``update_state``, `replay`)
gives a checkpoint several children: each leaf of the root namespace ends a
branch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from langgraph.checkpoint.base import CheckpointTuple


def short_id(checkpoint_id: str) -> str:
    """The last 8 characters of a checkpoint id (the whole id when it is short).

    LangGraph's uuid6 ids begin with a timestamp, so checkpoints written in the
    same second share their first characters; the last ones are random.
    """
    return checkpoint_id if len(checkpoint_id) <= 12 else checkpoint_id[-8:]


def checkpoint_record(checkpoint: CheckpointTuple) -> dict[str, Any]:
    """One checkpoint as plain data (the ``history --json`` shape): ``checkpoint_id``,
    ``parent_checkpoint_id``, ``checkpoint_ns``, ``step``, ``source``, ``ts``, ``metadata``."""
    configurable = checkpoint.config["configurable"]
    parent = (checkpoint.parent_config or {}).get("configurable", {})
    metadata = dict(checkpoint.metadata or {})
    return {
        "checkpoint_id": configurable["checkpoint_id"],
        "parent_checkpoint_id": parent.get("checkpoint_id"),
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
        "step": metadata.get("step"),
        "source": metadata.get("source"),
        "ts": checkpoint.checkpoint.get("ts"),
        "metadata": metadata,
    }


@dataclass
class CheckpointTree:
    """The checkpoints of one thread, every namespace, linked parent to child.

    Attributes:
        thread_id: The thread.
        records: `checkpoint_record` dicts, oldest first (by namespace, then id).
    """

    thread_id: str
    records: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_records(cls, thread_id: str, records: Iterable[dict[str, Any]]) -> CheckpointTree:
        ordered = sorted(records, key=lambda r: (r["checkpoint_ns"], r["checkpoint_id"]))
        return cls(thread_id, ordered)

    def children(self, checkpoint_id: str, checkpoint_ns: str = "") -> list[dict[str, Any]]:
        """The checkpoints whose parent is ``checkpoint_id``, oldest first."""
        return [r for r in self.records if r["checkpoint_ns"] == checkpoint_ns
                and r["parent_checkpoint_id"] == checkpoint_id]

    def branches(self) -> list[list[dict[str, Any]]]:
        """Each branch of the root namespace, root first, oldest branch first.

        A branch is the path from the first checkpoint to a leaf (a checkpoint
        nothing was run from); one per time-travel fork, plus the original.
        """
        root = [r for r in self.records if r["checkpoint_ns"] == ""]
        by_id = {r["checkpoint_id"]: r for r in root}
        parents = {r["parent_checkpoint_id"] for r in root}
        paths = []
        for leaf in (r for r in root if r["checkpoint_id"] not in parents):
            path: list[dict[str, Any]] = []
            current: dict[str, Any] | None = leaf
            while current is not None and len(path) <= len(root):
                path.append(current)
                current = by_id.get(current["parent_checkpoint_id"] or "")
            paths.append(path[::-1])
        return paths

    def to_mermaid(self) -> str:
        """A Mermaid ``graph TD`` diagram, oldest at the top.

        One node per checkpoint, labelled ``step N, source, <short id>``, and an
        edge from each parent to its child, so a checkpoint that time travel
        branched from has several outgoing edges. Checkpoints of subgraphs are
        drawn inside a ``subgraph`` block per namespace, their first one joined to
        the enclosing graph's checkpoint by a dotted edge.

        Returns:
            The diagram, ending with a newline (paste it into a ```` ```mermaid ````
            block, or show it in a notebook).
        """
        node_of = {(r["checkpoint_ns"], r["checkpoint_id"]): f"c{i}"
                   for i, r in enumerate(self.records)}
        by_namespace: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in self.records:
            by_namespace[record["checkpoint_ns"]].append(record)
        lines = ["graph TD"]
        for number, (namespace, members) in enumerate(sorted(by_namespace.items())):
            indent = "    "
            if namespace:
                lines.append(f'    subgraph ns{number}["{_label(namespace)}"]')
                indent = "        "
            for r in members:
                text = f"step {r['step']}, {r['source']}, {short_id(r['checkpoint_id'])}"
                node = node_of[(namespace, r["checkpoint_id"])]
                lines.append(f'{indent}{node}["{_label(text)}"]')
            if namespace:
                lines.append("    end")
        for r in self.records:
            node = node_of[(r["checkpoint_ns"], r["checkpoint_id"])]
            parent = node_of.get((r["checkpoint_ns"], r["parent_checkpoint_id"]))
            if parent is not None:
                lines.append(f"    {parent} --> {node}")
            elif (outer := _outer_checkpoint(r, node_of)) is not None:
                lines.append(f"    {outer} -.-> {node}")
        return "\n".join(lines) + "\n"

    def _repr_markdown_(self) -> str:
        """Jupyter shows the diagram (rendered where Mermaid is supported)."""
        return "```mermaid\n" + self.to_mermaid() + "```"


def _label(text: str) -> str:
    """``text`` made safe inside a Mermaid ``["..."]`` label."""
    return text.replace('"', "#quot;")


def _outer_checkpoint(record: dict[str, Any], node_of: dict[tuple[str, str], str]) -> str | None:
    """For the first checkpoint of a subgraph: the node of the enclosing graph's checkpoint.

    LangGraph records it in ``metadata["parents"]`` (namespace -> checkpoint id);
    the longest namespace is the immediately enclosing graph.
    """
    parents = record["metadata"].get("parents")
    if not isinstance(parents, dict) or not parents:
        return None
    namespace = max(parents, key=len)
    return node_of.get((namespace, parents[namespace]))

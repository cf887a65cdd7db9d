"""The export format itself: damaged input, values given once, picking threads.

Pure format and ``InMemorySaver`` tests (no server): what `read_threads` refuses
and with which message, that a thread is imported whole or not at all, and
that the writer and the reader agree on values given once per version.
"""

from __future__ import annotations

import io
import json
import re

import pytest
from langgraph.checkpoint.base import CheckpointTuple, empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_persist_kit import export_threads, import_threads
from langgraph_persist_kit.errors import ConfigurationError
from langgraph_persist_kit.transfer._format import end_line, header_line, thread_lines
from langgraph_persist_kit.transfer._reader import read_threads, to_tuples
from tests.helpers.differential import thread
from tests.helpers.graphs import linear_graph

# --- bad input ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_export() -> str:
    memory = InMemorySaver()
    graph = linear_graph().compile(checkpointer=memory)
    for name in ("one", "two"):
        graph.invoke({"log": [name]}, thread(name))
    out = io.StringIO()
    export_threads(memory, out)
    return out.getvalue()


def _cut(text: str, keep: int, chars: int = 0) -> str:
    lines = text.splitlines(keepends=True)
    return "".join(lines[:keep]) + lines[keep][:chars]


BAD_INPUTS = {
    "empty": (lambda t: "", "the input is empty"),
    "not json": (lambda t: "hello\n" + t, "not a langgraph-persist-kit threads file"),
    "other format": (lambda t: '{"format": "x", "version": 1}\n', "not a langgraph-persist-kit"),
    "newer version": (lambda t: t.replace('"version":1', '"version":2', 1),
                      "format version 2, written by a newer"),
    "truncated line": (lambda t: _cut(t, 9, 40), "line 10: not valid JSON, the file may be trun"),
    "inside a thread": (lambda t: _cut(t, 9), "ends inside thread 'two' after 1 of its 5"),
    "no end record": (lambda t: _cut(t, 13), "ends after line 13 without its end record"),
    "after the end": (lambda t: t + t.splitlines(keepends=True)[1], "line 15: data after the end"),
    "bad base64": (lambda t: re.sub(r'"data":"[^"]{4}', '"data":"!!!!', t, count=1),
                   "line 3: the checkpoint body holds data that is not base64"),
    "missing field": (lambda t: t.replace('"checkpoint_ns":"",', "", 1),
                      "line 3: field 'checkpoint_ns' is missing"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_clearly(small_export: str, case: str) -> None:
    assert len(small_export.splitlines()) == 14  # header, 2 x (thread + 5 checkpoints), end
    damage, message = BAD_INPUTS[case]
    target = InMemorySaver()
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        import_threads(target, io.StringIO(damage(small_export)))
    imported = {t.config["configurable"]["thread_id"] for t in target.list(None)}
    # threads are written whole or not at all: a damaged second thread keeps the first
    assert imported == ({"one"} if case in ("truncated line", "inside a thread") else
                        {"one", "two"} if case in ("no end record", "after the end") else set())


def test_values_are_given_once_per_version_unless_they_differ() -> None:
    """A saver whose versions repeat across values still round-trips (format level)."""
    serde = InMemorySaver().serde
    rows = [({"a": "big", "b": 1}, None), ({"a": "big", "b": 2}, 0), ({"b": 2}, 1), ({}, 2)]
    tuples = []
    for values, parent in rows:
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = values
        checkpoint["channel_versions"] = {"a": "v1", "b": "v1"}
        tuples.append(CheckpointTuple(
            {"configurable": {"thread_id": "t", "checkpoint_ns": "", "checkpoint_id":
                              checkpoint["id"]}},
            checkpoint, {"step": len(tuples)},  # type: ignore[typeddict-item]
            None if parent is None else tuples[parent].config, []))
    lines = thread_lines(serde, "t", tuples)
    given = [json.loads(line)["channel_values"] for line in lines[1:]]
    assert [sorted((k, v is None) for k, v in g.items()) for g in given] == [
        [("a", False), ("b", False)], [("b", False)], [("a", True)], [("b", True)]]
    text = header_line() + "".join(lines) + end_line(1, 4)
    (thread_records,) = read_threads(io.StringIO(text))
    read = to_tuples(serde, thread_records)
    assert [t.checkpoint["channel_values"] for t in read] == [v for v, _ in rows]
    assert read == tuples


def test_export_picks_threads_and_refuses_unknown_ones(small_export: str) -> None:
    memory = InMemorySaver()
    import_threads(memory, io.StringIO(small_export))
    out = io.StringIO()
    report = export_threads(memory, out, thread_ids=["two", "one", "two"])
    assert (report.threads, report.checkpoints) == (2, 10)
    threads = [json.loads(line)["thread_id"] for line in out.getvalue().splitlines()
               if '"type":"thread"' in line]
    assert threads == ["two", "one"]  # the order asked for, once each
    with pytest.raises(ConfigurationError, match="'missing' has no checkpoints"):
        export_threads(memory, io.StringIO(), thread_ids=["missing"])
    copy = InMemorySaver()
    assert import_threads(copy, small_export).threads == 2  # one string works too
    with pytest.raises(ConfigurationError, match="not one string"):
        export_threads(memory, io.StringIO(), thread_ids="one")

"""The ``persist-kit`` command line: demo, threads, history, errors and help.

A module-scoped SQLite file is filled by running small real graphs with
`SqliteSaver`; the commands are run on it with click's `CliRunner`, and the demo
once as a real ``python -m langgraph_persist_kit`` subprocess.
"""

from __future__ import annotations

import itertools
import json
import operator
import re
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypedDict

import click
import pytest
from click.testing import CliRunner, Result
from langgraph.graph import END, START, StateGraph

from langgraph_persist_kit.cli import cli
from langgraph_persist_kit.cli.output import short_id
from langgraph_persist_kit.demo import SURVIVED, build_graph
from langgraph_persist_kit.demo import main as demo_main
from langgraph_persist_kit.sqlite import SqliteSaver

HISTORY_KEYS = {
    "checkpoint_id",
    "parent_checkpoint_id",
    "checkpoint_ns",
    "step",
    "source",
    "ts",
    "metadata",
}


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def _step(name: str) -> Any:
    return lambda state: {"log": [name]}


def _graph(saver: SqliteSaver) -> Any:
    """START -> a -> inner (a subgraph: x) -> b -> END."""
    inner = StateGraph(State)
    inner.add_node("x", _step("x"))
    inner.add_edge(START, "x")
    inner.add_edge("x", END)
    outer = StateGraph(State)
    outer.add_node("a", _step("a"))
    outer.add_node("inner", inner.compile())
    outer.add_node("b", _step("b"))
    outer.add_edge(START, "a")
    outer.add_edge("a", "inner")
    outer.add_edge("inner", "b")
    outer.add_edge("b", END)
    return outer.compile(checkpointer=saver)


def _config(thread_id: str, **metadata: Any) -> Any:
    return {"configurable": {"thread_id": thread_id}, "metadata": metadata}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A SQLite file with threads ``ada`` (1 run), ``bob`` (2 runs) and ``branchy``.

    ``branchy`` was run once, then again from its checkpoint before node ``b``
    (time travel), so that checkpoint has two children. Written in this order,
    so ``branchy`` is the most recently updated thread.
    """
    path = tmp_path_factory.mktemp("cli") / "store.db"
    with SqliteSaver.from_conn_string(str(path)) as saver:
        graph = _graph(saver)
        graph.invoke({"log": []}, _config("ada", user="ada"))
        graph.invoke({"log": []}, _config("bob", user="bob"))
        graph.invoke({"log": []}, _config("bob", user="bob"))
        graph.invoke({"log": []}, _config("branchy", user="cy"))
        before_b = next(s for s in graph.get_state_history(_config("branchy")) if s.next == ("b",))
        graph.invoke(None, before_b.config)
        fork_id = before_b.config["configurable"]["checkpoint_id"]
    return {"url": f"sqlite:///{path}", "path": path, "fork_id": fork_id}


def run(*args: str) -> Result:
    """Invoke the CLI in-process, laid out as when piped (no COLUMNS)."""
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": None})


def assert_one_line_failure(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


# --- threads -------------------------------------------------------------------------


def test_threads_json_shape_and_order(store: dict[str, Any]) -> None:
    result = run("threads", store["url"], "--json")
    assert result.exit_code == 0, result.output
    threads = json.loads(result.stdout)
    assert [t["thread_id"] for t in threads] == ["branchy", "bob", "ada"]
    for thread in threads:
        assert set(thread) == {"thread_id", "created_at", "updated_at", "metadata"}
        created = datetime.fromisoformat(thread["created_at"])
        updated = datetime.fromisoformat(thread["updated_at"])
        assert created.utcoffset() == timedelta(0)
        assert created <= updated
    by_id = {t["thread_id"]: t for t in threads}
    assert by_id["ada"]["metadata"]["user"] == "ada"
    assert by_id["ada"]["metadata"]["step"] == 3
    assert by_id["bob"]["metadata"]["step"] == 8


def test_threads_filter_parses_json_values(store: dict[str, Any]) -> None:
    def ids(*args: str) -> list[str]:
        result = run("threads", store["url"], "--json", *args)
        assert result.exit_code == 0, result.output
        return [t["thread_id"] for t in json.loads(result.stdout)]

    assert ids("--filter", "user=bob") == ["bob"]
    assert ids("--filter", "step=8") == ["bob"]  # the int 8
    assert ids("--filter", 'step="8"') == []  # the string "8" is not the int 8
    assert ids("--filter", "step=3") == ["ada"]
    assert ids("--filter", "source=loop") == ["branchy", "bob", "ada"]
    assert ids("--filter", "step=3", "--filter", "user=ada") == ["ada"]
    assert ids("--filter", "user=nobody") == []


def test_threads_limit(store: dict[str, Any]) -> None:
    result = run("threads", store["url"], "--json", "--limit", "1")
    assert result.exit_code == 0, result.output
    assert [t["thread_id"] for t in json.loads(result.stdout)] == ["branchy"]
    result = run("threads", store["url"], "--json", "--limit", "2", "--filter", "source=loop")
    assert [t["thread_id"] for t in json.loads(result.stdout)] == ["branchy", "bob"]
    result = run("threads", store["url"], "--json", "--limit", "0")
    assert json.loads(result.stdout) == []


def test_threads_table(store: dict[str, Any]) -> None:
    result = run("threads", store["url"])
    assert result.exit_code == 0, result.output
    assert "\x1b[" not in result.stdout  # no colour codes when not a terminal
    for thread_id in ("ada", "bob", "branchy"):
        assert re.search(rf"\b{thread_id}\b", result.stdout)
    assert '"user": "bob"' in result.stdout
    empty = run("threads", store["url"], "--filter", "user=nobody")
    assert empty.exit_code == 0
    assert "No threads" in empty.stdout


# --- history -------------------------------------------------------------------------


def test_history_json_is_every_namespace_newest_first(store: dict[str, Any]) -> None:
    result = run("history", store["url"], "ada", "--json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert all(set(r) == HISTORY_KEYS for r in records)
    with SqliteSaver.from_conn_string(str(store["path"])) as saver:
        expected = [
            t.config["configurable"]["checkpoint_id"]
            for t in saver.list({"configurable": {"thread_id": "ada"}})
        ]
    assert [r["checkpoint_id"] for r in records] == expected
    root = [r for r in records if r["checkpoint_ns"] == ""]
    inner = [r for r in records if r["checkpoint_ns"].startswith("inner:")]
    assert [r["step"] for r in root] == [3, 2, 1, 0, -1]
    assert [r["step"] for r in inner] == [1, 0, -1]
    assert root[-1]["source"] == "input" and root[-1]["parent_checkpoint_id"] is None
    for newer, older in itertools.pairwise(root):
        assert newer["parent_checkpoint_id"] == older["checkpoint_id"]
        assert datetime.fromisoformat(newer["ts"]) >= datetime.fromisoformat(older["ts"])
    assert root[0]["metadata"]["user"] == "ada"
    assert root[0]["step"] == root[0]["metadata"]["step"]
    assert run("history", store["url"], "ada", "--format", "json").stdout == result.stdout


def test_history_table(store: dict[str, Any]) -> None:
    result = run("history", store["url"], "ada")
    assert result.exit_code == 0, result.output
    records = json.loads(run("history", store["url"], "ada", "--json").stdout)
    for record in records:  # full ids, not folded, even when piped
        assert record["checkpoint_id"] in result.stdout
    assert "inner:" in result.stdout


def _mermaid_edges(text: str) -> tuple[dict[str, str], set[tuple[str, str]]]:
    """(short id -> node, {(parent node, child node)}) of a solid-edge diagram."""
    nodes = {m[1]: m[0] for m in re.findall(r'(c\d+)\["step -?\d+, \w+, (\w+)"\]', text)}
    edges = set(re.findall(r"(c\d+) --> (c\d+)", text))
    return nodes, edges


def test_history_mermaid_shows_time_travel_branch(store: dict[str, Any]) -> None:
    result = run("history", store["url"], "branchy", "--format", "mermaid")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.splitlines()[0] in ("graph TD", "graph BT")
    records = json.loads(run("history", store["url"], "branchy", "--json").stdout)
    nodes, edges = _mermaid_edges(text)
    assert len(nodes) == len(records)
    for record in records:
        assert f"step {record['step']}, {record['source']}, " in text
        if record["parent_checkpoint_id"]:
            parent = nodes[short_id(record["parent_checkpoint_id"])]
            assert (parent, nodes[short_id(record["checkpoint_id"])]) in edges
    children = Counter(parent for parent, _ in edges)
    fork_node = nodes[short_id(store["fork_id"])]
    assert children[fork_node] == 2
    assert [node for node, count in children.items() if count > 1] == [fork_node]
    assert "subgraph" in text and "-.->" in text  # the inner graph's namespace


def test_history_json_conflicts_with_other_format(store: dict[str, Any]) -> None:
    result = run("history", store["url"], "ada", "--json", "--format", "mermaid")
    assert result.exit_code == 2


# --- failures ------------------------------------------------------------------------


def test_unknown_thread_fails_with_one_line(store: dict[str, Any]) -> None:
    assert_one_line_failure(run("history", store["url"], "nobody"), "'nobody'", "no checkpoints")


@pytest.mark.parametrize("command", ["threads", "history"])
def test_bad_url_fails_with_one_line(command: str) -> None:
    args = [command, "mysql://x"] + (["t"] if command == "history" else [])
    assert_one_line_failure(run(*args), "mysql://x")


def test_not_yet_supported_backend_fails_with_one_line() -> None:
    assert_one_line_failure(run("threads", "postgresql://localhost/db"), "PostgreSQL")


def test_missing_sqlite_file_fails_without_creating_it(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    assert_one_line_failure(run("threads", f"sqlite:///{missing}"), "typo.db")
    assert not missing.exists()


def test_file_that_is_not_a_database_fails_with_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("not a database\n" * 100)
    assert_one_line_failure(run("threads", f"sqlite:///{junk}"))


def test_demo_refuses_in_memory_database() -> None:
    assert_one_line_failure(run("demo", "--db", "sqlite:///:memory:"), "in-memory")


def test_demo_names_a_missing_directory_before_printing_anything(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"
    result = run("demo", "--db", f"sqlite:///{missing}/demo.db")
    assert_one_line_failure(result, f"the directory '{missing}' does not exist")
    assert result.stdout == ""  # no banner first
    assert not missing.exists()


def test_demo_opens_the_store_before_printing_anything(tmp_path: Path) -> None:
    url = "postgresql://postgres@127.0.0.1:1/nowhere"
    result = run("demo", "--db", url)
    assert_one_line_failure(result, "unavailable")
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["threads", "sqlite:///x.db", "--bogus"],
        ["threads", "sqlite:///x.db", "--limit", "-1"],
        ["threads", "sqlite:///x.db", "--limit", "many"],
        ["threads", "sqlite:///x.db", "--filter", "novalue"],
        ["threads", "sqlite:///x.db", "--filter", "=3"],
        ["threads", "sqlite:///x.db", "--filter", "a=1", "--filter", "a=2"],
        ["history", "sqlite:///x.db"],
        ["history", "sqlite:///x.db", "t", "--format", "xml"],
        ["threads"],
        ["no-such-command"],
    ],
)
def test_usage_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x.db").exists()


def test_every_command_has_help_mentioning_each_option() -> None:
    top = run("--help")
    assert top.exit_code == 0
    assert set(cli.commands) >= {"demo", "threads", "history"}
    for name, command in cli.commands.items():
        assert name in top.stdout
        assert command.help and command.help.strip()
        result = run(name, "--help")
        assert result.exit_code == 0, result.output
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{name} {param.opts} has no help"
                for opt in param.opts:
                    assert opt in result.stdout, f"{name} --help does not mention {opt}"
            else:
                assert (param.metavar or param.name or "").upper() in result.stdout


# --- demo ----------------------------------------------------------------------------


def test_demo_second_process_fails_cleanly_on_a_thread_that_is_not_paused(
    store: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code = demo_main(["resume", "--db", store["url"], "--thread", "nobody"])
    assert code == 1
    assert capsys.readouterr().err.strip().startswith("error: thread 'nobody' is not paused")


@pytest.mark.slow
def test_demo_runs_in_a_real_process_and_resumes_in_another(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    done = subprocess.run(
        [sys.executable, "-m", "langgraph_persist_kit", "demo", "--db", f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert SURVIVED in out
    pids = re.search(r"Process (\d+) \(the first one was (\d+)\)", out)
    assert pids is not None and pids[1] != pids[2]
    assert "Hi! I'm Ada." in out.split(SURVIVED)[0]  # shown by the second process
    assert "Here you go, Ada: Lisbon tomorrow" in out
    assert "No problem, Ada" in out  # the time-travel branch

    with SqliteSaver.from_conn_string(f"sqlite:///{db}") as saver:
        threads = list(saver.list_threads())
        assert len(threads) == 1
        thread_id = threads[0].thread_id
        assert thread_id.startswith("demo-") and thread_id in out
        checkpoints = list(saver.list({"configurable": {"thread_id": thread_id}}))
        assert len(checkpoints) >= 8
        assert all(c.checkpoint["id"] in out for c in checkpoints)  # the history table
        parents = Counter(
            c.parent_config["configurable"]["checkpoint_id"] for c in checkpoints if c.parent_config
        )
        assert max(parents.values()) == 2  # the branch made by time travel
        contents = [
            str(m.content)
            for snapshot in build_graph(saver).get_state_history(_config(thread_id))
            for m in snapshot.values.get("messages", [])
        ]
    assert "Lisbon tomorrow: 24 C and sunny" in contents  # written by the second process
    assert "No problem, Ada: I won't look it up." in contents
    assert {p.name for p in tmp_path.iterdir()} <= {"d.db", "d.db-wal", "d.db-shm"}

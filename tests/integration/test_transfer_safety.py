"""Import and copy keep order and never lose data: task paths travel with pending
writes, a failed write leaves no half thread, ``replace`` keeps the old thread until
the new one is whole, and unreadable files are a one-line error."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import ormsgpack
import pytest
from click.testing import CliRunner
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import EXT_CONSTRUCTOR_POS_ARGS, JsonPlusSerializer

from langgraph_persist_kit import copy_threads, export_threads, fork_session
from langgraph_persist_kit._core.raw_values import raw_view
from langgraph_persist_kit.cli import cli
from langgraph_persist_kit.errors import ConfigurationError
from langgraph_persist_kit.sqlite import SqliteSaver
from tests.helpers.crafted import CraftingSerde, payload, put_crafted_thread
from tests.helpers.differential import thread
from tests.helpers.sessions import answer, review_graph
from tests.helpers.transfer import copy, export_text, import_text, side

KINDS = ["memory", "sqlite", "postgres", "redis"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("how", ["file", "copy"])
def test_imported_writes_keep_their_task_paths(kind: str, how: str, tmp_path: Path) -> None:
    """Writes made after the import sort among the imported ones as on the source."""
    with side(kind, "sync", tmp_path / "a") as source, side("memory", "sync", tmp_path) as target:
        graphs = [review_graph().compile(checkpointer=h.saver) for h in (source, target)]
        source.invoke(graphs[0], {"items": []}, thread("t"))
        answer(source, graphs[0], "t", [1])
        text = export_text(source)
        assert '"task_path":"~__pregel_push' in text
        if how == "file":
            import_text(target, text)
        else:
            copy_threads(source.saver, target.saver)
        for h, graph in zip((source, target), graphs, strict=True):
            answer(h, graph, "t", [0, 2])
        expected = ["plan", "0:a0", "1:a1", "2:a2", "after"]
        assert [h.get_state(g, thread("t")).values["items"]
                for h, g in zip((source, target), graphs, strict=True)] == [expected] * 2


def _with_bad_last_checkpoint(text: str) -> str:
    """The export with NUL nested in the last checkpoint's metadata (Postgres refuses it)."""
    lines = text.splitlines()
    last = max(i for i, line in enumerate(lines) if '"type":"checkpoint"' in line)
    record = json.loads(lines[last])
    record["metadata"]["nested"] = {"x": "a\x00b"}
    lines[last] = json.dumps(record, separators=(",", ":"), ensure_ascii=True)
    return "\n".join(lines) + "\n"


def test_a_failed_import_leaves_no_half_thread_and_keeps_a_replaced_one(tmp_path: Path) -> None:
    with side("sqlite", "sync", tmp_path / "a") as source, \
            side("postgres", "sync", tmp_path / "b") as target:
        graphs = [review_graph().compile(checkpointer=h.saver) for h in (source, target)]
        source.invoke(graphs[0], {"items": []}, thread("t"))
        bad = _with_bad_last_checkpoint(export_text(source))
        with pytest.raises(ConfigurationError, match="NUL"):
            import_text(target, bad)
        assert list(target.saver.list(None)) == []  # nothing of the thread is left
        target.invoke(graphs[1], {"items": []}, thread("t"))
        before = [c.checkpoint["id"] for c in target.saver.list(thread("t"))]
        with pytest.raises(ConfigurationError, match="NUL"):
            import_text(target, bad, if_exists="replace")
        assert [c.checkpoint["id"] for c in target.saver.list(thread("t"))] == before
        assert {t.thread_id for t in target.saver.list_threads()} == {"t"}  # no staging left
        import_text(target, export_text(source), if_exists="replace")
        assert [c.checkpoint["id"] for c in target.saver.list(thread("t"))] == [
            c.checkpoint["id"] for c in source.saver.list(thread("t"))]


def test_unreadable_files_are_one_line_errors(tmp_path: Path) -> None:
    header = b'{"format":"langgraph-persist-kit/threads","version":1}\n'
    url = f"sqlite:///{tmp_path / 'x.db'}"
    for name, content in {"binary": b"\xff\xfe junk\n", "deep": header + b"[" * 200_000 + b"\n",
                          "bad-utf8-later": header + b"\xff\xfe\n"}.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(content)
        result = CliRunner().invoke(cli, ["import", url, str(path)])
        assert result.exit_code == 1, (name, result.output)
        assert "Traceback" not in result.output and result.output.count("\n") == 1, result.output


# --- nothing read runs code ------------------------------------------------------------


def crafted_file(marker: Path) -> str:
    """An export file whose values and write are `payload`s (and whose body holds one)."""
    memory = InMemorySaver(serde=CraftingSerde(marker))
    put_crafted_thread(memory)
    out = io.StringIO()
    export_threads(memory, out)
    text = out.getvalue()
    evil = base64.b64encode(payload(marker)).decode()
    assert text.count(evil) == 2  # the channel value and the write
    record = json.loads(text.splitlines()[2])
    body = JsonPlusSerializer().loads_typed(
        (record["checkpoint"]["type"], base64.b64decode(record["checkpoint"]["data"])))
    body_with_ext = ormsgpack.packb({**body, "evil": ormsgpack.Ext(
        EXT_CONSTRUCTOR_POS_ARGS, ormsgpack.packb(["os", "system", [f"touch {marker}"]]))})
    record["checkpoint"]["data"] = base64.b64encode(body_with_ext).decode()
    lines = text.splitlines(keepends=True)
    lines[2] = json.dumps(record, separators=(",", ":")) + "\n"
    return "".join(lines)


@pytest.fixture
def crafted_store(tmp_path: Path, marker: Path) -> str:
    path = tmp_path / "crafted.db"
    with SqliteSaver.from_conn_string(str(path), serde=CraftingSerde(marker)) as saver:
        put_crafted_thread(saver)
    return f"sqlite:///{path}"


def test_no_command_runs_code_from_a_store_or_a_file(
    crafted_store: str, marker: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    file = tmp_path / "crafted.jsonl"
    file.write_text(crafted_file(marker))
    imported = f"sqlite:///{tmp_path / 'imported.db'}"
    commands = [
        ["import", imported, str(file)],
        ["history", imported, "t"],
        ["history", crafted_store, "t", "--json"],
        ["history", crafted_store, "t", "--format", "mermaid"],
        ["threads", crafted_store],
        ["export", crafted_store, "-o", str(tmp_path / "out.jsonl")],
        ["fork", crafted_store, "t", "--new-thread", "t2"],
        ["copy", crafted_store, f"sqlite:///{tmp_path / 'copy.db'}"],
        ["copy", imported, f"sqlite:///{tmp_path / 'copy.db'}", "--if-exists", "replace"],
        ["stats", crafted_store],
    ]
    for args in commands:
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, (args, result.output)
        assert not marker.exists(), args
    evil = base64.b64encode(payload(marker)).decode()
    exported = (tmp_path / "out.jsonl").read_text()
    assert exported.count(evil) == 2  # the crafted values moved as bytes, unchanged
    assert runner.invoke(cli, ["export", imported]).stdout.count(evil) == 2


@pytest.mark.parametrize(("kind", "mode"), [("memory", "sync"), ("sqlite", "async"),
                                           ("postgres", "sync"), ("redis", "async")])
def test_the_python_api_runs_no_code_either(
    kind: str, mode: str, marker: Path, tmp_path: Path
) -> None:
    """Savers with LangGraph's default (permissive) serializer, as users open them."""
    text = crafted_file(marker)
    evil = base64.b64encode(payload(marker)).decode()
    with side(kind, mode, tmp_path / "a") as a, side("memory", mode, tmp_path) as b:
        b.loop = a.loop
        assert import_text(a, text).threads == 1
        assert export_text(a).count(evil) == 2
        copy(a, b)
        assert export_text(b).count(evil) == 2
        copy(b, a, if_exists="replace")
        assert not marker.exists()


def test_fork_session_runs_no_code(crafted_store: str, marker: Path) -> None:
    """`fork_session` reads through `raw_view`: in the store (ours) or put by put (others)."""
    with SqliteSaver.from_conn_string(crafted_store) as saver:  # LangGraph's default serde
        assert fork_session(saver, thread("t"), new_thread_id="t2") == "t2"
        assert not marker.exists()
        assert raw_view(saver).get_tuple(thread("t2")).checkpoint["channel_values"] == \
            raw_view(saver).get_tuple(thread("t")).checkpoint["channel_values"]
    memory = InMemorySaver(serde=CraftingSerde(marker))  # no fork_thread: list and put
    put_crafted_thread(memory)
    memory.serde = JsonPlusSerializer()  # LangGraph's default (permissive) serde
    assert fork_session(memory, thread("t"), new_thread_id="t2") == "t2"
    assert not marker.exists()
    assert raw_view(memory).get_tuple(thread("t2")).checkpoint["channel_values"] == \
        raw_view(memory).get_tuple(thread("t")).checkpoint["channel_values"]

"""Import and copy keep order and never lose data: task paths travel with pending
writes, a failed write leaves no half thread, ``replace`` keeps the old thread until
the new one is whole, and unreadable files are a one-line error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from graphs import thread
from test_sessions import answer, review_graph
from test_transfer import export_text, import_text, side

from langgraph_persist_kit import copy_threads
from langgraph_persist_kit.cli import cli
from langgraph_persist_kit.errors import ConfigurationError

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

"""Running ``persist-kit``'s maintenance commands in a test and reading what they did to a
store (test_maintenance_cli.py, test_maintenance_cli_lock.py,
test_maintenance_cli_examples.py): the command through click's CliRunner, its exit code
and one-line error, threads of root checkpoints written through ``saver_from_url``, and
the counts read back."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner, Result
from langgraph.checkpoint.base import empty_checkpoint

from langgraph_persist_kit import saver_from_url
from langgraph_persist_kit.cli import cli

BACKENDS = ["sqlite", "postgres", "redis"]
"""The stores every maintenance command is run on (a module's ``url`` fixture)."""


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def as_json(*args: str) -> Any:
    return json.loads(ok(run(*args, "--json")).stdout)


def fill(url: str, names: list[str], checkpoints: int = 4) -> None:
    """Write ``checkpoints`` root checkpoints to each thread of ``names``."""
    with saver_from_url(url) as saver:
        for name in names:
            config: Any = {"configurable": {"thread_id": name, "checkpoint_ns": ""}}
            version = None
            for step in range(checkpoints):
                checkpoint = empty_checkpoint()
                version = saver.get_next_version(version)
                checkpoint["channel_values"] = {"n": step}
                checkpoint["channel_versions"] = {"n": version}
                config = saver.put(config, checkpoint, {"source": "loop", "step": step},
                                   {"n": version})


def counts(url: str) -> dict[str, int]:
    with saver_from_url(url) as saver:
        return saver.stats()


def checkpoints_of(url: str, thread_id: str) -> int:
    with saver_from_url(url) as saver:
        return len(list(saver.list({"configurable": {"thread_id": thread_id}})))


def error_line(result: Result, code: int) -> str:
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == ""
    return lines[0]

"""What Redis plans ask their driver to run.

Owns: the request types of the Redis plans and the named Lua scripts.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from langgraph_persist_kit._sql.queries import load_queries


@dataclass(frozen=True)
class Script:
    """Run script ``name`` of ``scripts.lua`` with ``keys`` and ``args``; one round trip."""

    name: str
    keys: Sequence[Any]
    args: Sequence[Any] = ()


@dataclass(frozen=True)
class Command:
    """One plain Redis command, e.g. ``("HMGET", key, field)``."""

    args: tuple[Any, ...]


@dataclass(frozen=True)
class Batch:
    """Requests sent together (one pipeline, or one per node on a cluster); the reply
    is the list of their replies, in order."""

    requests: Sequence[Script | Command]


R = TypeVar("R")
Request = Script | Command | Batch
RedisPlan = Generator[Request, Any, R]
"""A plan of the Redis store: yields a `Script`, `Command` or `Batch`, receives Redis's reply."""


def load_scripts() -> dict[str, str]:
    """Every script's source: the ``prelude`` block, then the script's own block."""
    blocks = load_queries("langgraph_persist_kit.redis", "scripts.lua")
    prelude = blocks.pop("prelude")
    return {name: prelude + "\n" + body for name, body in blocks.items()}


SCRIPTS = load_scripts()

"""PostgreSQL checkpoint savers: `PostgresSaver` (sync) and `AsyncPostgresSaver` (async).

Needs the ``postgres`` extra: ``pip install "langgraph-persist-kit[postgres]"``.
"""

from langgraph_persist_kit.postgres.aio import AsyncPostgresSaver
from langgraph_persist_kit.postgres.saver import PostgresSaver

__all__ = ["AsyncPostgresSaver", "PostgresSaver"]

"""SQLite checkpoint savers: `SqliteSaver` (sync) and `AsyncSqliteSaver` (async)."""

from langgraph_persist_kit.sqlite.aio import AsyncSqliteSaver
from langgraph_persist_kit.sqlite.saver import SqliteSaver

__all__ = ["AsyncSqliteSaver", "SqliteSaver"]

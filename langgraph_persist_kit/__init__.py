"""langgraph-persist-kit: production-grade memory for LangGraph agents.

Savers live in ``langgraph_persist_kit.sqlite`` (and, with their extras,
``.postgres`` and ``.redis``); `saver_from_url` picks one from a URL.
"""

from langgraph_persist_kit._codec import ThreadInfo
from langgraph_persist_kit.urls import async_saver_from_url, saver_from_url

__version__ = "0.1.0"

__all__ = ["ThreadInfo", "__version__", "async_saver_from_url", "saver_from_url"]

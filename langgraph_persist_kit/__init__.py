"""langgraph-persist-kit: production-grade memory for LangGraph agents.

Savers live in ``langgraph_persist_kit.sqlite`` (and, with their extras,
``.postgres`` and ``.redis``); `saver_from_url` picks one from a URL. Sessions:
`fork_session`, `replay` and `checkpoint_tree` (and their async twins).
Moving threads between any savers: `export_threads`, `import_threads` and
`copy_threads` (and their async twins).
"""

from langgraph_persist_kit.sessions import (
    acheckpoint_tree,
    afork_session,
    areplay,
    checkpoint_tree,
    fork_session,
    replay,
)
from langgraph_persist_kit.transfer import (
    IfExists,
    ThreadCopied,
    TransferReport,
    acopy_threads,
    aexport_threads,
    aimport_threads,
    copy_threads,
    export_threads,
    import_threads,
)
from langgraph_persist_kit.tree import CheckpointTree
from langgraph_persist_kit.types import ThreadInfo
from langgraph_persist_kit.urls import async_saver_from_url, saver_from_url

__version__ = "0.1.0"

__all__ = [
    "CheckpointTree",
    "IfExists",
    "ThreadCopied",
    "ThreadInfo",
    "TransferReport",
    "__version__",
    "acheckpoint_tree",
    "acopy_threads",
    "aexport_threads",
    "afork_session",
    "aimport_threads",
    "areplay",
    "async_saver_from_url",
    "checkpoint_tree",
    "copy_threads",
    "export_threads",
    "fork_session",
    "import_threads",
    "replay",
    "saver_from_url",
]

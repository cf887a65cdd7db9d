"""The records this package's savers and helpers return.

Owns: `ThreadInfo`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple


class ThreadInfo(NamedTuple):
    """One thread of a store, as `list_threads` yields it.

    Attributes:
        thread_id: The thread's id.
        created_at: When the thread's first checkpoint or write was stored (UTC).
        updated_at: When its newest checkpoint or pending write was stored (UTC).
        metadata: The metadata of the thread's latest root (``checkpoint_ns=""``)
            checkpoint; ``{}`` when it has none.
    """

    thread_id: str
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any]

"""What every saver of this package shares, whatever its store.

Owns: channel version numbering and the lazily-run ``setup()`` flag;
depends on: `_codec`.
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.base import SerializerProtocol

from langgraph_persist_kit._core.codec import Version, next_version


class PersistSaverBase(BaseCheckpointSaver[str]):
    """Base of every saver: string channel versions and a setup flag."""

    def __init__(self, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        self.is_setup = False

    plans: Any  # the store's plans (`_saver_methods.StorePlans`)

    def latest_schema_version(self) -> int:
        """The newest schema version this release knows for the saver's store: what
        ``setup()`` migrates to (``persist-kit migrate`` reports it)."""
        return int(self.plans.schema_version)

    def get_next_version(self, current: Version | None, channel: None = None) -> str:
        """A version greater than ``current``: ``"<32-digit counter>.<random>"``."""
        return next_version(current)

"""Clear errors for calling a saver in the wrong mode.

Owns: the sync/async mismatch messages of every saver; depends on: `errors`.

A sync saver (``SqliteSaver``) serves ``graph.invoke`` / ``stream``; an async
saver (``AsyncSqliteSaver``) serves ``ainvoke`` / ``astream``. Calling the other
mode's methods raises `ConfigurationError` naming the class to use instead,
rather than the bare ``NotImplementedError`` of ``BaseCheckpointSaver``.
"""

from __future__ import annotations

from typing import Any, NoReturn

from langgraph_persist_kit.errors import ConfigurationError

_SYNC_METHODS = (
    "get_tuple", "list", "put", "put_writes", "delete_thread", "delete_for_runs",
    "copy_thread", "fork_thread", "prune", "get_delta_channel_history", "list_threads",
    "prune_thread", "cleanup_batch", "stats", "thread_ids_page",
    "thread_count", "thread_lock_handle",
)


def _raiser(name: str, wrong: str, other: str) -> Any:
    def method(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
        raise ConfigurationError(
            f"{type(self).__name__} is {wrong}: {name}() is not available. "
            f"Use {other.format(cls=type(self).__name__)} instead."
        )

    method.__name__ = name
    method.__doc__ = f"Not available on this {wrong} saver; raises `ConfigurationError`."
    return method


class SyncOnly:
    """Mixin for sync savers: every ``a``-prefixed method raises `ConfigurationError`."""


class AsyncOnly:
    """Mixin for async savers: every sync method raises `ConfigurationError`."""


for _name in _SYNC_METHODS:
    setattr(SyncOnly, "a" + _name,
            _raiser("a" + _name, "synchronous", "Async{cls} with graph.ainvoke()/astream()"))
    setattr(AsyncOnly, _name,
            _raiser(_name, "asynchronous",
                    "the a-prefixed method, or the sync saver class, with graph.invoke()"))

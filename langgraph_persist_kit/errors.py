"""Every exception this package raises on its own.

Owns: the exception hierarchy and the one place where driver errors are translated.

::

    PersistKitError
     +-- ConfigurationError (also ValueError)   bad URL, option, config or filter
     +-- SchemaVersionError                      database migrated by a newer version
     +-- BackendError                            the store failed; driver error as __cause__
     |    +-- BackendUnavailableError            the server / file could not be reached
     +-- ThreadBusyError                         another writer holds the thread's lock
     +-- StaleThreadError                        the thread moved past the expected checkpoint
 +-- MaintenanceLockedError                  another maintenance run holds the store

Each class's docstring is its default message, so ``raise ThreadBusyError()``
still says something useful.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "ConfigurationError",
    "MaintenanceLockedError",
    "PersistKitError",
    "SchemaVersionError",
    "StaleThreadError",
    "ThreadBusyError",
    "translate_errors",
]


class PersistKitError(Exception):
    """A langgraph-persist-kit operation failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (type(self).__doc__ or "").strip())


class ConfigurationError(PersistKitError, ValueError):
    """A URL, option, config or filter given to langgraph-persist-kit is not valid."""


class SchemaVersionError(PersistKitError):
    """The database was migrated by a newer langgraph-persist-kit; upgrade the package."""


class BackendError(PersistKitError):
    """The storage backend failed; the driver's exception is attached as __cause__."""


class BackendUnavailableError(BackendError):
    """The storage backend could not be reached; check the server is up and the URL is right."""


class ThreadBusyError(PersistKitError):
    """Another run holds this thread's lock."""


class StaleThreadError(PersistKitError):
    """The thread has moved past the checkpoint the caller expected."""


class MaintenanceLockedError(PersistKitError):
    """Another maintenance run holds this store's maintenance lock; try again later."""

    @classmethod
    def of(cls, store: str, holder: str | None) -> MaintenanceLockedError:
        """The error for ``store`` (e.g. ``"SQLite database /data/a.db"``) held by
        ``holder`` (who, if the store can say)."""
        held_by = f" ({holder})" if holder else ""
        return cls(f"another maintenance run holds the maintenance lock of {store}{held_by}; "
                   "this run did nothing")


for _cls in (
    PersistKitError,
    ConfigurationError,
    SchemaVersionError,
    BackendError,
    BackendUnavailableError,
    ThreadBusyError,
    StaleThreadError,
):
    _cls.__module__ = "langgraph_persist_kit.errors"
# defined here so that each backend can raise it; public (and imported) from there
MaintenanceLockedError.__module__ = "langgraph_persist_kit.maintenance"


@contextmanager
def translate_errors(
    driver_errors: type[BaseException] | tuple[type[BaseException], ...],
    *,
    what: str,
    unavailable: Callable[[BaseException], bool] = lambda exc: False,
    clean: Callable[[str], str] = lambda message: message,
) -> Iterator[None]:
    """Translate driver exceptions raised inside the block: the one driver boundary.

    Args:
        driver_errors: The driver's base exception class(es) to translate.
        what: The store, for the message, e.g. ``"PostgreSQL at postgresql://db/x"``.
        unavailable: Tells the errors that mean the store could not be reached.
        clean: Applied to the driver's message, e.g. to mask secrets it echoes
            (`_urls.scrub`).

    Raises:
        BackendUnavailableError: For errors ``unavailable`` accepts.
        BackendError: For any other ``driver_errors``. Both carry a one-line
            message and the original exception as ``__cause__``.
    """
    try:
        yield
    except PersistKitError:
        raise
    except driver_errors as exc:
        message = clean(" ".join(str(exc).split())) or type(exc).__name__
        if unavailable(exc):
            raise BackendUnavailableError(f"{what} is unavailable: {message}") from exc
        raise BackendError(f"{what} failed: {message}") from exc

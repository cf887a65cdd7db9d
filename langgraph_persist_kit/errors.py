"""Every exception this package raises on its own.

Owns: the exception hierarchy and the one place where driver errors are
translated; depends on: nothing but the standard library.

::

    PersistKitError
     +-- ConfigurationError (also ValueError)   bad URL, option, config or filter
     +-- SchemaVersionError                      database migrated by a newer version
     +-- BackendError                            the store failed; driver error as __cause__
     |    +-- BackendUnavailableError            the server / file could not be reached
     +-- ThreadBusyError                         another writer holds the thread's lock
     +-- StaleThreadError                        the thread moved past the expected checkpoint

Each class's docstring is its default message, so ``raise ThreadBusyError()``
still says something useful.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "ConfigurationError",
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


@contextmanager
def translate_errors(
    driver_errors: type[BaseException] | tuple[type[BaseException], ...],
    *,
    unavailable: type[BaseException] | tuple[type[BaseException], ...] = (),
    what: str,
) -> Iterator[None]:
    """Translate driver exceptions raised inside the block into `BackendError`.

    Args:
        driver_errors: The driver's base exception class(es) to translate.
        unavailable: Subclasses that mean the store could not be reached; they
            become `BackendUnavailableError`.
        what: A short description of the store for the message, e.g.
            ``"SQLite database 'agents.db'"``.

    Raises:
        BackendUnavailableError: For `unavailable` errors.
        BackendError: For any other `driver_errors`, with the original as ``__cause__``.
    """
    try:
        yield
    except PersistKitError:
        raise
    except unavailable as exc:
        raise BackendUnavailableError(f"{what} is unavailable: {exc}") from exc
    except driver_errors as exc:
        raise BackendError(f"{what} failed: {exc}") from exc

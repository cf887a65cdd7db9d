"""What every ``persist-kit`` command shares.

Owns: the click group class that turns package errors into one-line failures (exit 1),
the `Failure` exception, the ``--filter key=value`` parser, the ``--allow-type`` option
and opening an existing store with a strict serializer.

Every store a command opens reads with `strict_serde`: LangGraph's safe types
and LangChain messages, plus the types of ``--allow-type`` and
``PERSIST_KIT_ALLOW_TYPES``; nothing else is ever rebuilt from what is read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, Protocol, TypeVar, runtime_checkable

import click
from langgraph.checkpoint.base import BaseCheckpointSaver

from langgraph_persist_kit._core.urls import backend_of, redact, sqlite_path
from langgraph_persist_kit.errors import PersistKitError
from langgraph_persist_kit.strict_serde import allowed_types, strict_serde
from langgraph_persist_kit.transfer.official import is_official_url, official_saver_from_url
from langgraph_persist_kit.types import ThreadInfo
from langgraph_persist_kit.urls import saver_from_url

__all__ = [
    "ALLOW_TYPE",
    "Failure",
    "ListsThreads",
    "PersistKitGroup",
    "command_allow_types",
    "one_line",
    "open_store",
    "parse_filters",
    "require_thread_listing",
]


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (its class name when it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__


class Failure(click.ClickException):
    """A command failed: click prints ``error: <message>`` on stderr and exits 1."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))

    def show(self, file: IO[Any] | None = None) -> None:
        """Print the one-line message to ``file`` (stderr by default)."""
        click.echo(f"error: {self.format_message()}", file=file, err=file is None)


class PersistKitGroup(click.Group):
    """A click group whose commands fail with one line instead of a traceback.

    `PersistKitError` (bad URL, store failure, ...) and `OSError` (missing
    file, permission denied, ...) become `Failure`. Click's usage errors keep
    exit code 2. A broken
    pipe (``persist-kit threads URL | head``) is left to click, which exits
    quietly.
    """

    def invoke(self, ctx: click.Context) -> Any:
        """Run the chosen command, translating expected errors into `Failure`."""
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise
        except (PersistKitError, OSError) as exc:
            raise Failure(one_line(exc)) from exc


def _parse_filter_value(text: str) -> Any:
    """``text`` as JSON when it parses (``3``, ``true``, ``null``, ``"3"``), else the string.

    ``NaN`` and ``Infinity`` stay strings: they are not JSON and never compare equal.
    """

    def refuse(constant: str) -> Any:
        raise ValueError(constant)

    try:
        return json.loads(text, parse_constant=refuse)
    except ValueError:
        return text


def parse_filters(
    ctx: click.Context | None, param: click.Parameter | None, values: tuple[str, ...]
) -> dict[str, Any]:
    """Click callback: ``("step=3", "user=ada")`` -> ``{"step": 3, "user": "ada"}``.

    Each value is split on its first ``=``; the right side is parsed as JSON
    when it parses, so ``step=3`` matches the integer 3 and ``flag=true`` the
    boolean, while ``user=ada`` stays a string (write ``step='"3"'`` for the
    string ``"3"``).

    Raises:
        click.BadParameter: For an item without ``=``, an empty key or a key
            given twice (a usage error, exit code 2).
    """
    filters: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {item!r}", ctx=ctx, param=param)
        if key in filters:
            raise click.BadParameter(f"key {key!r} given twice", ctx=ctx, param=param)
        filters[key] = _parse_filter_value(value)
    return filters


F = TypeVar("F", bound=Callable[..., Any])
_ALLOW_KEY = "persist_kit.allow_types"


def _remember_allow_types(ctx: click.Context, param: click.Parameter,
                          values: tuple[str, ...]) -> None:
    try:
        ctx.meta[_ALLOW_KEY] = allowed_types(values)
    except PersistKitError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc


def ALLOW_TYPE(command: F) -> F:
    """Add ``--allow-type MODULE.CLASS`` (repeatable) to a command.

    The types are kept in the click context, where `open_store`, `command_allow_types`
    and the transfer commands find them; the command function gets no argument.
    """
    option = click.option(
        "--allow-type", "allow_types", metavar="MODULE.CLASS", multiple=True,
        expose_value=False, callback=_remember_allow_types,
        help="Also rebuild this type when a value must be decoded (repeat for several; "
        "also PERSIST_KIT_ALLOW_TYPES=a.B,c.D). Default: LangGraph's safe types and "
        "LangChain messages only.",
    )
    return option(command)


def command_allow_types() -> tuple[tuple[str, str], ...]:
    """The running command's ``--allow-type`` values, then ``PERSIST_KIT_ALLOW_TYPES``'s.

    Raises:
        ConfigurationError: For a malformed name in ``PERSIST_KIT_ALLOW_TYPES``.
    """
    ctx = click.get_current_context(silent=True)
    given = ctx.meta.get(_ALLOW_KEY, ()) if ctx is not None else ()
    return allowed_types(given, env=True)


@runtime_checkable
class ListsThreads(Protocol):
    """A saver with ``list_threads`` (every saver of this package has it)."""

    def list_threads(
        self, *, filter: dict[str, Any] | None = None, limit: int | None = None
    ) -> Iterator[ThreadInfo]:
        """Threads newest-updated first."""
        ...


def require_thread_listing(saver: BaseCheckpointSaver) -> ListsThreads:
    """``saver`` as a `ListsThreads`.

    Raises:
        Failure: When the saver cannot list threads.
    """
    if not isinstance(saver, ListsThreads):
        raise Failure(f"{type(saver).__name__} cannot list threads")
    return saver


@contextmanager
def open_store(url: str, *, create: bool = False,
               official: bool = False) -> Iterator[BaseCheckpointSaver]:
    """Open a store with a strict serializer, close it afterwards.

    Args:
        url: A store URL, e.g. ``sqlite:///agents.db``.
        create: Whether a SQLite file that does not exist is created (to write
            threads into, or migrate); otherwise it is refused, so a typo never
            leaves an empty file behind.
        official: Whether an official saver's store (a ``langgraph-*`` URL,
            `transfer.official`) may be opened; only ``copy`` takes them.

    Yields:
        A ready saver (schema set up).

    Raises:
        Failure: For a SQLite file that does not exist (unless ``create``), or a
            ``langgraph-*`` URL where ``official`` is false.
        ConfigurationError: For a URL of no known backend, or (``create``) a SQLite
            file whose directory does not exist.
        BackendError: When the store cannot be opened.
    """
    serde = strict_serde(command_allow_types())
    if is_official_url(url):
        if not official:
            raise Failure(f"{redact(url)!r} names an official LangGraph saver's store: only "
                          "`persist-kit copy` reads and writes those (copy the threads into "
                          "one of ours first)")
        with official_saver_from_url(url, serde=serde, create=create) as saver:
            yield saver
        return
    if (not create and backend_of(url) == "sqlite"
            and (path := sqlite_path(url)) != ":memory:" and not os.path.exists(path)):
        raise Failure(f"no SQLite database at {path!r} (from {url!r})")
    with saver_from_url(url, serde=serde) as saver:
        yield saver

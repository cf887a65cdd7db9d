"""Serializers that decode only known types: LangGraph's strict msgpack allowlist.

Owns: `strict_serde` (the serializer the command line opens every store with),
`strict_version` (the strict twin of a saver's serializer), `allowed_types` (type names
from an option or ``PERSIST_KIT_ALLOW_TYPES``), `SAFE_TYPES`, and `refusing_blocked_types`
(where decoding to plain data would lose a type: a copy into another saver).

LangGraph's default ``JsonPlusSerializer`` rebuilds any ``module.callable(*args)``
named in a msgpack extension value (it warns that this "will be blocked in a
future version"), so reading a crafted checkpoint runs code. A strict serializer
rebuilds only ``SAFE_TYPES`` (datetimes, UUIDs, sets, LangChain messages and
documents, ``Send``, ``Interrupt``, ``Command``, ...) and the types allowed on top;
any other object decodes to its plain data (a dict or list) and nothing is
imported or called. It never unpickles. See docs/security.md.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from langgraph.checkpoint.serde._msgpack import SAFE_MSGPACK_TYPES
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.checkpoint.serde.event_hooks import SerdeEvent, register_serde_event_listener
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from langgraph_persist_kit.errors import ConfigurationError

__all__ = [
    "ALLOW_TYPES_ENV",
    "SAFE_TYPES",
    "TypeName",
    "allowed_types",
    "refusing_blocked_types",
    "strict_serde",
    "strict_version",
]

ALLOW_TYPES_ENV = "PERSIST_KIT_ALLOW_TYPES"
"""Environment variable: more types the command line may rebuild, comma-separated
``module.Class`` names (e.g. ``myapp.state.Ticket,myapp.state.Customer``)."""

SAFE_TYPES: frozenset[tuple[str, ...]] = SAFE_MSGPACK_TYPES
"""``(module, name)`` of the types a strict serializer always rebuilds: LangGraph's
``SAFE_MSGPACK_TYPES``, which include LangChain's messages and ``Document``."""

TypeName = str | type | tuple[str, str]
"""A type to allow: ``"module.Class"``, the class itself, or ``("module", "Class")``."""


def _parse(name: TypeName) -> tuple[str, str]:
    if isinstance(name, type):
        return name.__module__, name.__name__
    if isinstance(name, tuple):
        if len(name) == 2 and all(isinstance(part, str) and part for part in name):
            return name[0], name[1]
        raise ConfigurationError(f"a type to allow must be ('module', 'Class'), not {name!r}")
    if isinstance(name, str):
        module, _, cls = name.strip().rpartition(".")
        if module and cls and all(part.isidentifier() for part in f"{module}.{cls}".split(".")):
            return module, cls
        raise ConfigurationError(
            f"a type to allow must be named module.Class (e.g. myapp.state.Ticket), not {name!r}"
        )
    raise ConfigurationError(f"a type to allow must be a str, a class or a pair, not {name!r}")


def allowed_types(
    names: Iterable[TypeName] = (), *, env: bool = False
) -> tuple[tuple[str, str], ...]:
    """Normalise type names, adding those of ``PERSIST_KIT_ALLOW_TYPES`` when ``env``.

    Args:
        names: Types as ``"module.Class"``, classes or ``("module", "Class")`` pairs.
        env: Also read `ALLOW_TYPES_ENV` (comma-separated ``module.Class`` names).

    Returns:
        ``(module, Class)`` pairs, deduplicated, in the order given (environment last).

    Raises:
        ConfigurationError: For a name that is not ``module.Class``.
    """
    listed = [names] if isinstance(names, str) else list(names)
    if env:
        listed += [part for part in os.environ.get(ALLOW_TYPES_ENV, "").split(",") if part.strip()]
    return tuple(dict.fromkeys(_parse(name) for name in listed))


def strict_serde(allow_types: Iterable[TypeName] = ()) -> JsonPlusSerializer:
    """A ``JsonPlusSerializer`` that rebuilds only `SAFE_TYPES` and ``allow_types``.

    It writes exactly what LangGraph's default serializer writes; only reading
    differs (``LANGGRAPH_STRICT_MSGPACK=true`` semantics, whatever the
    environment says). It never unpickles and revives no JSON constructor
    outside the safe types.

    Args:
        allow_types: More types to rebuild (see `TypeName`).

    Raises:
        ConfigurationError: For a malformed type name.
    """
    extra = allowed_types(allow_types)
    return JsonPlusSerializer(allowed_msgpack_modules=extra or None)


def strict_version(
    serde: SerializerProtocol, allow_types: Iterable[TypeName] = ()
) -> SerializerProtocol:
    """The strict twin of a saver's serializer, for reading what must be decoded.

    A ``JsonPlusSerializer`` becomes `strict_serde`; an ``EncryptedSerializer``
    keeps its cipher around a strict inner serializer (the same two cases
    LangGraph's own ``with_allowlist`` handles). A serializer of another class is
    yours: it is returned as it is.

    Args:
        serde: The saver's serializer.
        allow_types: More types to rebuild.
    """
    if isinstance(serde, JsonPlusSerializer):
        return strict_serde(allow_types)
    if isinstance(serde, EncryptedSerializer) and isinstance(serde.serde, JsonPlusSerializer):
        return EncryptedSerializer(serde.cipher, strict_serde(allow_types))
    return serde


@contextmanager
def refusing_blocked_types(what: str) -> Iterator[None]:
    """Fail where a strict serializer, inside the block and on this thread, met a type it
    does not rebuild (it decodes one to plain data: a copy would store a dict where the
    source held a typed object).

    Listens to LangGraph's serde events (``msgpack_blocked``), so it sees the
    decoding of any strict serializer, ours or a saver's.

    Args:
        what: What was being decoded, for the message (e.g. ``"thread 't-1'"``).

    Raises:
        ConfigurationError: After the block, naming the types and how to allow them.
    """
    me = threading.get_ident()
    blocked: dict[str, None] = {}

    def listen(event: SerdeEvent) -> None:
        if event["kind"].endswith("_blocked") and threading.get_ident() == me:
            blocked[f"{event['module']}.{event['name']}"] = None

    unregister = register_serde_event_listener(listen)
    try:
        yield
    finally:
        unregister()
    if blocked:
        raise ConfigurationError(
            f"{what} holds values of types the strict decoding does not rebuild "
            f"({', '.join(blocked)}): they would be written as plain data, so nothing was "
            "written. Allow a type only if you know it and trust the store: --allow-type "
            f"module.Class (allow_types=[...] in Python, or {ALLOW_TYPES_ENV})"
        )


"""Values that move between savers as their stored bytes, never decoded.

Owns: `RawValue` (a stored value kept as ``(type, bytes)``), `RawSerde` (a saver's
serializer that hands values back raw and writes raw values as they are) and `raw_view`
(a saver reading and writing through it).

Export, import and copy read and write through `raw_view`: a channel value or
a pending write is never rebuilt into a Python object, so a crafted value
(a msgpack extension naming ``os.system``) is carried as bytes and nothing
runs. What must be a Python object is decoded strictly (`strict_version`):
the checkpoint body (ids, timestamps, ``versions_seen``: safe types only) and,
for savers that keep metadata through their serde (``InMemorySaver``), the
metadata. A `RawValue` decodes itself, strictly, only when read as a mapping,
which is how every saver reads a body (``{**body, "channel_values": ...}``).

Encryption is a layer, not a format: with an ``EncryptedSerializer`` the value
is decrypted (the cipher only, no deserialisation) and kept as plain typed
bytes; a view over an encrypted saver encrypts them again when writing, with
its own cipher, so a copy between two keys, or into or out of an encrypted
store, works as it did when values were objects.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.base import CipherProtocol, SerializerProtocol
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from langgraph_persist_kit.strict_serde import TypeName, strict_version

__all__ = ["RawSerde", "RawValue", "keeps_values_apart", "plain", "raw_view", "transfer_view"]

S = TypeVar("S", bound=BaseCheckpointSaver)

_PLAIN_KINDS = frozenset({"null", "bytes", "bytearray", "json", "msgpack"})
"""The types ``JsonPlusSerializer`` reads (``pickle`` only with ``pickle_fallback``)."""

_VALUES_APART = ("langgraph_persist_kit.", "langgraph.checkpoint.memory",
                 "langgraph.checkpoint.postgres")
"""Modules of savers that serialise each channel value and pending write on its own."""


class RawValue(Mapping[str, Any]):
    """A stored value as ``(type, bytes)``, unencrypted, not deserialised.

    Equal raw values have equal bytes. Read as a mapping (``value["id"]``,
    ``{**value}``, ``dict(value)``) it decodes itself once with a strict
    serializer: that is how a checkpoint body or metadata becomes a dict.

    Attributes:
        typed: ``(type, data)``: the serializer's type tag (``"msgpack"``, ...)
            without a cipher suffix, and the plaintext bytes.
    """

    __slots__ = ("_decoded", "_strict", "typed")

    def __init__(self, kind: str, data: bytes, strict: SerializerProtocol) -> None:
        self.typed = (kind, bytes(data))
        self._strict = strict
        self._decoded: Mapping[str, Any] | None = None

    def decoded(self) -> Any:
        """The value rebuilt by the strict serializer (safe and allowed types only)."""
        return self._strict.loads_typed(self.typed)

    def _mapping(self) -> Mapping[str, Any]:
        if self._decoded is None:
            value = self.decoded()
            if not isinstance(value, Mapping):
                raise TypeError(f"a stored {self.typed[0]} value is not a mapping")
            self._decoded = value
        return self._decoded

    def __getitem__(self, key: str) -> Any:
        return self._mapping()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def __bool__(self) -> bool:
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RawValue) and self.typed == other.typed

    def __hash__(self) -> int:
        return hash(self.typed)

    def __repr__(self) -> str:
        return f"RawValue({self.typed[0]!r}, <{len(self.typed[1])} bytes>)"


class RawSerde(SerializerProtocol):
    """A saver's serializer that reads values as `RawValue` and writes them back as they were.

    Anything else (a checkpoint body, metadata, a value that came decoded from
    a saver that does not use its serde for it) is written by the saver's own
    serializer.

    Args:
        serde: The saver's serializer (an ``EncryptedSerializer``'s cipher is
            used to decrypt what is read and to encrypt raw values written).
        allow_types: More types the strict decoding of bodies and metadata may
            rebuild (see `strict_serde`).
    """

    def __init__(self, serde: SerializerProtocol, allow_types: Iterable[TypeName] = ()) -> None:
        self.serde = serde
        self.cipher: CipherProtocol | None = None
        plain = serde
        if isinstance(serde, EncryptedSerializer):
            self.cipher, plain = serde.cipher, serde.serde
        self.strict = strict_version(plain, allow_types)
        self.kinds: frozenset[str] | None = None  # the types this saver can read; None: any
        if isinstance(plain, JsonPlusSerializer):
            self.kinds = _PLAIN_KINDS | ({"pickle"} if plain.pickle_fallback else set())

    def loads_typed(self, data: tuple[str, bytes]) -> RawValue:
        """``data`` as a `RawValue`, decrypted when the saver encrypts; nothing is decoded.

        Raises:
            ValueError: For a type this saver's serializer cannot read (an
                encrypted value without a cipher, an unknown type tag).
            Exception: Whatever the cipher raises for a wrong key or damaged data.
        """
        kind, raw = data
        if "+" in kind and self.cipher is not None:
            kind, name = kind.split("+", 1)
            raw = self.cipher.decrypt(name, raw)
        if self.kinds is not None and kind not in self.kinds:
            raise ValueError(f"the serializer reads no values of type {kind!r}"
                             + (" (encrypted: it has no cipher)" if "+" in kind else ""))
        return RawValue(kind, raw, self.strict)

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        """A `RawValue`'s bytes (encrypted with the saver's cipher, if any); else the
        saver's serializer's output."""
        if isinstance(obj, RawValue):
            kind, data = obj.typed
            if self.cipher is None:
                return kind, data
            name, ciphertext = self.cipher.encrypt(data)
            return f"{kind}+{name}", ciphertext
        return self.serde.dumps_typed(obj)


def raw_view(saver: S, allow_types: Iterable[TypeName] = ()) -> S:
    """A shallow copy of ``saver`` whose serializer is a `RawSerde` over its own.

    The copy shares the saver's connections and storage (it is the same store),
    as LangGraph's own ``with_allowlist`` clone does; only values change shape:
    they are read as `RawValue` and written back byte for byte.

    Args:
        saver: Any ``BaseCheckpointSaver`` (a view is returned as it is).
        allow_types: More types the strict decoding of bodies and metadata may rebuild.
    """
    if isinstance(saver.serde, RawSerde):
        return saver
    view = copy.copy(saver)
    view.serde = RawSerde(saver.serde, allow_types)
    return view


def keeps_values_apart(saver: BaseCheckpointSaver) -> bool:
    """Whether ``saver`` serialises each channel value and pending write on its own, so
    raw values pass through it: this package's savers, ``InMemorySaver`` and the official
    PostgreSQL savers, or a subclass of one. The official SQLite saver serialises a whole
    checkpoint at once and plainredis a write with its task id: they need objects."""
    return any(cls.__module__.startswith(_VALUES_APART) for cls in type(saver).__mro__)


def transfer_view(saver: S, allow_types: Iterable[TypeName] = ()) -> S:
    """The view a copy reads and writes ``saver`` through: `raw_view` where values are
    kept apart (`keeps_values_apart`); else a shallow copy whose serializer is the
    strict twin of its own (`strict_version`), so what is read is decoded, safe and
    allowed types only, and written as objects."""
    if keeps_values_apart(saver):
        return raw_view(saver, allow_types)
    view = copy.copy(saver)
    view.serde = strict_version(saver.serde, allow_types)
    return view


def plain(value: Any) -> Any:
    """A `RawValue` decoded (strictly), for a saver that needs objects; else ``value``."""
    return value.decoded() if isinstance(value, RawValue) else value

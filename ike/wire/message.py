"""The ISAKMP message: header (RFC 2408 3.1) and the generic payload chain (3.2).

``Message.decode`` takes a whole datagram.  A message with the E flag keeps its
body as ``ciphertext`` (and the header's first payload type as
``first_payload``); the caller decrypts it and calls ``decode_payloads`` (or
``Message.with_plaintext``).  To send an encrypted message the caller runs
``encode_payloads``, pads and encrypts, and builds a Message with
``ciphertext`` set.  Bytes after the end of the payload chain (the padding of
a decrypted body, or junk after a cleartext chain) are kept in ``trailer`` so
that encode(decode(x)) == x byte for byte.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from itertools import chain, repeat
from operator import attrgetter, methodcaller
from typing import TypeVar

from ike.wire.buffer import GENERIC, malformed
from ike.wire.constants import (
    COOKIE_SIZE,
    HEADER_SIZE,
    PAYLOAD_RESERVED_MAX,
    PAYLOAD_RESERVED_MIN,
    ExchangeType,
    Flags,
    NotifyType,
    PayloadType,
)
from ike.wire.errors import WireError
from ike.wire.payloads import DECODERS, Payload, UnknownPayload, first_error

_HEADER = struct.Struct(">8s8sBBBBII")
_P = TypeVar("_P", bound=Payload)
_FLAG_MASK = int(Flags.ENC | Flags.COMMIT | Flags.AUTH_ONLY)
#: The Flags value of every allowed flags byte (building a Flag member costs more than a lookup).
_FLAGS = tuple(Flags(v) for v in range(_FLAG_MASK + 1))
#: The PayloadType and ExchangeType of every byte value (one subscript per header field).
_PAYLOAD_TYPES = tuple(PayloadType.of(v) for v in range(256))
_EXCHANGE_TYPES = tuple(ExchangeType.of(v) for v in range(256))
_ENC = int(Flags.ENC)
#: A payload's payload_type, read in C (a list comprehension is a Python frame of its own).
_PAYLOAD_TYPE_OF = attrgetter("payload_type")
_ENCODE_BODY = methodcaller("encode_body")
_PLUS_HEADER = (4).__add__  # a payload's length: its body and the 4-byte generic header
#: Payload types that only occur inside an SA payload.
_NESTED = (PayloadType.PROPOSAL, PayloadType.TRANSFORM)
#: Next-payload values that may not start a message-level payload.
_NOT_TOP_LEVEL = frozenset((*_NESTED, *range(PAYLOAD_RESERVED_MIN, PAYLOAD_RESERVED_MAX + 1)))


@dataclass(slots=True)
class Header:
    """The fixed 28-byte ISAKMP header as decoded."""

    icookie: bytes
    rcookie: bytes
    next_payload: PayloadType
    version: int
    exchange_type: ExchangeType
    flags: Flags
    message_id: int
    length: int

    @property
    def major(self) -> int:
        """The major version (high nibble)."""
        return self.version >> 4

    @property
    def minor(self) -> int:
        """The minor version (low nibble)."""
        return self.version & 0x0F


def decode_header(data: bytes | bytearray | memoryview) -> Header:
    """Decode and check the header of a datagram (not its length against the datagram).

    Raises WireError: UNEQUAL_PAYLOAD_LENGTHS when shorter than a header,
    INVALID_MAJOR_VERSION / INVALID_MINOR_VERSION for anything but 1.0,
    INVALID_FLAGS when a bit other than E, C, A is set.
    """
    if len(data) < HEADER_SIZE:
        raise WireError(
            NotifyType.UNEQUAL_PAYLOAD_LENGTHS,
            f"header: {len(data)} bytes, shorter than the {HEADER_SIZE}-byte ISAKMP header",
        )
    return Header(*_unpack_header(data))


def _unpack_header(
    data: bytes | bytearray | memoryview,
) -> tuple[bytes, bytes, PayloadType, int, ExchangeType, Flags, int, int]:
    """The checked header fields (``len(data) >= HEADER_SIZE`` is the caller's check)."""
    icky, rcky, nxt, version, exch, flags, msgid, length = _HEADER.unpack_from(data, 0)
    if version >> 4 != 1:
        raise WireError(
            NotifyType.INVALID_MAJOR_VERSION,
            f"header: version {version >> 4}.{version & 15}, we speak ISAKMP 1.0",
        )
    if version & 0x0F:
        raise WireError(
            NotifyType.INVALID_MINOR_VERSION,
            f"header: version {version >> 4}.{version & 15}, we speak ISAKMP 1.0",
        )
    if flags & ~_FLAG_MASK:
        raise WireError(NotifyType.INVALID_FLAGS, f"header: undefined flag bits {flags:#04x}")
    return (icky, rcky, _PAYLOAD_TYPES[nxt], version, _EXCHANGE_TYPES[exch], _FLAGS[flags],
            msgid, length)


def _check_next(nxt: int, where: str) -> None:
    if PAYLOAD_RESERVED_MIN <= nxt <= PAYLOAD_RESERVED_MAX or nxt in _NESTED:
        raise WireError(
            NotifyType.INVALID_PAYLOAD_TYPE,
            f"{where}: next payload {PayloadType(nxt).name} is not a message-level payload",
        )


def _where(payloads: list[Payload], current: int, pos: int) -> str:
    return f"payload {len(payloads) + 1} ({PayloadType.of(current).name}) at offset {pos}"


def _opaque(kind: int) -> Callable[[memoryview], Payload]:
    """The decoder of payload type ``kind``, which this codec keeps opaque."""
    return lambda view: UnknownPayload(kind, bytes(view))


class _NotTopLevel(Exception):
    """Raised by the decoder of a type that may not start a message-level payload; decode_chain
    turns it into the INVALID_PAYLOAD_TYPE error."""


def _not_top_level(view: memoryview) -> Payload:
    raise _NotTopLevel


#: The decoder of each next-payload value (one subscript per payload); ``_not_top_level`` for
#: the values that may not start a message-level payload (PROPOSAL, TRANSFORM, the reserved
#: range).
_DECODE: tuple[Callable[[memoryview], Payload], ...] = tuple(
    _not_top_level if t in _NOT_TOP_LEVEL else DECODERS.get(t) or _opaque(t) for t in range(256))


def _header_error(payloads: list[Payload], current: int, pos: int, end: int,
                  view: memoryview) -> WireError | None:
    """Why the generic header of the payload at ``pos`` was refused (None: it was not)."""
    where = _where(payloads, current, pos)
    if _DECODE[current] is _not_top_level or pos + 4 > end:
        _check_next(current, where)
        return WireError(NotifyType.UNEQUAL_PAYLOAD_LENGTHS, f"{where}: the message ends before it")
    _nxt, reserved, length = GENERIC.unpack_from(view, pos)
    if reserved:
        return malformed(where, f"reserved byte is {reserved:#x}")
    if length < 4 or pos + length > end:
        return malformed(where, f"length {length} does not fit in the {end - pos} bytes left")
    return None


def decode_chain(
    first_type: int, body: bytes | bytearray | memoryview
) -> tuple[list[Payload], int]:
    """Decode the payload chain at the start of ``body``; also return where it ended.

    ``first_type`` is a next-payload byte (0-255).  Each generic header is checked (known or
    private type, reserved byte zero, length within ``body``) before the payload's own
    decoder sees its bytes.
    """
    if not 0 <= first_type <= 0xFF:
        raise WireError(NotifyType.INVALID_PAYLOAD_TYPE, f"next payload {first_type} is no byte")
    view = memoryview(body)
    end = len(view)
    payloads: list[Payload] = []
    append = payloads.append
    pos = 0
    current = first_type
    unpack = GENERIC.unpack_from
    # A short header (struct.error from unpack) and a type that may not start a payload
    # (_NotTopLevel from its decoder) are found by the exceptions they raise: no test per
    # payload on the good path.  The decoders themselves check their lengths and raise only
    # WireError.
    try:
        while current:
            decoder = _DECODE[current]
            nxt, reserved, length = unpack(view, pos)
            stop = pos + length
            if reserved or length < 4 or stop > end:
                raise _NotTopLevel
            append(decoder(view[pos + 4 : stop]))
            pos = stop
            current = nxt
    except (struct.error, _NotTopLevel):
        err = _header_error(payloads, current, pos, end, view)
        if err is None:  # pragma: no cover - the decoders raise no struct.error
            raise
        raise err from None
    return payloads, pos


def decode_payloads(first_type: int, body: bytes | bytearray | memoryview) -> list[Payload]:
    """Decode the payloads of a (decrypted) body; bytes after the chain (padding) are ignored."""
    return decode_chain(first_type, body)[0]


def encode_payloads(payloads: Sequence[Payload]) -> tuple[PayloadType, bytes]:
    """Encode a payload chain: (type of the first payload, the chained bytes)."""
    if not payloads:
        return PayloadType.NONE, b""
    # A plain loop: for the one to six payloads of a message it takes a fraction of the time
    # of map/zip/chain pipelines (building those iterators costs more than the loop).  Each
    # generic header names the type of the payload after it (0 after the last).
    pack = GENERIC.pack
    parts: list[bytes] = []
    append = parts.append
    try:
        body = payloads[0].encode_body()
        for payload in payloads[1:]:
            append(pack(payload.payload_type, 0, len(body) + 4))
            append(body)
            body = payload.encode_body()
        append(pack(0, 0, len(body) + 4))
        append(body)
    except Exception:  # whatever it was: raised as the checked encoder raises it
        return _encode_checked(payloads)
    return payloads[0].payload_type, b"".join(parts)


def _encode_checked(payloads: Sequence[Payload]) -> tuple[PayloadType, bytes]:
    """encode_payloads when something in the chain cannot be encoded: the error raised is the
    first payload's fault, in order (or a malformed one for the chain)."""
    types = list(map(_PAYLOAD_TYPE_OF, payloads))
    try:
        bodies = list(map(_ENCODE_BODY, payloads))
        sizes = list(map(_PLUS_HEADER, map(len, bodies)))
        headers = map(GENERIC.pack, [*types[1:], 0], repeat(0), sizes)
        return types[0], b"".join(chain.from_iterable(zip(headers, bodies, strict=True)))
    except (struct.error, WireError) as exc:
        try:
            first_error(payloads, types)  # raises the first payload's fault, in order
        except struct.error as inner:
            raise malformed("encode", str(inner)) from inner
        if isinstance(exc, WireError):  # pragma: no cover - first_error raised it again
            raise
        raise malformed("encode", str(exc)) from exc


def encode_message(icookie: bytes, rcookie: bytes, first: int, exchange_type: int, flags: int,
                   message_id: int, body: bytes, version: int = 0x10) -> bytes:
    """A datagram from header fields and a body already encoded (``encode_payloads``) or
    encrypted: what a sender needs without building a Message first."""
    try:
        head = _HEADER.pack(icookie, rcookie, first, version, exchange_type, flags, message_id,
                            HEADER_SIZE + len(body))
    except struct.error as exc:
        raise malformed("header", str(exc)) from exc
    if len(icookie) != COOKIE_SIZE or len(rcookie) != COOKIE_SIZE:
        raise malformed("header", "cookies must be 8 bytes each")
    return head + body


@dataclass(slots=True)
class Message:
    """One ISAKMP message (header fields, payloads, and what follows the chain)."""

    icookie: bytes
    rcookie: bytes = bytes(COOKIE_SIZE)
    exchange_type: ExchangeType = ExchangeType.ID_PROT
    flags: Flags = Flags.NONE
    message_id: int = 0
    payloads: list[Payload] = field(default_factory=list)
    version: int = 0x10
    trailer: bytes = b""
    #: Encrypted body, and the header's next-payload field that goes with it.
    ciphertext: bytes | None = None
    first_payload: PayloadType = PayloadType.NONE

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> Message:
        """Decode a whole datagram; raises WireError (and nothing else) on bad input."""
        try:
            icky, rcky, nxt, version, exch, flag_bits, msgid, length = _HEADER.unpack_from(data)
        except struct.error:
            decode_header(data)  # raises the short-header error
            raise  # pragma: no cover - decode_header raised
        if version != 0x10 or flag_bits & ~_FLAG_MASK:
            _unpack_header(data)  # raises the version or flags error
        if length != len(data):
            raise WireError(
                NotifyType.UNEQUAL_PAYLOAD_LENGTHS,
                f"header: length field {length}, datagram {len(data)} bytes",
            )
        if flag_bits & _ENC:
            return cls(icky, rcky, _EXCHANGE_TYPES[exch], _FLAGS[flag_bits], msgid, [], version,
                       b"", bytes(data[HEADER_SIZE:]), _PAYLOAD_TYPES[nxt])
        view = memoryview(data)[HEADER_SIZE:]
        payloads, end = decode_chain(nxt, view)
        return cls(icky, rcky, _EXCHANGE_TYPES[exch], _FLAGS[flag_bits], msgid, payloads,
                   version, bytes(view[end:]))

    def with_plaintext(self, plaintext: bytes | bytearray | memoryview) -> Message:
        """A copy whose payloads come from the decrypted body (padding goes to ``trailer``)."""
        payloads, end = decode_chain(self.first_payload, plaintext)
        return replace(
            self,
            payloads=payloads,
            trailer=bytes(plaintext[end:]),
            ciphertext=None,
            first_payload=PayloadType.NONE,
        )

    def encode(self) -> bytes:
        """The datagram: header plus chain (or ``ciphertext`` when that is set)."""
        if self.ciphertext is not None:
            first, body = self.first_payload, self.ciphertext
        else:
            first, body = encode_payloads(self.payloads)
            body += self.trailer
        return encode_message(self.icookie, self.rcookie, first, self.exchange_type, self.flags,
                              self.message_id, body, self.version)

    def get(self, kind: type[_P]) -> _P | None:
        """The first payload of class ``kind``, or None."""
        # a plain loop: the payload sought is usually among the first, and building a filter
        # iterator and a bound __instancecheck__ costs more than the few isinstance tests
        for payload in self.payloads:
            if isinstance(payload, kind):
                return payload
        return None

    def all(self, kind: type[_P]) -> list[_P]:
        """Every payload of class ``kind``, in order."""
        found: list[_P] = []
        for payload in self.payloads:  # plain loops: quicker than filter() or a comprehension
            if isinstance(payload, kind):  # (a frame of its own) for a message's few payloads
                found.append(payload)
        return found

    def payload_types(self) -> list[PayloadType]:
        """The payload types in order (what the rules table checks)."""
        types: list[PayloadType] = []
        for payload in self.payloads:
            types.append(payload.payload_type)
        return types

    def summary(self) -> str:
        """One log line: exchange, cookies, message id and the payload types in order."""
        if self.ciphertext is not None:
            body = f"encrypted {len(self.ciphertext)} bytes"
        else:
            body = " ".join(t.name for t in self.payload_types())
        return (
            f"{self.exchange_type.name} {self.icookie.hex()}:{self.rcookie.hex()} "
            f"msgid {self.message_id:08x} [ {body} ]"
        )

    @property
    def is_encrypted(self) -> bool:
        """True when the E flag is set."""
        return bool(int(self.flags) & _ENC)


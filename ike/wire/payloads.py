"""ISAKMP payloads (RFC 2408 3.4-3.16, RFC 3947, mode-config draft) as slots dataclasses.

Each class decodes from the payload *body* (the bytes after its 4-byte generic
header, already cut to the length that header gives) and encodes back to the
same body.  Decoders check every inner length against that body and raise only
``WireError``.  Integer fields hold tolerant IntEnums, so unknown values keep
their number.  ``DECODERS`` maps a payload type to its decoder; types without
one (SAK..POP, private types) decode to ``UnknownPayload``.
"""

from __future__ import annotations

import struct
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import chain, repeat
from operator import methodcaller
from typing import ClassVar, Self, TypeVar

from ike.doi.constants import IdType, ProtocolId, Situation, transform_id
from ike.wire.attributes import TV_MASKS, Attribute, decode_attributes, encode_attributes
from ike.wire.buffer import GENERIC, check_length, malformed, need
from ike.wire.constants import (
    CertEncoding,
    CfgType,
    Doi,
    NotifyType,
    PayloadType,
)
from ike.wire.errors import WireError

_SA = struct.Struct(">II")
_PROP = struct.Struct(">BBBB")
_XFORM = struct.Struct(">BBH")
_ID = struct.Struct(">BBH")
_NOTIFY = struct.Struct(">IBBH")
_DELETE = struct.Struct(">IBBH")
_CFG = struct.Struct(">BBH")
_NATOA = struct.Struct(">BBH")

_T = TypeVar("_T")
_LABELLED = int(Situation.SECRECY | Situation.INTEGRITY)
_SITUATIONS = tuple(Situation(v) for v in range(8))
#: The member for every value of the one-byte enum fields: a subscript instead of an .of() call
#: per payload on the decoders' hot path.
_PROTOCOL_IDS = tuple(ProtocolId.of(v) for v in range(256))
_ID_TYPES = tuple(IdType.of(v) for v in range(256))
_TRANSFORM_IDS: dict[int, tuple[int, ...]] = {
    p: tuple(transform_id(p, v) for v in range(256)) for p in ProtocolId}
#: Members the hot paths read, bound once: reading an Enum class's attribute goes through the
#: slow lookup EnumType.__getattr__ imposes (about 55 ns a time, more than the work around it).
_PROPOSAL = PayloadType.PROPOSAL
_TRANSFORM = PayloadType.TRANSFORM
_IPSEC = Doi.IPSEC
_NOTIFY_TYPES: dict[int, NotifyType] = dict(NotifyType._value2member_map_)
_DOIS: dict[int, Doi] = dict(Doi._value2member_map_)


class Payload:
    """Base of every payload: knows its type and how to encode its body.

    Not an ABC: ``isinstance`` against an ABCMeta class runs ABCMeta.__instancecheck__ in
    Python, and Message.get/all test each payload's class with ``isinstance``.
    """

    __slots__ = ()
    TYPE: ClassVar[PayloadType] = PayloadType.NONE

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "TYPE" in cls.__dict__ and "payload_type" not in cls.__dict__:
            # A class whose type is fixed answers payload_type from a class attribute: the
            # codec asks for it per payload, and the property below costs a Python call.
            setattr(cls, "payload_type", cls.TYPE)  # noqa: B010 (the property is read-only)

    @property
    def payload_type(self) -> PayloadType:
        """The next-payload number that announces this payload."""
        return self.TYPE

    @abstractmethod
    def encode_body(self) -> bytes:
        """The payload's bytes after its generic header."""
        raise NotImplementedError


def _chain(
    view: memoryview,
    expected: PayloadType,
    decode: Callable[[memoryview], _T],
    minimum: int,
    where: str,
) -> list[_T]:
    """Decode the proposal or transform chain filling ``view`` exactly."""
    items: list[_T] = []
    pos = 0
    end = len(view)
    unpack = GENERIC.unpack_from
    least = 4 + minimum
    try:  # a short header shows as struct.error from unpack_from (no test per item)
        while True:
            nxt, reserved, length = unpack(view, pos)
            stop = pos + length
            if reserved:
                raise malformed(where, f"{expected.name} reserved byte is {reserved:#x}")
            if length < least or stop > end:
                raise malformed(where, f"{expected.name} length {length} does not fit")
            items.append(decode(view[pos + 4 : stop]))
            pos = stop
            if not nxt:
                break
            if nxt != expected:
                raise WireError(
                    NotifyType.INVALID_PAYLOAD_TYPE,
                    f"{where}: payload type {PayloadType(nxt).name} inside {expected.name} chain",
                )
    except struct.error:
        raise malformed(where, f"no room for a {expected.name} header") from None
    if pos != end:
        raise malformed(where, f"{end - pos} bytes after the last {expected.name}")
    return items


def _encode_chain(items: list[Transform] | list[Proposal], kind: PayloadType) -> bytes:
    if len(items) == 1:  # the usual answer: one proposal with the one chosen transform
        body = items[0].encode_body()
        if len(body) > 0xFFFB:
            check_length(len(body) + 4, kind.name)
        return GENERIC.pack(0, 0, len(body) + 4) + body
    if not items:
        return b""
    nexts = [kind] * (len(items) - 1)
    nexts.append(PayloadType.NONE)
    try:
        # as encode_payloads: map() over C callables, no Python loop per item
        bodies = list(map(_ENCODE_BODY, items))
        sizes = list(map(_PLUS_HEADER, map(len, bodies)))
        return b"".join(chain.from_iterable(zip(map(GENERIC.pack, nexts, repeat(0), sizes),
                                                bodies, strict=True)))
    except (struct.error, WireError):
        first_error(items, [kind] * len(items))
        raise


def first_error(items: Sequence[Payload], kinds: Sequence[int]) -> None:
    """Encode ``items`` one by one, each checked against the 16-bit length field in turn, so
    that the first of several faults is the one raised (the encoders above do all bodies at
    once, then all lengths, and call this only once something failed)."""
    for item, kind in zip(items, kinds, strict=True):
        size = len(item.encode_body()) + 4
        if size > 0xFFFF:
            check_length(size, PayloadType.of(kind).name)


_ENCODE_BODY = methodcaller("encode_body")
_PLUS_HEADER = (4).__add__  # an item's length: its body and the 4-byte generic header


class Transform(Payload):
    """A transform (RFC 2408 3.6); ``transform_id`` is read per the proposal's protocol.

    Built as a dataclass would be (``Transform(number, transform_id, attributes)``, equal when
    those are), but a decoded transform whose attributes are all in TV form keeps them as the
    bytes received and decodes them when ``attributes`` is first read: a responder whose
    caches key on those bytes never reads most of them.  The TV check is the whole of the
    attributes' validation, so malformed ones still raise in ``decode``.
    """

    __slots__ = ("_attributes", "number", "received", "transform_id")
    __hash__ = None  # type: ignore[assignment]  # mutable, like the other payloads
    TYPE: ClassVar[PayloadType] = PayloadType.TRANSFORM

    number: int
    transform_id: int
    received: bytes
    """The body as received (set by ``decode``), for :meth:`echo`; as in SecurityAssociation,
    it equals ``encode_body()`` until a field is changed and takes no part in comparisons."""

    def __init__(self, number: int, transform_id: int, attributes: list[Attribute] | None = None,
                 received: bytes = b"") -> None:
        self.number = number
        self.transform_id = transform_id
        # None: the attributes of ``received``, not decoded yet (only decode passes None
        # with bytes; without them it is the empty list)
        self._attributes = attributes if attributes is not None or received else []
        self.received = received

    @property
    def attributes(self) -> list[Attribute]:
        """The data attributes, in order."""
        attrs = self._attributes
        if attrs is None:
            attrs = self._attributes = decode_attributes(
                memoryview(self.received)[4:], f"TRANSFORM #{self.number} attributes")
        return attrs

    @attributes.setter
    def attributes(self, value: list[Attribute]) -> None:
        self._attributes = value

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Transform)
        return (self.number, self.transform_id, self.attributes) == (
            other.number, other.transform_id, other.attributes)

    def __repr__(self) -> str:
        return (f"{type(self).__qualname__}(number={self.number!r}, "
                f"transform_id={self.transform_id!r}, attributes={self.attributes!r})")

    @classmethod
    def decode(cls, view: memoryview, protocol: int = ProtocolId.ISAKMP) -> Transform:
        """Decode a transform body belonging to a proposal of ``protocol``."""
        if len(view) < 4:
            need(view, 4, "TRANSFORM")
        number, tid, reserved = _XFORM.unpack_from(view, 0)
        if reserved:
            raise malformed("TRANSFORM", f"reserved field is {reserved:#x}")
        ids = _TRANSFORM_IDS.get(protocol)
        mask = TV_MASKS.get(len(view) - 4)
        if mask is not None and int.from_bytes(view[4:]) & mask == mask:
            attrs = None  # all TV: nothing in them can be malformed, decoded when read
        else:
            attrs = decode_attributes(view[4:], f"TRANSFORM #{number} attributes")
        return cls(number, ids[tid] if ids is not None else tid, attrs, bytes(view))

    def encode_body(self) -> bytes:
        return _XFORM.pack(self.number, self.transform_id, 0) + encode_attributes(self.attributes)

    def echo(self) -> Transform:
        """This transform to send back as the peer sent it (a responder's answer repeats the
        chosen transform): a decoded one encodes as its received bytes, without re-encoding
        each attribute; one built locally is returned as it is."""
        if not self.received:
            return self
        return EchoedTransform(self.number, self.transform_id, self._attributes, self.received)


class EchoedTransform(Transform):
    """A received transform sent back unchanged (:meth:`Transform.echo`): its body is the
    bytes received, whatever its fields say."""

    __slots__ = ()

    def encode_body(self) -> bytes:
        return self.received


@dataclass(slots=True)
class Proposal(Payload):
    """A proposal (RFC 2408 3.5) with its SPI and transforms."""

    TYPE: ClassVar[PayloadType] = PayloadType.PROPOSAL
    number: int
    protocol: ProtocolId
    spi: bytes = b""
    transforms: list[Transform] = field(default_factory=list)

    @classmethod
    def decode(cls, view: memoryview) -> Proposal:
        """Decode a proposal body; the transform count must match the chain."""
        if len(view) < 4:
            need(view, 4, "PROPOSAL")
        number, proto, spi_size, count = _PROP.unpack_from(view, 0)
        if len(view) < 4 + spi_size:
            need(view, 4 + spi_size, f"PROPOSAL #{number} SPI")
        protocol = _PROTOCOL_IDS[proto]
        spi = bytes(view[4 : 4 + spi_size])
        rest = view[4 + spi_size :]
        transforms: list[Transform] = []
        if len(rest):
            transforms = _chain(
                rest,
                PayloadType.TRANSFORM,
                partial(Transform.decode, protocol=protocol),  # no Python frame of its own
                4,
                f"PROPOSAL #{number}",
            )
        if count != len(transforms):
            raise WireError(
                NotifyType.BAD_PROPOSAL_SYNTAX,
                f"PROPOSAL #{number}: says {count} transforms, holds {len(transforms)}",
            )
        return cls(number, protocol, spi, transforms)

    def encode_body(self) -> bytes:
        if len(self.spi) > 255 or len(self.transforms) > 255:
            raise malformed("PROPOSAL", "SPI or transform count exceeds 255")
        head = _PROP.pack(self.number, self.protocol, len(self.spi), len(self.transforms))
        return head + self.spi + _encode_chain(self.transforms, _TRANSFORM)


def _regular_proposals(view: memoryview) -> list[Proposal] | None:
    """The proposals of an SA body (after DOI and situation) in one pass, when it is regular:
    every header sound, every transform with TV attributes only.  None for anything else, and
    the checked decoders (_chain, Proposal.decode, Transform.decode) then raise the first fault
    in order.  The one pass builds the same objects without their three levels of calls,
    partials and error labels: the two SA payloads a responder decodes per handshake."""
    unpack = GENERIC.unpack_from
    proposals: list[Proposal] = []
    pos = 0
    end = len(view)
    try:
        while True:
            nxt, reserved, length = unpack(view, pos)
            stop = pos + length
            if reserved or length < 8 or stop > end:
                return None
            number, proto, spi_size, count = _PROP.unpack_from(view, pos + 4)
            at = pos + 8 + spi_size  # the transform chain
            if at > stop:
                return None
            protocol = _PROTOCOL_IDS[proto]
            ids = _TRANSFORM_IDS.get(protocol)
            transforms: list[Transform] = []
            if at < stop:
                while True:
                    t_nxt, t_reserved, t_length = unpack(view, at)
                    t_stop = at + t_length
                    if t_reserved or t_length < 8 or t_stop > stop:
                        return None
                    t_number, tid, t_zero = _XFORM.unpack_from(view, at + 4)
                    mask = TV_MASKS.get(t_length - 8)
                    if t_zero or mask is None or \
                            int.from_bytes(view[at + 8 : t_stop]) & mask != mask:
                        return None
                    transforms.append(Transform(t_number, ids[tid] if ids is not None else tid,
                                                None, bytes(view[at + 4 : t_stop])))
                    at = t_stop
                    if not t_nxt:
                        break
                    if t_nxt != _TRANSFORM:
                        return None
                if at != stop:
                    return None
            if count != len(transforms):
                return None
            proposals.append(Proposal(number, protocol, bytes(view[pos + 8 : pos + 8 + spi_size]),
                                      transforms))
            pos = stop
            if not nxt:
                break
            if nxt != _PROPOSAL:
                return None
    except struct.error:  # a header cut short
        return None
    return proposals if pos == end else None


@dataclass(slots=True)
class SecurityAssociation(Payload):
    """SA payload (RFC 2408 3.4) in the IPsec DOI (RFC 2407 4.6.1).

    Only situations without SECRECY/INTEGRITY are decoded (isakmpd supports
    IDENTITY_ONLY only); those and non-IPsec DOIs raise SITUATION_NOT_SUPPORTED
    and DOI_NOT_SUPPORTED.
    """

    TYPE: ClassVar[PayloadType] = PayloadType.SA
    proposals: list[Proposal] = field(default_factory=list)
    situation: Situation = Situation.IDENTITY_ONLY
    doi: Doi = Doi.IPSEC
    #: The body as received (set by ``decode``): Phase 1 hashes SAi_b exactly as the peer sent
    #: it.  The round trip makes it equal ``encode_body()`` until a field is changed.
    received: bytes = field(default=b"", compare=False, repr=False)

    @classmethod
    def decode(cls, view: memoryview) -> SecurityAssociation:
        if len(view) < 8:
            need(view, 8, "SA")
        doi, sit = _SA.unpack_from(view, 0)
        if doi != _IPSEC:
            raise WireError(NotifyType.DOI_NOT_SUPPORTED, f"SA: DOI {doi} is not IPsec (1)")
        if sit & _LABELLED:
            raise WireError(
                NotifyType.SITUATION_NOT_SUPPORTED, f"SA: situation {sit:#x} has labels"
            )
        proposals = _regular_proposals(view[8:])
        if proposals is None:  # something irregular: the checked decoders raise its error
            proposals = _chain(view[8:], PayloadType.PROPOSAL, Proposal.decode, 4, "SA")
        situation = _SITUATIONS[sit] if sit < 8 else Situation(sit)  # no enum call (hot path)
        return cls(proposals, situation, _IPSEC, bytes(view))

    def encode_body(self) -> bytes:
        return _SA.pack(self.doi, self.situation) + _encode_chain(
            self.proposals, _PROPOSAL
        )


@dataclass(slots=True)
class _Data(Payload):
    """A payload whose body is one opaque byte string."""

    data: bytes

    @classmethod
    def decode(cls, view: memoryview) -> Self:
        return cls(bytes(view))

    def encode_body(self) -> bytes:
        return self.data


@dataclass(slots=True)
class KeyExchange(_Data):
    """KE payload (RFC 2408 3.7): the DH public value."""

    TYPE: ClassVar[PayloadType] = PayloadType.KEY_EXCH


@dataclass(slots=True)
class Hash(_Data):
    """HASH payload (RFC 2408 3.11)."""

    TYPE: ClassVar[PayloadType] = PayloadType.HASH


@dataclass(slots=True)
class Signature(_Data):
    """SIG payload (RFC 2408 3.12)."""

    TYPE: ClassVar[PayloadType] = PayloadType.SIG


@dataclass(slots=True)
class Nonce(_Data):
    """NONCE payload (RFC 2408 3.13)."""

    TYPE: ClassVar[PayloadType] = PayloadType.NONCE


@dataclass(slots=True)
class VendorId(_Data):
    """VENDOR payload (RFC 2408 3.16)."""

    TYPE: ClassVar[PayloadType] = PayloadType.VENDOR


@dataclass(slots=True)
class NatD(_Data):
    """NAT-D payload: type 20 (RFC 3947) or 130 (drafts 02/03) when ``draft``."""

    draft: bool = False

    @property
    def payload_type(self) -> PayloadType:
        return PayloadType.NAT_D_DRAFT if self.draft else PayloadType.NAT_D


@dataclass(slots=True)
class Identification(Payload):
    """ID payload (RFC 2408 3.8) with the IPsec DOI protocol and port (RFC 2407 4.6.2)."""

    TYPE: ClassVar[PayloadType] = PayloadType.ID
    id_type: IdType
    data: bytes
    protocol: int = 0
    port: int = 0

    @classmethod
    def decode(cls, view: memoryview) -> Identification:
        if len(view) < 4:
            need(view, 4, "ID")
        id_type, protocol, port = _ID.unpack_from(view, 0)
        return cls(_ID_TYPES[id_type], bytes(view[4:]), protocol, port)

    def encode_body(self) -> bytes:
        return _ID.pack(self.id_type, self.protocol, self.port) + self.data


@dataclass(slots=True)
class Certificate(Payload):
    """CERT payload (RFC 2408 3.9)."""

    TYPE: ClassVar[PayloadType] = PayloadType.CERT
    encoding: CertEncoding
    data: bytes

    @classmethod
    def decode(cls, view: memoryview) -> Certificate:
        need(view, 1, "CERT")
        return cls(CertEncoding.of(view[0]), bytes(view[1:]))

    def encode_body(self) -> bytes:
        return bytes((self.encoding,)) + self.data


@dataclass(slots=True)
class CertificateRequest(Payload):
    """CERT_REQ payload (RFC 2408 3.10): a type and an optional authority (DER DN)."""

    TYPE: ClassVar[PayloadType] = PayloadType.CERT_REQ
    cert_type: CertEncoding
    authority: bytes = b""

    @classmethod
    def decode(cls, view: memoryview) -> CertificateRequest:
        need(view, 1, "CERT_REQ")
        return cls(CertEncoding.of(view[0]), bytes(view[1:]))

    def encode_body(self) -> bytes:
        return bytes((self.cert_type,)) + self.authority


@dataclass(slots=True)
class Notify(Payload):
    """NOTIFY payload (RFC 2408 3.14): type, protocol, SPI and notification data."""

    TYPE: ClassVar[PayloadType] = PayloadType.NOTIFY
    notify_type: NotifyType
    protocol: ProtocolId = ProtocolId.ISAKMP
    spi: bytes = b""
    data: bytes = b""
    doi: Doi = Doi.IPSEC

    @classmethod
    def decode(cls, view: memoryview) -> Notify:
        if len(view) < 8:
            need(view, 8, "NOTIFY")
        doi, proto, spi_size, ntype = _NOTIFY.unpack_from(view, 0)
        if len(view) < 8 + spi_size:
            need(view, 8 + spi_size, "NOTIFY SPI")
        return cls(
            _NOTIFY_TYPES.get(ntype) or NotifyType.of(ntype),
            _PROTOCOL_IDS[proto],
            bytes(view[8 : 8 + spi_size]),
            bytes(view[8 + spi_size :]),
            _DOIS.get(doi) or Doi.of(doi),
        )

    def encode_body(self) -> bytes:
        if len(self.spi) > 255:
            raise malformed("NOTIFY", "SPI longer than 255 bytes")
        head = _NOTIFY.pack(self.doi, self.protocol, len(self.spi), self.notify_type)
        return head + self.spi + self.data


@dataclass(slots=True)
class Delete(Payload):
    """DELETE payload (RFC 2408 3.15): SPIs of one protocol, all ``spi_size`` long."""

    TYPE: ClassVar[PayloadType] = PayloadType.DELETE
    protocol: ProtocolId
    spis: list[bytes]
    spi_size: int = 4
    doi: Doi = Doi.IPSEC

    @classmethod
    def decode(cls, view: memoryview) -> Delete:
        need(view, 8, "DELETE")
        doi, proto, spi_size, count = _DELETE.unpack_from(view, 0)
        if len(view) != 8 + spi_size * count:
            raise malformed(
                "DELETE", f"{count} SPIs of {spi_size} bytes in {len(view) - 8} bytes"
            )
        spis = [bytes(view[8 + i * spi_size : 8 + (i + 1) * spi_size]) for i in range(count)]
        return cls(_PROTOCOL_IDS[proto], spis, spi_size, _DOIS.get(doi) or Doi.of(doi))

    def encode_body(self) -> bytes:
        if any(len(s) != self.spi_size for s in self.spis):
            raise malformed("DELETE", f"an SPI is not {self.spi_size} bytes long")
        if self.spi_size > 255 or len(self.spis) > 0xFFFF:
            raise malformed("DELETE", "SPI size or count too large")
        head = _DELETE.pack(self.doi, self.protocol, self.spi_size, len(self.spis))
        return head + b"".join(self.spis)


@dataclass(slots=True)
class AttributePayload(Payload):
    """ATTRIBUTE payload of mode-config (draft-dukes-ike-mode-cfg 3.2)."""

    TYPE: ClassVar[PayloadType] = PayloadType.ATTRIBUTE
    cfg_type: CfgType
    identifier: int = 0
    attributes: list[Attribute] = field(default_factory=list)

    @classmethod
    def decode(cls, view: memoryview) -> AttributePayload:
        need(view, 4, "ATTRIBUTE")
        cfg_type, reserved, identifier = _CFG.unpack_from(view, 0)
        if reserved:
            raise malformed("ATTRIBUTE", f"reserved byte is {reserved:#x}")
        attrs = decode_attributes(view[4:], "ATTRIBUTE attributes")
        return cls(CfgType.of(cfg_type), identifier, attrs)

    def encode_body(self) -> bytes:
        return _CFG.pack(self.cfg_type, 0, self.identifier) + encode_attributes(self.attributes)


@dataclass(slots=True)
class NatOA(Payload):
    """NAT-OA payload: type 21 (RFC 3947 5.2) or 131 (drafts) when ``draft``."""

    id_type: IdType
    address: bytes
    draft: bool = False

    @property
    def payload_type(self) -> PayloadType:
        return PayloadType.NAT_OA_DRAFT if self.draft else PayloadType.NAT_OA

    @classmethod
    def decode(cls, view: memoryview) -> NatOA:
        need(view, 4, "NAT-OA")
        id_type, res1, res2 = _NATOA.unpack_from(view, 0)
        if res1 or res2:
            raise malformed("NAT-OA", "reserved fields are not zero")
        return cls(_ID_TYPES[id_type], bytes(view[4:]))

    def encode_body(self) -> bytes:
        return _NATOA.pack(self.id_type, 0, 0) + self.address


@dataclass(slots=True)
class UnknownPayload(Payload):
    """A payload this codec does not interpret (SAK..POP, private use), kept opaque."""

    type_code: int
    data: bytes

    @property
    def payload_type(self) -> PayloadType:
        return PayloadType(self.type_code)

    def encode_body(self) -> bytes:
        return self.data


def _natd_draft(view: memoryview) -> NatD:
    return NatD(bytes(view), True)


def _natoa_draft(view: memoryview) -> NatOA:
    p = NatOA.decode(view)
    p.draft = True
    return p


#: Top-level payload decoders by type; PROPOSAL and TRANSFORM only occur inside an SA.
DECODERS: dict[int, Callable[[memoryview], Payload]] = {
    PayloadType.SA: SecurityAssociation.decode,
    PayloadType.KEY_EXCH: KeyExchange.decode,
    PayloadType.ID: Identification.decode,
    PayloadType.CERT: Certificate.decode,
    PayloadType.CERT_REQ: CertificateRequest.decode,
    PayloadType.HASH: Hash.decode,
    PayloadType.SIG: Signature.decode,
    PayloadType.NONCE: Nonce.decode,
    PayloadType.NOTIFY: Notify.decode,
    PayloadType.DELETE: Delete.decode,
    PayloadType.VENDOR: VendorId.decode,
    PayloadType.ATTRIBUTE: AttributePayload.decode,
    PayloadType.NAT_D: NatD.decode,
    PayloadType.NAT_OA: NatOA.decode,
    PayloadType.NAT_D_DRAFT: _natd_draft,
    PayloadType.NAT_OA_DRAFT: _natoa_draft,
}

__all__ = [
    "DECODERS",
    "AttributePayload",
    "Certificate",
    "CertificateRequest",
    "Delete",
    "EchoedTransform",
    "Hash",
    "Identification",
    "KeyExchange",
    "NatD",
    "NatOA",
    "Nonce",
    "Notify",
    "Payload",
    "Proposal",
    "SecurityAssociation",
    "Signature",
    "Transform",
    "UnknownPayload",
    "VendorId",
]

"""Proposals from isakmpd.conf and the responder's choice among the peer's (isakmpd.md 6.2, 6.3).

Phase 1: the initiator offers one proposal (#1, ISAKMP, no SPI) whose transforms, numbered from
0, are the ISAKMP-transform sections of the peer's ``Configuration``; the responder walks the
peer's transforms in order and takes the first that one of its own configured transforms accepts
(every received attribute equal to the configured constant or ``ANY``, lifetimes within a
``Life`` section's offer/accept spec, no leftover configured tags, no PRF).

Phase 2: every suite of the connection's ``Configuration`` is one proposal number; each protocol
of a suite is one proposal payload with that number; transforms are numbered from 1.  The
responder does not match against local suites: it takes a proposal whose transforms the kernel
supports and that the KeyNote policy accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from ike.conf import Conf
from ike.crypto.cipher import CipherError, negotiated_key_length
from ike.doi.constants import (
    AhTransformId,
    AuthAlgorithm,
    EncapsulationMode,
    EspTransformId,
    IkeAttr,
    IkeAuth,
    IkeEncrypt,
    IkeGroupDesc,
    IkeHash,
    IpcompTransformId,
    IpsecAttr,
    IpsecDuration,
    ProtocolId,
)
from ike.exchange.errors import ExchangeError
from ike.wire.attributes import Attribute, int_pairs
from ike.wire.constants import NotifyType, TolerantIntEnum
from ike.wire.payloads import Proposal, Transform

__all__ = [
    "IpsecValues",
    "Phase1Choice",
    "check_transform",
    "ipsec_values",
    "phase1_proposal",
    "phase1_select",
    "phase2_keysizes",
    "phase2_proposals",
    "phase2_supported",
]

KEY_IKE = 1
_SUPPORTED_GROUPS = frozenset({1, 2, 5, 14, 15, 16, 17, 18, 19, 20, 21, 25, 26, 27, 28, 29, 30})
_IKE_VALUE_ENUMS: dict[int, type[TolerantIntEnum]] = {
    IkeAttr.ENCRYPTION_ALGORITHM: IkeEncrypt,
    IkeAttr.HASH_ALGORITHM: IkeHash,
    IkeAttr.AUTHENTICATION_METHOD: IkeAuth,
    IkeAttr.GROUP_DESCRIPTION: IkeGroupDesc,
}
_LIFE_TYPES = {"SECONDS": 1, "KILOBYTES": 2}
#: Members read per exchange, bound once (an Enum class attribute read is a slow lookup).
_ISAKMP = ProtocolId.ISAKMP
_IPSEC_AH, _IPCOMP = ProtocolId.IPSEC_AH, ProtocolId.IPCOMP
_AUTHENTICATION_ALGORITHM, _KEY_LENGTH = IpsecAttr.AUTHENTICATION_ALGORITHM, IpsecAttr.KEY_LENGTH


def _const(enum_cls: type[TolerantIntEnum], name: str, where: str) -> int:
    try:
        return int(enum_cls.from_name(name))
    except KeyError:
        raise ExchangeError(NotifyType.ATTRIBUTES_NOT_SUPPORTED,
                            f"{where}: unknown constant {name!r}") from None


def _offer(text: str) -> int:
    """The offered number of an ``X,Y:Z`` value."""
    head = text.split(",", 1)[0].strip()
    digits = ""
    for ch in head:
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else 0


def _life_attrs(conf: Conf, section: str, type_attr: int, dur_attr: int) -> list[Attribute]:
    out: list[Attribute] = []
    for life in conf.get_list(section, "Life"):
        if life.upper() == "ANY":
            continue
        kind = (conf.get_str(life, "LIFE_TYPE") or "").upper()
        if kind not in _LIFE_TYPES:
            continue
        duration = conf.get_str(life, "LIFE_DURATION")
        out.append(Attribute(type_attr, _LIFE_TYPES[kind]))
        if duration and duration.upper() != "ANY":
            out.append(Attribute.make(dur_attr, _offer(duration)))
    return out


def _durations(t: Transform, type_attr: int, dur_attr: int) -> tuple[int, int]:
    """(seconds, kilobytes) of a transform's life type/duration pairs (0: unset)."""
    life_type = 0
    seconds = kbytes = 0
    for a in t.attributes:
        if a.type == type_attr:
            life_type = a.as_int()
        elif a.type == dur_attr:
            if life_type == IpsecDuration.SECONDS:
                seconds = a.as_int()
            elif life_type == IpsecDuration.KILOBYTES:
                kbytes = a.as_int()
    return seconds, kbytes


# ---------------------------------------------------------------- Phase 1


def phase1_transform(conf: Conf, section: str, number: int) -> Transform:
    """One ISAKMP-transform section as a TRANSFORM payload (isakmpd's attribute order)."""
    attrs: list[Attribute] = []
    for attr, tag in (
        (IkeAttr.ENCRYPTION_ALGORITHM, "ENCRYPTION_ALGORITHM"),
        (IkeAttr.HASH_ALGORITHM, "HASH_ALGORITHM"),
        (IkeAttr.AUTHENTICATION_METHOD, "AUTHENTICATION_METHOD"),
        (IkeAttr.GROUP_DESCRIPTION, "GROUP_DESCRIPTION"),
    ):
        value = conf.get_str(section, tag)
        if value is not None and value.upper() != "ANY":
            attrs.append(Attribute(attr, _const(_IKE_VALUE_ENUMS[attr], value, section)))
    attrs += _life_attrs(conf, section, IkeAttr.LIFE_TYPE, IkeAttr.LIFE_DURATION)
    key_length = conf.get_str(section, "KEY_LENGTH")
    if key_length is not None and key_length.upper() != "ANY":
        attrs.append(Attribute(IkeAttr.KEY_LENGTH, _offer(key_length)))
    return Transform(number, KEY_IKE, attrs)


def phase1_proposal(conf: Conf, configuration: str) -> Proposal:
    """The initiator's single Phase 1 proposal from ``[configuration]:Transforms``."""
    names = conf.get_list(configuration, "Transforms")
    if not names:
        raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN,
                            f"[{configuration}] has no Transforms")
    transforms = [phase1_transform(conf, name, i) for i, name in enumerate(names)]
    return Proposal(1, ProtocolId.ISAKMP, b"", transforms)


class Phase1Choice(NamedTuple):
    """What Phase 1 negotiated, read from the accepted transform (an immutable record built
    once per exchange: a NamedTuple, with no per-field __init__ work)."""

    transform: Transform
    encryption: int
    key_length: int
    hash_alg: int
    auth_method: int
    group: int
    life_seconds: int
    life_kbytes: int


def _life_ok(conf: Conf, section: str, life_type: int, duration: int | None) -> bool:
    lives = conf.get_list(section, "Life")
    if any(life.upper() == "ANY" for life in lives):
        return True
    for life in lives:
        kind = (conf.get_str(life, "LIFE_TYPE") or "").upper()
        if _LIFE_TYPES.get(kind) != life_type:
            continue
        spec = conf.get_str(life, "LIFE_DURATION")
        if duration is None or spec is None or spec.upper() == "ANY":
            return True
        if conf.match_num(life, "LIFE_DURATION", duration):
            return True
    return False


def _phase1_accepts(conf: Conf, section: str, t: Transform) -> str | None:
    """None when configured transform ``section`` accepts ``t``, else the reason."""
    seen: set[str] = set()
    life_type: int | None = None
    for attr in t.attributes:
        value = attr.as_int()
        kind = attr.type
        if kind in _IKE_VALUE_ENUMS:
            tag = IkeAttr(kind).name
            seen.add(tag)
            want = conf.get_str(section, tag)
            if want is None:
                return f"{tag} not configured"
            if want.upper() != "ANY" and _const(_IKE_VALUE_ENUMS[kind], want, section) != value:
                return f"{tag} {value} differs"
            if kind == IkeAttr.GROUP_DESCRIPTION and value not in _SUPPORTED_GROUPS:
                return f"group {value} not supported"
        elif kind == IkeAttr.LIFE_TYPE:
            if life_type is not None and not _life_ok(conf, section, life_type, None):
                return "lifetime type refused"
            life_type = value
        elif kind == IkeAttr.LIFE_DURATION:
            if life_type is None or not _life_ok(conf, section, life_type, value):
                return f"lifetime {value} refused"
            life_type = None
        elif kind == IkeAttr.KEY_LENGTH:
            seen.add("KEY_LENGTH")
            if value % 8:
                return f"KEY_LENGTH {value} not a multiple of 8"
            spec = conf.get_str(section, "KEY_LENGTH")
            if spec is not None and spec.upper() != "ANY" and not conf.match_num(
                section, "KEY_LENGTH", value
            ):
                return f"KEY_LENGTH {value} refused"
        else:
            return f"attribute {kind} incompatible"
    if life_type is not None and not _life_ok(conf, section, life_type, None):
        return "lifetime type refused"
    for tag in ("ENCRYPTION_ALGORITHM", "HASH_ALGORITHM", "AUTHENTICATION_METHOD",
                "GROUP_DESCRIPTION", "KEY_LENGTH"):
        if tag not in seen and conf.get_str(section, tag) is not None:
            return f"leftover tag {tag}"
    return None


def choice_of(t: Transform) -> Phase1Choice:
    """Read the negotiated values out of an accepted Phase 1 transform."""
    seconds, kbytes = _durations(t, IkeAttr.LIFE_TYPE, IkeAttr.LIFE_DURATION)
    values = {a.type: a.as_int() for a in t.attributes
              if a.type not in (IkeAttr.LIFE_TYPE, IkeAttr.LIFE_DURATION)}
    enc = values.get(IkeAttr.ENCRYPTION_ALGORITHM, 0)
    try:
        key_length = negotiated_key_length(enc, values.get(IkeAttr.KEY_LENGTH))
    except CipherError as e:
        raise ExchangeError(NotifyType.ATTRIBUTES_NOT_SUPPORTED, str(e)) from None
    return Phase1Choice(
        t, enc, key_length, values.get(IkeAttr.HASH_ALGORITHM, 0),
        values.get(IkeAttr.AUTHENTICATION_METHOD, 0), values.get(IkeAttr.GROUP_DESCRIPTION, 0),
        seconds, kbytes,
    )


def phase1_select(
    conf: Conf, configuration: str, proposals: Sequence[Proposal], received: bytes = b""
) -> tuple[Proposal, Phase1Choice]:
    """The responder's choice: the first peer transform one configured transform accepts.

    ``received`` is the SA payload body the proposals were decoded from, when there is one:
    the choice depends on nothing else (and the configuration), so it keys the memo as is,
    without reading every attribute back into a key."""
    if len(proposals) != 1:
        raise ExchangeError(NotifyType.PAYLOAD_MALFORMED,
                            f"{len(proposals)} proposals in a Phase 1 SA payload")
    prop = proposals[0]
    if prop.protocol != _ISAKMP:
        raise ExchangeError(NotifyType.INVALID_PROTOCOL_ID, f"Phase 1 protocol {prop.protocol}")
    memo = getattr(conf, "derived", None)
    key: tuple[object, ...] = (configuration, received) if received else (
        configuration, tuple((t.number, int(t.transform_id), int_pairs(t.attributes))
                             for t in prop.transforms))
    if memo is not None and key in memo:
        index, choice = memo[key]
        t = prop.transforms[index]
        # the memoised choice with this payload's transform (the first field; _replace would
        # take twice as long)
        return (Proposal(prop.number, _ISAKMP, prop.spi, [t.echo()]),
                Phase1Choice(t, *choice[1:]))
    names = conf.get_list(configuration, "Transforms")
    reasons: list[str] = []
    for index, t in enumerate(prop.transforms):
        if t.transform_id != KEY_IKE:
            reasons.append(f"transform {t.number}: id {t.transform_id}")
            continue
        for name in names:
            why = _phase1_accepts(conf, name, t)
            if why is None:
                try:
                    choice = choice_of(t)
                except ExchangeError as e:
                    reasons.append(f"transform {t.number}: {e.reason}")
                    continue
                if memo is not None:
                    memo[key] = (index, choice)
                return Proposal(prop.number, ProtocolId.ISAKMP, prop.spi, [t.echo()]), choice
            reasons.append(f"transform {t.number} vs [{name}]: {why}")
    raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN,
                        "no acceptable Phase 1 transform (" + "; ".join(reasons[-4:]) + ")")


# ---------------------------------------------------------------- Phase 2

_PROTO_ENUMS: dict[int, type[TolerantIntEnum]] = {
    ProtocolId.IPSEC_AH: AhTransformId,
    ProtocolId.IPSEC_ESP: EspTransformId,
    ProtocolId.IPCOMP: IpcompTransformId,
}
_ESP_KEYS: dict[int, tuple[int, int]] = {
    # transform id: (default key bytes, extra salt/nonce bytes)
    EspTransformId.TRIPLEDES: (24, 0),
    EspTransformId.CAST: (16, 0),
    EspTransformId.BLOWFISH: (16, 0),
    EspTransformId.NULL: (0, 0),
    EspTransformId.AES: (16, 0),
    EspTransformId.AES_CTR: (16, 4),
    EspTransformId.AES_GCM_16: (16, 4),
    EspTransformId.AES_GMAC: (16, 4),
}
_AUTH_KEYS: dict[int, int] = {
    AuthAlgorithm.HMAC_MD5: 16, AuthAlgorithm.HMAC_SHA: 20, AuthAlgorithm.HMAC_SHA2_256: 32,
    AuthAlgorithm.HMAC_SHA2_384: 48, AuthAlgorithm.HMAC_SHA2_512: 64,
    AuthAlgorithm.HMAC_RIPEMD: 20,
}
_AH_TRANSFORMS = {
    AhTransformId.MD5: AuthAlgorithm.HMAC_MD5, AhTransformId.SHA: AuthAlgorithm.HMAC_SHA,
    AhTransformId.SHA2_256: AuthAlgorithm.HMAC_SHA2_256,
    AhTransformId.SHA2_384: AuthAlgorithm.HMAC_SHA2_384,
    AhTransformId.SHA2_512: AuthAlgorithm.HMAC_SHA2_512,
    AhTransformId.RIPEMD: AuthAlgorithm.HMAC_RIPEMD,
}
_VARIABLE_KEYS = frozenset({EspTransformId.AES, EspTransformId.AES_CTR,
                            EspTransformId.AES_GCM_16, EspTransformId.AES_GMAC,
                            EspTransformId.BLOWFISH, EspTransformId.CAST})


def phase2_transform(conf: Conf, section: str, protocol: int, number: int) -> Transform:
    """One IPsec-transform section as a TRANSFORM payload (isakmpd's attribute order)."""
    enum_cls = _PROTO_ENUMS.get(protocol, EspTransformId)
    tid_name = conf.get_str(section, "TRANSFORM_ID")
    if tid_name is None:
        raise ExchangeError(NotifyType.BAD_PROPOSAL_SYNTAX, f"[{section}] has no TRANSFORM_ID")
    tid = _const(enum_cls, tid_name, section)
    attrs = _life_attrs(conf, section, IpsecAttr.SA_LIFE_TYPE, IpsecAttr.SA_LIFE_DURATION)
    encap = conf.get_str(section, "ENCAPSULATION_MODE")
    if encap is not None:
        attrs.append(Attribute(IpsecAttr.ENCAPSULATION_MODE,
                               _const(EncapsulationMode, encap, section)))
    auth = conf.get_str(section, "AUTHENTICATION_ALGORITHM")
    if auth is not None:
        attrs.append(Attribute(IpsecAttr.AUTHENTICATION_ALGORITHM,
                               _const(AuthAlgorithm, auth, section)))
    group = conf.get_str(section, "GROUP_DESCRIPTION")
    if group is not None:
        attrs.append(Attribute(IpsecAttr.GROUP_DESCRIPTION, _const(IkeGroupDesc, group, section)))
    for tag, attr in (("KEY_LENGTH", IpsecAttr.KEY_LENGTH), ("KEY_ROUNDS", IpsecAttr.KEY_ROUNDS),
                      ("ECN_TUNNEL", IpsecAttr.ECN_TUNNEL),
                      ("COMPRESS_DICTIONARY_SIZE", IpsecAttr.COMPRESS_DICTIONARY_SIZE),
                      ("COMPRESS_PRIVATE_ALGORITHM", IpsecAttr.COMPRESS_PRIVATE_ALGORITHM)):
        value = conf.get_str(section, tag)
        if value is not None and value.upper() != "ANY":
            attrs.append(Attribute.make(attr, _offer(value)))
    return Transform(number, tid, attrs)


def phase2_proposals(
    conf: Conf, configuration: str, get_spi: Callable[[int], bytes]
) -> tuple[list[Proposal], int]:
    """All proposal payloads of a connection, and the PFS group (0: none).

    ``get_spi(protocol)`` reserves an inbound SPI per proposal payload.
    """
    proposals: list[Proposal] = []
    groups: set[int] = set()
    suites = conf.get_list(configuration, "Suites")
    if not suites:
        raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN, f"[{configuration}] has no Suites")
    for index, suite in enumerate(suites):
        for proto_section in conf.get_list(suite, "Protocols"):
            pname = conf.get_str(proto_section, "PROTOCOL_ID") or ""
            protocol = _const(ProtocolId, pname, proto_section)
            transforms = [
                phase2_transform(conf, xf, protocol, n)
                for n, xf in enumerate(conf.get_list(proto_section, "Transforms"), start=1)
            ]
            for t in transforms:
                for a in t.attributes:
                    if a.type == IpsecAttr.GROUP_DESCRIPTION:
                        groups.add(a.as_int())
            proposals.append(Proposal(index + 1, ProtocolId(protocol), get_spi(protocol),
                                      transforms))
    if len(groups) > 1:
        raise ExchangeError(NotifyType.BAD_PROPOSAL_SYNTAX, "differing group descriptions")
    has_group = [any(a.type == IpsecAttr.GROUP_DESCRIPTION for a in t.attributes)
                 for p in proposals for t in p.transforms]
    if groups and not all(has_group):
        raise ExchangeError(NotifyType.BAD_PROPOSAL_SYNTAX, "PFS and non-PFS transforms mixed")
    return proposals, groups.pop() if groups else 0


@dataclass(slots=True)
class IpsecValues:
    """An IPsec transform's attributes read once: Quick Mode consults them several times
    (support check, policy, key sizes, lifetimes) and each read would redo the same walk."""

    pairs: tuple[tuple[int, int], ...]
    """Every attribute as (type, integer value), in the order received."""
    values: dict[int, int]
    """The attributes by type, lifetimes left out (the last of a type wins)."""
    seconds: int
    """SA lifetime in seconds (0: unset)."""
    kbytes: int
    """SA lifetime in kilobytes (0: unset)."""


def ipsec_values(t: Transform) -> IpsecValues:
    """Read an IPsec transform's attributes in one pass."""
    pairs = int_pairs(t.attributes)
    values: dict[int, int] = {}
    life_type = seconds = kbytes = 0
    for kind, value in pairs:
        if kind == IpsecAttr.SA_LIFE_TYPE:
            life_type = value
        elif kind == IpsecAttr.SA_LIFE_DURATION:
            if life_type == IpsecDuration.SECONDS:
                seconds = value
            elif life_type == IpsecDuration.KILOBYTES:
                kbytes = value
        else:
            values[kind] = value
    return IpsecValues(pairs, values, seconds, kbytes)


#: ipsec_values and phase2_supported of the transforms already read, by (protocol, body as
#: received, PFS group): both depend on nothing else, and the same offer recurs on every Quick
#: Mode of a peer.  Bounded, as the peer chooses the bytes.
_CHECKED: dict[tuple[int, bytes, int], tuple[IpsecValues, str | None]] = {}
_CHECKED_MAX = 256


def check_transform(protocol: int, t: Transform, pfs_group: int
                    ) -> tuple[IpsecValues, str | None]:
    """A received IPsec transform read once (ipsec_values) and whether we support it
    (phase2_supported), remembered for a transform decoded from the same bytes; the
    IpsecValues returned is shared and must not be changed."""
    key = (protocol, t.received, pfs_group)
    if t.received:
        done = _CHECKED.get(key)
        if done is not None:
            return done
    read = ipsec_values(t)
    done = read, phase2_supported(protocol, t, read.values, pfs_group)
    if t.received and len(_CHECKED) < _CHECKED_MAX:
        _CHECKED[key] = done
    return done


def phase2_keysizes(protocol: int, transform_id: int, values: dict[int, int]
                    ) -> tuple[int, int]:
    """(encryption key bytes, authentication key bytes) of KEYMAT for this transform
    (``values``: its IpsecValues.values)."""
    auth = values.get(_AUTHENTICATION_ALGORITHM)
    if protocol == _IPSEC_AH:
        alg = auth if auth is not None else _AH_TRANSFORMS.get(AhTransformId(transform_id), 0)
        return 0, _AUTH_KEYS.get(alg, 0)
    if protocol == _IPCOMP:
        return 0, 0
    default, extra = _ESP_KEYS.get(transform_id, (0, 0))
    bits = values.get(_KEY_LENGTH)
    enc = (bits // 8 if bits else default) + extra
    return enc, _AUTH_KEYS.get(auth, 0) if auth is not None else 0


def phase2_supported(protocol: int, t: Transform, values: dict[int, int],
                     pfs_group: int) -> str | None:
    """None when the kernel side can carry this transform, else why not (isakmpd's
    "compatible" check: known ids, key length in range, group equal to the KE's);
    ``values``: its IpsecValues.values."""
    auth = values.get(IpsecAttr.AUTHENTICATION_ALGORITHM)
    group = values.get(IpsecAttr.GROUP_DESCRIPTION, 0)
    if group != pfs_group:
        return f"group {group} without matching KE ({pfs_group})"
    if auth is not None and auth not in _AUTH_KEYS:  # IntEnum keys hash as their int
        return f"authentication algorithm {auth}"
    encap = values.get(IpsecAttr.ENCAPSULATION_MODE, EncapsulationMode.TUNNEL)
    if encap not in (1, 2, 3, 4, 61443, 61444):
        return f"encapsulation {encap}"
    if protocol == ProtocolId.IPSEC_ESP:
        if t.transform_id not in _ESP_KEYS:
            return f"ESP transform {t.transform_id}"
        bits = values.get(IpsecAttr.KEY_LENGTH)
        if bits is not None:
            if t.transform_id not in _VARIABLE_KEYS or bits % 8:
                return f"key length {bits}"
            aes = t.transform_id != EspTransformId.BLOWFISH and t.transform_id != 6
            if aes and bits not in (128, 192, 256):
                return f"key length {bits}"
        if t.transform_id in (EspTransformId.AES_GCM_16, EspTransformId.AES_GMAC):
            return None if auth is None else "combined mode with an auth algorithm"
        if auth is None and t.transform_id == EspTransformId.NULL:
            return "NULL without authentication"
        return None
    if protocol == ProtocolId.IPSEC_AH:
        return None if AhTransformId(t.transform_id) in _AH_TRANSFORMS else "AH transform"
    if protocol == ProtocolId.IPCOMP:
        return None if t.transform_id == IpcompTransformId.DEFLATE else "IPComp transform"
    return f"protocol {protocol}"

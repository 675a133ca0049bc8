"""isakmpd's stateless payload checks (message.c message_validate_*, ipsec.c ipsec_validate_*).

The codec only guarantees a well-formed message; these are the further checks
isakmpd runs on every decoded (and decrypted) message before its exchange
code sees it, each answered with the notify isakmpd sends.  The engine calls
``validate_payloads(msg, phase)`` once per message.  Checks that need state
(cookies, an authenticated DELETE, the exchange's DOI) stay in the engine.
"""

from __future__ import annotations

from ike.doi.constants import IdType, ProtocolId, transform_id
from ike.doi.ident import parse_id
from ike.wire.constants import CertEncoding, NotifyType
from ike.wire.errors import WireError
from ike.wire.message import Message
from ike.wire.payloads import (
    Certificate,
    CertificateRequest,
    Identification,
    NatD,
    Proposal,
    SecurityAssociation,
    VendorId,
)

#: First certificate encoding RFC 2408 3.9 leaves reserved (isakmpd ISAKMP_CERTENC_RESERVED_MIN).
CERT_ENCODING_RESERVED_MIN = 11
_VALID_PROTOCOLS = (ProtocolId.ISAKMP, ProtocolId.IPSEC_AH, ProtocolId.IPSEC_ESP, ProtocolId.IPCOMP)


def _check_proposals(sa: SecurityAssociation) -> None:
    last_prop = 0
    for prop in sa.proposals:
        if prop.protocol not in _VALID_PROTOCOLS:
            raise WireError(
                NotifyType.INVALID_PROTOCOL_ID, f"proposal #{prop.number}: protocol {prop.protocol}"
            )
        if prop.number < last_prop:
            raise WireError(
                NotifyType.BAD_PROPOSAL_SYNTAX,
                f"proposal #{prop.number} after #{last_prop}: numbers must not decrease",
            )
        last_prop = prop.number
        _check_transforms(prop)


def _check_transforms(prop: Proposal) -> None:
    last_xf = -1
    for xf in prop.transforms:
        tid = transform_id(prop.protocol, xf.transform_id)
        if tid == 0 or not getattr(tid, "known", False):
            raise WireError(
                NotifyType.INVALID_TRANSFORM_ID,
                f"proposal #{prop.number} ({ProtocolId.of(prop.protocol).name}): "
                f"transform id {int(xf.transform_id)}",
            )
        if xf.number <= last_xf:
            raise WireError(
                NotifyType.BAD_PROPOSAL_SYNTAX,
                f"proposal #{prop.number}: transform #{xf.number} after #{last_xf}",
            )
        last_xf = xf.number


def validate_payloads(msg: Message, phase: int) -> None:
    """Raise WireError with isakmpd's notify for the first payload its checks reject.

    - SA: a protocol other than ISAKMP/AH/ESP/IPCOMP is INVALID_PROTOCOL_ID; an
      unknown transform id for the proposal's protocol is INVALID_TRANSFORM_ID;
      decreasing proposal numbers or non-increasing transform numbers are
      BAD_PROPOSAL_SYNTAX.
    - CERT / CERT_REQ with a reserved encoding: INVALID_CERT_ENCODING.
    - VENDOR outside phase 1: INVALID_PAYLOAD_TYPE; NAT-D outside phase 1:
      PAYLOAD_MALFORMED.
    - ID: a type outside 1..11, or data that does not fit its type:
      INVALID_ID_INFORMATION.
    """
    for p in msg.payloads:
        if isinstance(p, SecurityAssociation):
            _check_proposals(p)
        elif isinstance(p, Certificate | CertificateRequest):
            enc = p.encoding if isinstance(p, Certificate) else p.cert_type
            if enc >= CERT_ENCODING_RESERVED_MIN:
                raise WireError(
                    NotifyType.INVALID_CERT_ENCODING,
                    f"{p.payload_type.name}: encoding {CertEncoding.of(enc).name}",
                )
        elif isinstance(p, VendorId) and phase != 1:
            raise WireError(NotifyType.INVALID_PAYLOAD_TYPE, "VENDOR payload in phase 2")
        elif isinstance(p, NatD) and phase != 1:
            raise WireError(NotifyType.PAYLOAD_MALFORMED, "NAT-D payload in phase 2")
        elif isinstance(p, Identification):
            if not IdType.IPV4_ADDR <= p.id_type <= IdType.KEY_ID:
                raise WireError(
                    NotifyType.INVALID_ID_INFORMATION, f"ID type {int(p.id_type)} is not defined"
                )
            parse_id(p)

"""isakmpd's stateless payload checks (ike.doi.validate) and the notify each one answers with."""

from __future__ import annotations

from pathlib import Path

import pytest

from ike.doi.constants import EspTransformId, IdType, IsakmpTransformId, ProtocolId
from ike.doi.validate import validate_payloads
from ike.wire import (
    CertEncoding,
    Certificate,
    CertificateRequest,
    ExchangeType,
    Identification,
    Message,
    NatD,
    NotifyType,
    Payload,
    Proposal,
    SecurityAssociation,
    Transform,
    VendorId,
    WireError,
)
from ike.wire.pcap import read_datagrams

ICKY = b"\x01" * 8


def _msg(*payloads: Payload) -> Message:
    return Message(ICKY, payloads=list(payloads))


def _sa(*props: Proposal) -> SecurityAssociation:
    return SecurityAssociation(list(props))


def _esp(number: int, *xfs: tuple[int, int]) -> Proposal:
    return Proposal(
        number, ProtocolId.IPSEC_ESP, b"\0\0\0\1", [Transform(n, t) for n, t in xfs]
    )


def _rejects(msg: Message, notify: NotifyType, phase: int = 2) -> None:
    with pytest.raises(WireError) as info:
        validate_payloads(msg, phase)
    assert info.value.notify is notify, str(info.value)


def test_good_quick_mode_sa_passes() -> None:
    sa = _sa(
        _esp(1, (1, EspTransformId.AES), (2, EspTransformId.TRIPLEDES)),
        _esp(2, (1, EspTransformId.AES_GCM_16)),
    )
    validate_payloads(_msg(sa, Identification(IdType.IPV4_ADDR, b"\x0a\0\0\1")), 2)


def test_proposal_numbers_must_not_decrease() -> None:
    sa = _sa(_esp(2, (1, EspTransformId.AES)), _esp(1, (1, EspTransformId.AES)))
    _rejects(_msg(sa), NotifyType.BAD_PROPOSAL_SYNTAX)


def test_transform_numbers_must_increase() -> None:
    sa = _sa(_esp(1, (2, EspTransformId.AES), (2, EspTransformId.TRIPLEDES)))
    _rejects(_msg(sa), NotifyType.BAD_PROPOSAL_SYNTAX)


def test_unknown_protocol_and_transform_ids() -> None:
    _rejects(_msg(_sa(Proposal(1, ProtocolId.of(9), b"", []))), NotifyType.INVALID_PROTOCOL_ID)
    _rejects(_msg(_sa(_esp(1, (1, 200)))), NotifyType.INVALID_TRANSFORM_ID)
    _rejects(_msg(_sa(_esp(1, (1, 0)))), NotifyType.INVALID_TRANSFORM_ID)
    ike = Proposal(1, ProtocolId.ISAKMP, b"", [Transform(0, 2)])
    _rejects(_msg(_sa(ike)), NotifyType.INVALID_TRANSFORM_ID, phase=1)
    ike.transforms[0].transform_id = IsakmpTransformId.KEY_IKE
    validate_payloads(_msg(_sa(ike)), 1)


def test_reserved_certificate_encodings() -> None:
    _rejects(_msg(Certificate(CertEncoding.of(11), b"")), NotifyType.INVALID_CERT_ENCODING)
    _rejects(_msg(CertificateRequest(CertEncoding.of(200))), NotifyType.INVALID_CERT_ENCODING)
    validate_payloads(_msg(CertificateRequest(CertEncoding.X509_SIG)), 1)


def test_phase_1_only_payloads() -> None:
    _rejects(_msg(VendorId(b"v")), NotifyType.INVALID_PAYLOAD_TYPE, phase=2)
    _rejects(_msg(NatD(b"d")), NotifyType.PAYLOAD_MALFORMED, phase=2)
    validate_payloads(_msg(VendorId(b"v"), NatD(b"d")), 1)


def test_id_information() -> None:
    _rejects(_msg(Identification(IdType.of(12), b"")), NotifyType.INVALID_ID_INFORMATION)
    _rejects(_msg(Identification(IdType.IPV4_ADDR, b"\0")), NotifyType.INVALID_ID_INFORMATION)


def test_every_captured_cleartext_message_passes() -> None:
    for path in sorted((Path(__file__).parent / "captures").glob("*.pcap")):
        with path.open("rb") as f:
            for d in read_datagrams(f):
                msg = Message.decode(d.payload)
                phase = 1 if msg.exchange_type is not ExchangeType.QUICK_MODE else 2
                validate_payloads(msg, phase)

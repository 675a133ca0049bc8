"""The `def-i.1` Main Mode message 1 of isakmpd's old exchange regress.

Source: OpenBSD regress/sbin/isakmpd/exchange/def-i.1 as described in
reference/isakmpd.md 8.1: 72 bytes, ICOOKIE 95fe0454a911bae7, next payload SA,
version 0x10, exchange 2; SA DOI 1 SIT 1; proposal #1 ISAKMP with one
transform; transform #1 KEY_IKE with ENC=DES, HASH=MD5, AUTH=PSK, GROUP=MODP768.
The bytes below are that layout written out field by field.
"""

from __future__ import annotations

from ike.doi.constants import (
    IkeAttr,
    IkeAuth,
    IkeEncrypt,
    IkeGroupDesc,
    IkeHash,
    IsakmpTransformId,
    ProtocolId,
    Situation,
)
from ike.wire import (
    Attribute,
    Doi,
    ExchangeType,
    Flags,
    Message,
    PayloadType,
    Proposal,
    SecurityAssociation,
    Transform,
)

DEF_I_1 = bytes.fromhex(
    "95fe0454a911bae7"  # initiator cookie
    "0000000000000000"  # responder cookie
    "01"  # next payload: SA
    "10"  # version 1.0
    "02"  # exchange: ID_PROT (Main Mode)
    "00"  # flags
    "00000000"  # message id
    "00000048"  # length 72
    "0000002c"  # SA: next NONE, length 44
    "00000001"  # DOI IPSEC
    "00000001"  # situation IDENTITY_ONLY
    "00000020"  # proposal: next NONE, length 32
    "01010001"  # proposal #1, PROTO_ISAKMP, SPI size 0, 1 transform
    "00000018"  # transform: next NONE, length 24
    "01010000"  # transform #1, KEY_IKE, reserved
    "80010001"  # ENCRYPTION_ALGORITHM = DES_CBC
    "80020001"  # HASH_ALGORITHM = MD5
    "80030001"  # AUTHENTICATION_METHOD = PRE_SHARED
    "80040001"  # GROUP_DESCRIPTION = MODP_768
)
DEF_R_1_RCOOKIE = bytes.fromhex("156cf06a16bb1eb0")


def _expected() -> Message:
    attrs = [
        Attribute(IkeAttr.ENCRYPTION_ALGORITHM, IkeEncrypt.DES_CBC),
        Attribute(IkeAttr.HASH_ALGORITHM, IkeHash.MD5),
        Attribute(IkeAttr.AUTHENTICATION_METHOD, IkeAuth.PRE_SHARED),
        Attribute(IkeAttr.GROUP_DESCRIPTION, IkeGroupDesc.MODP_768),
    ]
    xf = Transform(1, IsakmpTransformId.KEY_IKE, attrs)
    sa = SecurityAssociation([Proposal(1, ProtocolId.ISAKMP, b"", [xf])])
    return Message(bytes.fromhex("95fe0454a911bae7"), payloads=[sa])


def test_def_i1_decodes_to_its_documented_fields() -> None:
    assert len(DEF_I_1) == 72
    msg = Message.decode(DEF_I_1)
    assert msg.icookie.hex() == "95fe0454a911bae7"
    assert msg.rcookie == bytes(8)
    assert msg.exchange_type is ExchangeType.ID_PROT
    assert msg.flags == Flags.NONE
    assert msg.payload_types() == [PayloadType.SA]
    sa = msg.get(SecurityAssociation)
    assert sa is not None
    assert sa.doi is Doi.IPSEC and sa.situation == Situation.IDENTITY_ONLY
    (prop,) = sa.proposals
    assert (prop.number, prop.protocol, prop.spi) == (1, ProtocolId.ISAKMP, b"")
    (xf,) = prop.transforms
    assert xf.transform_id is IsakmpTransformId.KEY_IKE
    assert [(a.type, a.value) for a in xf.attributes] == [(1, 1), (2, 1), (3, 1), (4, 1)]
    assert msg == _expected()


def test_def_i1_encodes_byte_for_byte() -> None:
    assert _expected().encode() == DEF_I_1
    assert Message.decode(DEF_I_1).encode() == DEF_I_1


def test_def_r1_is_def_i1_with_the_responder_cookie() -> None:
    msg = _expected()
    msg.rcookie = DEF_R_1_RCOOKIE
    data = msg.encode()
    assert data[:8] == DEF_I_1[:8] and data[8:16] == DEF_R_1_RCOOKIE
    assert data[16:] == DEF_I_1[16:]


def test_summary_names_the_exchange_and_payloads() -> None:
    msg = Message.decode(DEF_I_1)
    assert msg.summary() == "ID_PROT 95fe0454a911bae7:0000000000000000 msgid 00000000 [ SA ]"

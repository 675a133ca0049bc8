"""Byte-level vectors for each payload, written out field by field from RFC 2408 section 3,
RFC 2407 4.6 (IPsec DOI SA/ID/notify), RFC 3947 5 (NAT-D/NAT-OA) and the mode-config draft.
"""

from __future__ import annotations

import pytest

from ike.doi.constants import (
    AuthAlgorithm,
    EncapsulationMode,
    EspTransformId,
    IdType,
    IpsecAttr,
    IpsecDuration,
    ProtocolId,
)
from ike.wire import (
    Attribute,
    AttributePayload,
    CertEncoding,
    Certificate,
    CertificateRequest,
    CfgAttr,
    CfgType,
    Delete,
    Doi,
    Hash,
    Identification,
    KeyExchange,
    NatD,
    NatOA,
    Nonce,
    Notify,
    NotifyType,
    Payload,
    PayloadType,
    Proposal,
    SecurityAssociation,
    Signature,
    Transform,
    VendorId,
    decode_payloads,
    encode_payloads,
)

COOKIES = bytes.fromhex("0011223344556677" "8899aabbccddeeff")

ESP_SA = SecurityAssociation(
    [
        Proposal(
            1,
            ProtocolId.IPSEC_ESP,
            bytes.fromhex("c0ffee01"),
            [
                Transform(
                    1,
                    EspTransformId.AES,
                    [
                        Attribute(IpsecAttr.SA_LIFE_TYPE, IpsecDuration.SECONDS),
                        Attribute.make(IpsecAttr.SA_LIFE_DURATION, 86400),
                        Attribute(IpsecAttr.ENCAPSULATION_MODE, EncapsulationMode.TUNNEL),
                        Attribute(IpsecAttr.AUTHENTICATION_ALGORITHM, AuthAlgorithm.HMAC_SHA),
                        Attribute(IpsecAttr.KEY_LENGTH, 128),
                    ],
                )
            ],
        )
    ]
)
ESP_SA_HEX = (
    "00000038"  # generic header: length 56
    "00000001" "00000001"  # DOI IPSEC, SIT_IDENTITY_ONLY
    "0000002c"  # proposal header: last, length 44
    "01030401" "c0ffee01"  # #1, PROTO_IPSEC_ESP, SPI size 4, 1 transform, SPI
    "00000020"  # transform header: last, length 32
    "010c0000"  # #1, ESP_AES, reserved
    "80010001"  # SA_LIFE_TYPE = SECONDS (TV)
    "0002000400015180"  # SA_LIFE_DURATION = 86400 (TLV, 4 bytes)
    "80040001"  # ENCAPSULATION_MODE = TUNNEL
    "80050002"  # AUTHENTICATION_ALGORITHM = HMAC_SHA
    "80060080"  # KEY_LENGTH = 128
)  # fmt: skip

VECTORS: list[tuple[str, Payload, str]] = [
    ("esp-sa", ESP_SA, ESP_SA_HEX),
    ("ke", KeyExchange(bytes.fromhex("0102030405")), "000000090102030405"),
    (
        "id-fqdn-udp-500",
        Identification(IdType.FQDN, b"a.b", 17, 500),
        "0000000b" "021101f4" "612e62",
    ),
    (
        "id-ipv4-subnet",
        Identification(IdType.IPV4_ADDR_SUBNET, bytes.fromhex("0a000000ffffff00")),
        "00000010" "04000000" "0a000000ffffff00",
    ),
    ("cert-x509", Certificate(CertEncoding.X509_SIG, b"\x30\x00"), "00000007" "04" "3000"),
    ("certreq-any-ca", CertificateRequest(CertEncoding.X509_SIG), "00000005" "04"),
    ("hash", Hash(b"\xaa" * 4), "00000008aaaaaaaa"),
    ("sig", Signature(b"\xbb" * 2), "00000006bbbb"),
    ("nonce", Nonce(b"\xcc" * 3), "00000007cccccc"),
    (
        "notify-initial-contact",
        Notify(NotifyType.INITIAL_CONTACT, ProtocolId.ISAKMP, COOKIES),
        "0000001c" "00000001" "01" "10" "6002" + COOKIES.hex(),
    ),
    (
        "notify-r-u-there",
        Notify(NotifyType.R_U_THERE, ProtocolId.ISAKMP, COOKIES, bytes.fromhex("00001234")),
        "00000020" "00000001" "01" "10" "8d28" + COOKIES.hex() + "00001234",
    ),
    (
        "notify-no-proposal-isakmp-doi",
        Notify(NotifyType.NO_PROPOSAL_CHOSEN, ProtocolId.ISAKMP, doi=Doi.ISAKMP),
        "0000000c" "00000000" "01" "00" "000e",
    ),
    (
        "delete-esp",
        Delete(ProtocolId.IPSEC_ESP, [bytes.fromhex("11111111"), bytes.fromhex("22222222")]),
        "00000014" "00000001" "03" "04" "0002" "11111111" "22222222",
    ),
    (
        "delete-isakmp",
        Delete(ProtocolId.ISAKMP, [COOKIES], spi_size=16),
        "0000001c" "00000001" "01" "10" "0001" + COOKIES.hex(),
    ),
    ("vendor", VendorId(bytes.fromhex("afcad713")), "00000008afcad713"),
    (
        "mode-cfg-reply",
        AttributePayload(
            CfgType.CFG_REPLY,
            0x1234,
            [
                Attribute(CfgAttr.INTERNAL_IP4_ADDRESS, bytes.fromhex("0a000005")),
                Attribute(CfgAttr.XAUTH_STATUS, 1),
            ],
        ),
        "00000014" "02001234" "000100040a000005" "c08f0001",
    ),
    ("nat-d", NatD(b"\xdd" * 4), "00000008dddddddd"),
    (
        "nat-oa",
        NatOA(IdType.IPV4_ADDR, bytes.fromhex("c0a8010a")),
        "0000000c" "01000000" "c0a8010a",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("name", "payload", "hexdata"), VECTORS, ids=[v[0] for v in VECTORS])
def test_payload_vector(name: str, payload: Payload, hexdata: str) -> None:
    first, data = encode_payloads([payload])
    assert first is payload.payload_type
    assert data.hex() == hexdata, name
    assert decode_payloads(first, data) == [payload]


def test_chain_links_next_payload_fields() -> None:
    chain: list[Payload] = [Hash(b"\x01"), ESP_SA, Nonce(b"\x02"), NatD(b"\x03", draft=True)]
    first, data = encode_payloads(chain)
    assert first is PayloadType.HASH
    expected = (
        "01000005" "01"  # HASH, next SA
        "0a" + ESP_SA_HEX[2:] +  # SA, next NONCE
        "82000005" "02"  # NONCE, next NAT-D draft (130)
        "00000005" "03"  # NAT-D draft, last
    )  # fmt: skip
    assert data.hex() == expected
    assert decode_payloads(first, data) == chain


def test_draft_and_rfc_nat_payload_numbers() -> None:
    assert NatD(b"", draft=True).payload_type is PayloadType.NAT_D_DRAFT
    assert NatOA(IdType.IPV6_ADDR, bytes(16), draft=True).payload_type is PayloadType.NAT_OA_DRAFT
    draft = decode_payloads(131, bytes.fromhex("00000018" "05000000") + bytes(16))
    assert draft == [NatOA(IdType.IPV6_ADDR, bytes(16), draft=True)]

"""IPsec DOI ID payloads (RFC 2407 4.6.2): build, parse, format, bad lengths."""

from __future__ import annotations

import ipaddress

import pytest

from ike.doi.constants import IdType
from ike.doi.ident import build_id, format_id, id_for_address, id_for_network, parse_id
from ike.wire import Identification, Message, NotifyType, WireError, decode_payloads

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address

CASES = [
    (IdType.IPV4_ADDR, V4("10.0.0.1"), "0a000001", "10.0.0.1"),
    (IdType.IPV6_ADDR, V6("2001:db8::1"), "20010db8" + "00" * 11 + "01", "2001:db8::1"),
    (
        IdType.IPV4_ADDR_SUBNET,
        ipaddress.IPv4Network("192.168.1.0/24"),
        "c0a80100ffffff00",
        "192.168.1.0/24",
    ),
    (
        IdType.IPV6_ADDR_SUBNET,
        ipaddress.IPv6Network("2001:db8::/32"),
        "20010db8" + "00" * 12 + "ffffffff" + "00" * 12,
        "2001:db8::/32",
    ),
    (IdType.IPV4_RANGE, (V4("10.0.0.1"), V4("10.0.0.9")), "0a0000010a000009", "10.0.0.1-10.0.0.9"),
    (IdType.FQDN, "gw.example.org", b"gw.example.org".hex(), "gw.example.org"),
    (IdType.USER_FQDN, "me@example.org", b"me@example.org".hex(), "me@example.org"),
    (IdType.DER_ASN1_DN, b"\x30\x00", "3000", "3000"),
    (IdType.KEY_ID, b"\x01\x02", "0102", "0102"),
]


@pytest.mark.parametrize(("kind", "value", "hexdata", "text"), CASES)
def test_build_parse_format(kind: IdType, value: object, hexdata: str, text: str) -> None:
    payload = build_id(kind, value, protocol=17, port=500)  # type: ignore[arg-type]
    assert payload.data.hex() == hexdata
    assert (payload.protocol, payload.port) == (17, 500)
    assert parse_id(payload) == value
    assert format_id(payload) == text
    body = payload.encode_body()
    assert body[:4] == bytes([kind, 17, 0x01, 0xF4])
    assert decode_payloads(5, b"\x00\x00" + (len(body) + 4).to_bytes(2, "big") + body) == [
        payload
    ]


def test_address_and_network_helpers_pick_the_family() -> None:
    assert id_for_address("10.1.2.3").id_type is IdType.IPV4_ADDR
    assert id_for_address("::1").id_type is IdType.IPV6_ADDR
    net = id_for_network("10.1.2.3/16")
    assert net.id_type is IdType.IPV4_ADDR_SUBNET and format_id(net) == "10.1.0.0/16"
    assert id_for_network("2001:db8::/64").id_type is IdType.IPV6_ADDR_SUBNET


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        (IdType.IPV4_ADDR, b"\x01\x02\x03"),
        (IdType.IPV6_ADDR, b"\x00" * 4),
        (IdType.IPV4_ADDR_SUBNET, b"\x0a\x00\x00\x00\xff\x00\xff\x00"),  # holes in the mask
        (IdType.IPV4_ADDR_SUBNET, b"\x0a\x00\x00\x00"),
        (IdType.IPV4_RANGE, b"\x0a\x00\x00\x09\x0a\x00\x00\x01"),  # backwards
        (IdType.IPV6_RANGE, b"\x00" * 16),
        (IdType.FQDN, b"\xff\xfe"),
    ],
)
def test_bad_id_data_is_invalid_id_information(kind: IdType, data: bytes) -> None:
    with pytest.raises(WireError) as info:
        parse_id(Identification(kind, data))
    assert info.value.notify is NotifyType.INVALID_ID_INFORMATION


def test_build_rejects_a_value_of_the_wrong_kind() -> None:
    with pytest.raises(WireError):
        build_id(IdType.IPV4_ADDR, "10.0.0.1")
    with pytest.raises(WireError):
        build_id(IdType.IPV4_ADDR, V6("::1"))
    with pytest.raises(WireError):
        build_id(IdType.FQDN, b"bytes")


def test_unknown_id_type_stays_bytes() -> None:
    payload = Identification(IdType(77), b"\x01")
    assert payload.id_type.name == "UNKNOWN_77" and parse_id(payload) == b"\x01"


def test_id_in_a_message_round_trips() -> None:
    msg = Message(b"\x01" * 8, payloads=[id_for_address("10.0.0.1", 17, 500)])
    assert Message.decode(msg.encode()) == msg

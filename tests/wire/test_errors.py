"""Bad datagrams raise WireError carrying the notify RFC 2408 5.1 / isakmpd answers with."""

from __future__ import annotations

import struct

import pytest

from ike.doi.constants import IkeAttr, IsakmpTransformId, ProtocolId
from ike.wire import (
    Attribute,
    Delete,
    Flags,
    Hash,
    Message,
    Nonce,
    NotifyType,
    PayloadType,
    Proposal,
    SecurityAssociation,
    Transform,
    UnknownPayload,
    VendorId,
    WireError,
    decode_header,
    decode_payloads,
)

ICKY = bytes.fromhex("0102030405060708")


def _mm1() -> bytes:
    xf = Transform(1, IsakmpTransformId.KEY_IKE, [Attribute(IkeAttr.ENCRYPTION_ALGORITHM, 7)])
    sa = SecurityAssociation([Proposal(1, ProtocolId.ISAKMP, b"", [xf])])
    return Message(ICKY, payloads=[sa, VendorId(b"v" * 16)]).encode()


def _raises(data: bytes, notify: NotifyType) -> WireError:
    with pytest.raises(WireError) as info:
        Message.decode(data)
    assert info.value.notify is notify, str(info.value)
    assert notify.name in str(info.value)
    return info.value


def _with_length(data: bytes) -> bytes:
    return data[:24] + struct.pack(">I", len(data)) + data[28:]


def test_short_datagram() -> None:
    _raises(b"\x00" * 27, NotifyType.UNEQUAL_PAYLOAD_LENGTHS)
    _raises(b"", NotifyType.UNEQUAL_PAYLOAD_LENGTHS)


def test_header_length_must_equal_datagram() -> None:
    data = _mm1()
    _raises(data + b"\x00", NotifyType.UNEQUAL_PAYLOAD_LENGTHS)
    _raises(data[:-1], NotifyType.UNEQUAL_PAYLOAD_LENGTHS)


def test_versions() -> None:
    data = bytearray(_mm1())
    data[17] = 0x20  # IKEv2
    _raises(bytes(data), NotifyType.INVALID_MAJOR_VERSION)
    data[17] = 0x11
    _raises(bytes(data), NotifyType.INVALID_MINOR_VERSION)


def test_undefined_flag_bits() -> None:
    data = bytearray(_mm1())
    data[19] = 0x08
    _raises(bytes(data), NotifyType.INVALID_FLAGS)


def test_header_alone_decodes() -> None:
    hdr = decode_header(_mm1())
    assert hdr.icookie == ICKY and hdr.next_payload is PayloadType.SA
    assert (hdr.major, hdr.minor, hdr.length) == (1, 0, len(_mm1()))


def test_reserved_next_payload_types() -> None:
    data = bytearray(_mm1())
    data[16] = 50
    _raises(bytes(data), NotifyType.INVALID_PAYLOAD_TYPE)
    data[16] = PayloadType.PROPOSAL  # only legal inside an SA
    _raises(bytes(data), NotifyType.INVALID_PAYLOAD_TYPE)


def test_generic_header_reserved_byte() -> None:
    data = bytearray(_mm1())
    data[29] = 1
    err = _raises(bytes(data), NotifyType.PAYLOAD_MALFORMED)
    assert "offset 0" in err.message


def test_payload_length_overruns_message() -> None:
    data = bytearray(_mm1())
    data[30:32] = struct.pack(">H", 0xFFF0)
    _raises(bytes(data), NotifyType.PAYLOAD_MALFORMED)
    data[30:32] = struct.pack(">H", 3)
    _raises(bytes(data), NotifyType.PAYLOAD_MALFORMED)


def test_chain_ends_before_its_next_payload() -> None:
    data = Message(ICKY, payloads=[Nonce(b"n" * 16)]).encode()
    data = data[:28] + bytes([PayloadType.HASH]) + data[29:]
    _raises(data, NotifyType.UNEQUAL_PAYLOAD_LENGTHS)


def test_proposal_count_mismatch_is_bad_proposal_syntax() -> None:
    data = bytearray(_mm1())
    # SA body: DOI(4) SIT(4) then proposal header(4) number proto spisize count
    data[28 + 4 + 8 + 4 + 3] = 2
    _raises(bytes(data), NotifyType.BAD_PROPOSAL_SYNTAX)


def test_transform_reserved_field() -> None:
    data = bytearray(_mm1())
    data[28 + 4 + 8 + 8 + 4 + 3] = 1
    _raises(bytes(data), NotifyType.PAYLOAD_MALFORMED)


def test_foreign_payload_inside_proposal_chain() -> None:
    data = bytearray(_mm1())
    data[28 + 4 + 8] = PayloadType.NONCE
    _raises(bytes(data), NotifyType.INVALID_PAYLOAD_TYPE)


def test_sa_doi_and_situation() -> None:
    data = bytearray(_mm1())
    data[35] = 0  # DOI 0
    _raises(bytes(data), NotifyType.DOI_NOT_SUPPORTED)
    data[35] = 1
    data[39] = 3  # IDENTITY_ONLY | SECRECY
    _raises(bytes(data), NotifyType.SITUATION_NOT_SUPPORTED)


def test_attribute_overrunning_its_transform() -> None:
    xf = Transform(1, 1, [Attribute(IkeAttr.LIFE_DURATION, b"\x00\x01\x51\x80")])
    sa = SecurityAssociation([Proposal(1, ProtocolId.ISAKMP, b"", [xf])])
    data = bytearray(Message(ICKY, payloads=[sa]).encode())
    data[-6] = 9  # TLV length 4 -> 0x0904
    _raises(bytes(data), NotifyType.PAYLOAD_MALFORMED)


def test_delete_spi_count_must_match() -> None:
    good = Message(ICKY, payloads=[Delete(ProtocolId.IPSEC_ESP, [b"abcd", b"efgh"])]).encode()
    bad = bytearray(good)
    bad[28 + 4 + 7] = 3
    _raises(bytes(bad), NotifyType.PAYLOAD_MALFORMED)


def test_notify_spi_size_beyond_payload() -> None:
    data = bytes.fromhex("0b000008" "00000001" "0110")  # NOTIFY, body cut after SPI size
    with pytest.raises(WireError) as info:
        decode_payloads(PayloadType.NOTIFY, data[:8] + b"\x01\x20\x00\x0e")
    assert info.value.notify is NotifyType.PAYLOAD_MALFORMED


def test_private_payloads_are_kept_opaque() -> None:
    msg = Message(ICKY, payloads=[UnknownPayload(200, b"opaque"), Hash(b"h" * 20)])
    data = msg.encode()
    back = Message.decode(data)
    assert back == msg and back.encode() == data
    assert back.payload_types() == [PayloadType(200), PayloadType.HASH]
    assert back.payload_types()[0].name == "UNKNOWN_200"


def test_encrypted_body_is_kept_and_decoded_later() -> None:
    inner = [Hash(b"h" * 20), Nonce(b"n" * 16)]
    from ike.wire import encode_payloads

    first, body = encode_payloads(inner)
    padded = body + bytes(7) + b"\x07"
    msg = Message(ICKY, ICKY, flags=Flags.ENC, ciphertext=padded, first_payload=first)
    data = msg.encode()
    back = Message.decode(data)
    assert back.is_encrypted and back.ciphertext == padded and back.payloads == []
    assert back.first_payload is PayloadType.HASH
    assert back.encode() == data
    clear = back.with_plaintext(padded)
    assert clear.payloads == inner and clear.trailer == bytes(7) + b"\x07"
    assert decode_payloads(first, padded) == inner


def test_encoding_impossible_values_raises_wire_error() -> None:
    with pytest.raises(WireError):
        Message(ICKY, payloads=[Nonce(b"x" * 70000)]).encode()
    with pytest.raises(WireError):
        Message(b"short", payloads=[]).encode()
    with pytest.raises(WireError):
        Attribute(1, 70000).encode()
    with pytest.raises(WireError):
        Attribute.make(1, -1)
    with pytest.raises(WireError):
        Delete(ProtocolId.IPSEC_ESP, [b"abc"]).encode_body()
    with pytest.raises(WireError):
        Message(ICKY, message_id=-1).encode()


def test_wire_error_is_readable() -> None:
    err = WireError(NotifyType.PAYLOAD_MALFORMED, "NONCE: too short")
    assert str(err) == "PAYLOAD_MALFORMED: NONCE: too short"
    assert "PAYLOAD_MALFORMED" in repr(err)

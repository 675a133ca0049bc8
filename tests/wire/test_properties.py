"""Hypothesis: any bytes give a Message or a WireError; every valid message round-trips."""

from __future__ import annotations

import struct
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ike.wire import (
    Attribute,
    AttributePayload,
    Certificate,
    CertificateRequest,
    Delete,
    Flags,
    Hash,
    Identification,
    KeyExchange,
    Message,
    NatD,
    NatOA,
    Nonce,
    Notify,
    Payload,
    Proposal,
    SecurityAssociation,
    Signature,
    Transform,
    UnknownPayload,
    VendorId,
    WireError,
    decode_payloads,
)
from ike.wire.pcap import read_datagrams

SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
small = st.binary(max_size=24)

attributes = st.lists(
    st.builds(Attribute, st.integers(0, 0x7FFF), st.one_of(u16, st.binary(max_size=12))),
    max_size=4,
)
transforms = st.builds(Transform, u8, u8, attributes)
proposals = st.builds(
    Proposal, u8, u8, st.binary(max_size=16), st.lists(transforms, min_size=0, max_size=3)
)
situations = u32.map(lambda s: s & ~6)  # SECRECY/INTEGRITY are not decoded
sas = st.builds(
    SecurityAssociation, st.lists(proposals, min_size=1, max_size=3), situations, st.just(1)
)
deletes = st.integers(0, 16).flatmap(
    lambda size: st.builds(
        Delete, u8, st.lists(st.binary(min_size=size, max_size=size), max_size=4),
        st.just(size), u32,
    )
)  # fmt: skip
unknown_types = st.one_of(st.integers(15, 19), st.integers(128, 255)).filter(
    lambda t: t not in (130, 131)
)
payloads: st.SearchStrategy[Payload] = st.one_of(
    sas,
    st.builds(KeyExchange, small),
    st.builds(Identification, u8, small, u8, u16),
    st.builds(Certificate, u8, small),
    st.builds(CertificateRequest, u8, small),
    st.builds(Hash, small),
    st.builds(Signature, small),
    st.builds(Nonce, small),
    st.builds(Notify, u16, u8, st.binary(max_size=16), small, u32),
    deletes,
    st.builds(VendorId, small),
    st.builds(AttributePayload, u8, u16, attributes),
    st.builds(NatD, small, st.booleans()),
    st.builds(NatOA, u8, small, st.booleans()),
    st.builds(UnknownPayload, unknown_types, small),
)
cookies = st.binary(min_size=8, max_size=8)
clear_messages = st.builds(
    Message,
    cookies,
    cookies,
    u8,
    st.integers(0, 7).map(lambda f: Flags(f & ~Flags.ENC)),
    u32,
    st.lists(payloads, max_size=6),
    st.just(0x10),
    st.binary(max_size=8),
)
encrypted_messages = st.builds(
    Message,
    cookies,
    cookies,
    u8,
    st.integers(0, 7).map(lambda f: Flags(f | Flags.ENC)),
    u32,
    st.just([]),
    st.just(0x10),
    st.just(b""),
    st.binary(max_size=64),
    u8,
)
messages = st.one_of(clear_messages, encrypted_messages)


@SETTINGS
@given(messages)
def test_valid_messages_round_trip(msg: Message) -> None:
    data = msg.encode()
    back = Message.decode(data)
    assert back == msg
    assert back.encode() == data


@SETTINGS
@given(st.binary(max_size=200))
def test_any_bytes_give_a_message_or_wire_error(data: bytes) -> None:
    try:
        msg = Message.decode(data)
    except WireError:
        return
    assert msg.encode() == data


def _header_for(body: bytes, first: int, flags: int) -> bytes:
    return struct.pack(">8s8sBBBBII", b"i" * 8, b"r" * 8, first, 0x10, 2, flags, 0, 28 + len(body))


@SETTINGS
@given(u8, st.binary(max_size=200))
def test_any_body_behind_a_good_header(first: int, body: bytes) -> None:
    data = _header_for(body, first, 0)
    try:
        msg = Message.decode(data)
    except WireError:
        return
    assert msg.encode() == data


@SETTINGS
@given(clear_messages, st.data())
def test_mutated_valid_messages_never_crash(msg: Message, data: st.DataObject) -> None:
    wire = bytearray(msg.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        if len(wire) <= 28:
            break
        pos = data.draw(st.integers(28, len(wire) - 1))
        wire[pos] = data.draw(u8)
    cut = data.draw(st.integers(28, len(wire)))
    mutated = bytes(wire[:cut])
    mutated = mutated[:24] + struct.pack(">I", len(mutated)) + mutated[28:]
    try:
        back = Message.decode(mutated)
    except WireError:
        return
    assert back.encode() == mutated


@SETTINGS
@given(u8, st.binary(max_size=120))
def test_decrypted_bodies_never_crash(first: int, body: bytes) -> None:
    try:
        decode_payloads(first, body)
    except WireError:
        pass


def _captured() -> list[bytes]:
    out: list[bytes] = []
    for path in sorted((Path(__file__).parent / "captures").glob("*.pcap")):
        with path.open("rb") as f:
            out += [d.payload for d in read_datagrams(f)]
    return out


CAPTURED = _captured()


@SETTINGS
@given(st.sampled_from(CAPTURED), st.data())
def test_mutated_peer_packets_never_crash(packet: bytes, data: st.DataObject) -> None:
    wire = bytearray(packet)
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(16, len(wire) - 1))
        wire[pos] = data.draw(u8)
    if data.draw(st.booleans()):
        wire[24:28] = struct.pack(">I", len(wire))
    try:
        back = Message.decode(bytes(wire))
    except WireError:
        return
    assert back.encode() == bytes(wire)

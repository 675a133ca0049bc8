"""A seeded batch of random, well-formed messages, all judged by tshark in one run.

The hand-written messages of test_tshark.py cover the exchanges; this batch
throws many payload orders, SPI sizes, attribute forms and ID kinds at
Wireshark's dissector, which must find nothing malformed in any of them.
"""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from ike.daemon.pcap import LINKTYPE_LOOP
from ike.daemon.pcap import frame as loop_frame
from ike.doi.constants import EspTransformId, IdType, IkeAttr, IpsecAttr, ProtocolId
from ike.doi.ident import build_id, id_for_address, id_for_network
from ike.wire import (
    Attribute,
    AttributePayload,
    CertEncoding,
    CertificateRequest,
    CfgAttr,
    CfgType,
    Delete,
    ExchangeType,
    Hash,
    KeyExchange,
    Message,
    NatD,
    NatOA,
    Nonce,
    Notify,
    NotifyType,
    Payload,
    Proposal,
    SecurityAssociation,
    Signature,
    Transform,
    VendorId,
)

pytestmark = pytest.mark.skipif(
    shutil.which("tshark") is None, reason="Debian package tshark is not installed"
)


def _attr(rng: random.Random, kind: int, value: int) -> Attribute:
    if rng.random() < 0.7:
        return Attribute.make(kind, value)
    return Attribute(kind, value.to_bytes(4, "big"))


def _sa(rng: random.Random) -> SecurityAssociation:
    if rng.random() < 0.5:
        xfs = [
            Transform(i, 1, [
                Attribute(IkeAttr.ENCRYPTION_ALGORITHM, rng.choice([1, 3, 5, 6, 7])),
                Attribute(IkeAttr.HASH_ALGORITHM, rng.randint(1, 6)),
                Attribute(IkeAttr.AUTHENTICATION_METHOD, rng.choice([1, 3])),
                Attribute(IkeAttr.GROUP_DESCRIPTION, rng.choice([2, 5, 14, 19, 20])),
                Attribute(IkeAttr.LIFE_TYPE, 1),
                _attr(rng, IkeAttr.LIFE_DURATION, rng.randint(60, 10**6)),
            ])
            for i in range(rng.randint(1, 4))
        ]  # fmt: skip
        return SecurityAssociation([Proposal(1, ProtocolId.ISAKMP, b"", xfs)])
    props = []
    for n in range(1, rng.randint(1, 3) + 1):
        tid = rng.choice([EspTransformId.AES, EspTransformId.TRIPLEDES, EspTransformId.AES_GCM_16])
        attrs = [
            Attribute(IpsecAttr.SA_LIFE_TYPE, rng.randint(1, 2)),
            _attr(rng, IpsecAttr.SA_LIFE_DURATION, rng.randint(1, 10**7)),
            Attribute(IpsecAttr.ENCAPSULATION_MODE, rng.choice([1, 2, 3, 4, 61443, 61444])),
            Attribute(IpsecAttr.AUTHENTICATION_ALGORITHM, rng.choice([1, 2, 5, 6, 7])),
        ]
        spi = rng.randbytes(4)
        props.append(Proposal(n, ProtocolId.IPSEC_ESP, spi, [Transform(1, tid, attrs)]))
    return SecurityAssociation(props)


def _id(rng: random.Random) -> Payload:
    kind = rng.randint(0, 4)
    if kind == 0:
        return id_for_address(f"10.{rng.randint(0, 255)}.0.{rng.randint(1, 254)}")
    if kind == 1:
        return id_for_network("2001:db8::/48", rng.choice([0, 6, 17]), rng.randint(0, 65535))
    if kind == 2:
        return build_id(IdType.FQDN, f"h{rng.randint(0, 999)}.example.org")
    if kind == 3:
        return build_id(IdType.USER_FQDN, f"u{rng.randint(0, 999)}@example.org")
    return build_id(IdType.KEY_ID, rng.randbytes(rng.randint(1, 20)))


def _payload(rng: random.Random) -> Payload:
    kind = rng.randint(0, 13)
    data = rng.randbytes(rng.randint(1, 40))
    spi = rng.choice([b"", rng.randbytes(4), rng.randbytes(16)])
    proto = {0: ProtocolId.ISAKMP, 4: ProtocolId.IPSEC_ESP, 16: ProtocolId.ISAKMP}[len(spi)]
    match kind:
        case 0:
            return _sa(rng)
        case 1:
            return KeyExchange(rng.randbytes(rng.choice([96, 128, 256, 64])))
        case 2:
            return Nonce(rng.randbytes(rng.randint(8, 64)))
        case 3:
            return Hash(rng.randbytes(rng.choice([16, 20, 32, 48, 64])))
        case 4:
            return Signature(rng.randbytes(rng.choice([128, 256])))
        case 5:
            return VendorId(rng.randbytes(16))
        case 6:
            return NatD(rng.randbytes(20), draft=rng.random() < 0.3)
        case 7:
            types = [NotifyType.INITIAL_CONTACT, NotifyType.NO_PROPOSAL_CHOSEN,
                     NotifyType.PAYLOAD_MALFORMED, NotifyType.R_U_THERE, NotifyType.R_U_THERE_ACK]
            ntype = rng.choice(types)
            if ntype in (NotifyType.R_U_THERE, NotifyType.R_U_THERE_ACK):
                data = rng.randbytes(4)  # RFC 3706: the data is a 32-bit sequence number
            return Notify(ntype, proto, spi, data)
        case 8:
            size = rng.choice([4, 16])
            dproto = ProtocolId.ISAKMP if size == 16 else ProtocolId.IPSEC_ESP
            return Delete(dproto, [rng.randbytes(size) for _ in range(rng.randint(1, 3))], size)
        case 9:
            return _id(rng)
        case 10:
            attrs = [Attribute(CfgAttr.INTERNAL_IP4_ADDRESS, rng.randbytes(4)),
                     Attribute(CfgAttr.INTERNAL_IP4_NETMASK, b""),
                     Attribute(CfgAttr.APPLICATION_VERSION, b"isakmpd")]
            return AttributePayload(rng.choice(list(CfgType)[1:]), rng.randint(0, 65535), attrs)
        case 11:
            if rng.random() < 0.5:
                return NatOA(IdType.IPV4_ADDR, rng.randbytes(4), draft=rng.random() < 0.3)
            return NatOA(IdType.IPV6_ADDR, rng.randbytes(16))
        case 12:
            return CertificateRequest(CertEncoding.X509_SIG)
        case _:
            return Nonce(data)


def _messages(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    exchanges = [ExchangeType.ID_PROT, ExchangeType.AGGRESSIVE, ExchangeType.INFO,
                 ExchangeType.TRANSACTION, ExchangeType.QUICK_MODE]  # fmt: skip
    out = []
    for _ in range(count):
        payloads = [_payload(rng) for _ in range(rng.randint(1, 7))]
        msg = Message(rng.randbytes(8), rng.randbytes(8), rng.choice(exchanges),
                      message_id=rng.getrandbits(32), payloads=payloads)  # fmt: skip
        data = msg.encode()
        assert Message.decode(data) == msg
        out.append(data)
    return out


def test_tshark_finds_nothing_malformed_in_random_messages(tmp_path: Path) -> None:
    messages = _messages(seed=20261128, count=120)
    pcap = tmp_path / "random.pcap"
    with pcap.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65536, LINKTYPE_LOOP))
        for i, data in enumerate(messages):
            rec = loop_frame(("10.0.0.1", 500), ("10.0.0.2", 500), data, i + 1)
            f.write(struct.pack("<IIII", i, 0, len(rec), len(rec)) + rec)
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-V"], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    frames = out.split("\nFrame ")
    assert len(frames) == len(messages)
    for i, frame in enumerate(frames):
        assert "Internet Security Association and Key Management Protocol" in frame, i
        for marker in ("Malformed", "Expert Info (Error", "Expert Info (Warn", "[Dissector bug"):
            assert marker not in frame, f"message {i}: {marker}\n{frame}"

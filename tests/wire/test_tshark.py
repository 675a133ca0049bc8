"""Messages we encode are decoded by tshark (Wireshark's ISAKMP dissector) without complaint.

Each message is written into a DLT_LOOP pcap with synthetic IP/UDP headers (the
format isakmpd -L writes) and decoded with ``tshark -V``; no frame may carry a
malformed-packet mark or an expert error/warning, and the dissector must see
the payloads we meant.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ike.daemon.pcap import LINKTYPE_LOOP, PcapWriter
from ike.daemon.pcap import frame as loop_frame
from ike.doi.constants import (
    AuthAlgorithm,
    EncapsulationMode,
    EspTransformId,
    IdType,
    IkeAttr,
    IkeAuth,
    IkeDuration,
    IkeEncrypt,
    IkeGroupDesc,
    IkeHash,
    IpsecAttr,
    IpsecDuration,
    IsakmpTransformId,
    ProtocolId,
)
from ike.doi.ident import build_id, id_for_network
from ike.wire import (
    Attribute,
    AttributePayload,
    CertEncoding,
    Certificate,
    CertificateRequest,
    CfgAttr,
    CfgType,
    Delete,
    ExchangeType,
    Flags,
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
from ike.wire.pcap import read_datagrams

pytestmark = pytest.mark.skipif(
    shutil.which("tshark") is None, reason="Debian package tshark is not installed"
)

ICKY = bytes.fromhex("95fe0454a911bae7")
RCKY = bytes.fromhex("156cf06a16bb1eb0")
VIDS = [
    VendorId(hashlib.md5(b"OpenBSD-6.3").digest()),
    VendorId(hashlib.md5(b"draft-ietf-ipsec-nat-t-ike-02\n").digest()),
    VendorId(hashlib.md5(b"draft-ietf-ipsec-nat-t-ike-03").digest()),
    VendorId(hashlib.md5(b"RFC 3947").digest()),
    VendorId(bytes.fromhex("afcad71368a1f1c96b8696fc77570100")),
]


def _certificate() -> tuple[bytes, bytes]:
    """A throw-away self-signed certificate (DER) and its subject DN (DER)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gw.example.org")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER), name.public_bytes()


CERT_DER, SUBJECT_DER = _certificate()


def _ike_transform(no: int, enc: int, keylen: int | None, hash_: int, group: int) -> Transform:
    attrs = [
        Attribute(IkeAttr.ENCRYPTION_ALGORITHM, enc),
        Attribute(IkeAttr.HASH_ALGORITHM, hash_),
        Attribute(IkeAttr.AUTHENTICATION_METHOD, IkeAuth.PRE_SHARED),
        Attribute(IkeAttr.GROUP_DESCRIPTION, group),
        Attribute(IkeAttr.LIFE_TYPE, IkeDuration.SECONDS),
        Attribute.make(IkeAttr.LIFE_DURATION, 86400),
    ]
    if keylen is not None:
        attrs.append(Attribute(IkeAttr.KEY_LENGTH, keylen))
    return Transform(no, IsakmpTransformId.KEY_IKE, attrs)


def _phase1_sa(count: int = 3) -> SecurityAssociation:
    xfs = [
        _ike_transform(0, IkeEncrypt.AES_CBC, 256, IkeHash.SHA2_256, IkeGroupDesc.MODP_2048),
        _ike_transform(1, IkeEncrypt.AES_CBC, 128, IkeHash.SHA, IkeGroupDesc.ECP_256),
        _ike_transform(2, IkeEncrypt.TRIPLEDES_CBC, None, IkeHash.MD5, IkeGroupDesc.MODP_1024),
    ][:count]
    return SecurityAssociation([Proposal(1, ProtocolId.ISAKMP, b"", xfs)])


def _esp_sa() -> SecurityAssociation:
    attrs = [
        Attribute(IpsecAttr.SA_LIFE_TYPE, IpsecDuration.SECONDS),
        Attribute.make(IpsecAttr.SA_LIFE_DURATION, 1200),
        Attribute(IpsecAttr.SA_LIFE_TYPE, IpsecDuration.KILOBYTES),
        Attribute.make(IpsecAttr.SA_LIFE_DURATION, 1000000),
        Attribute(IpsecAttr.ENCAPSULATION_MODE, EncapsulationMode.TUNNEL),
        Attribute(IpsecAttr.AUTHENTICATION_ALGORITHM, AuthAlgorithm.HMAC_SHA2_256),
        Attribute(IpsecAttr.GROUP_DESCRIPTION, IkeGroupDesc.MODP_2048),
        Attribute(IpsecAttr.KEY_LENGTH, 128),
    ]
    esp = Proposal(1, ProtocolId.IPSEC_ESP, b"\xca\xfe\xba\xbe", [
        Transform(1, EspTransformId.AES, attrs),
        Transform(2, EspTransformId.TRIPLEDES, attrs[:-1]),
    ])  # fmt: skip
    ah = Proposal(1, ProtocolId.IPSEC_AH, b"\x12\x34\x56\x78", [
        Transform(1, 5, [Attribute(IpsecAttr.AUTHENTICATION_ALGORITHM, 5)]),
    ])  # fmt: skip
    return SecurityAssociation([esp, ah])


def _msg(exch: ExchangeType, payloads: list[Payload], msgid: int = 0, r: bool = True) -> Message:
    return Message(ICKY, RCKY if r else bytes(8), exch, Flags.NONE, msgid, payloads)


MESSAGES: dict[str, Message] = {
    "main-1": _msg(ExchangeType.ID_PROT, [_phase1_sa(), *VIDS], r=False),
    "main-2": _msg(ExchangeType.ID_PROT, [_phase1_sa(1), *VIDS]),
    "main-3": _msg(ExchangeType.ID_PROT, [
        KeyExchange(bytes(range(256))), Nonce(bytes(16)),
        NatD(b"\x11" * 20), NatD(b"\x22" * 20),
    ]),
    "main-5": _msg(ExchangeType.ID_PROT, [
        build_id(IdType.DER_ASN1_DN, SUBJECT_DER),
        Certificate(CertEncoding.X509_SIG, CERT_DER),
        CertificateRequest(CertEncoding.X509_SIG, SUBJECT_DER),
        Signature(b"\x5a" * 256),
        Notify(NotifyType.INITIAL_CONTACT, ProtocolId.ISAKMP, ICKY + RCKY),
    ]),
    "aggr-1": _msg(ExchangeType.AGGRESSIVE, [
        _phase1_sa(2), KeyExchange(b"\x01" * 128), Nonce(b"\x02" * 16),
        build_id(IdType.FQDN, "initiator.example.org"), *VIDS,
    ], r=False),
    "aggr-2": _msg(ExchangeType.AGGRESSIVE, [
        _phase1_sa(1), KeyExchange(b"\x03" * 128), Nonce(b"\x04" * 16),
        build_id(IdType.USER_FQDN, "vpn@example.org"), *VIDS[:2],
        NatD(b"\x05" * 16, draft=True), NatD(b"\x06" * 16, draft=True), Hash(b"\x07" * 16),
    ]),
    "quick-1": _msg(ExchangeType.QUICK_MODE, [
        Hash(b"\x08" * 32), _esp_sa(), Nonce(b"\x09" * 16), KeyExchange(b"\x0a" * 256),
        id_for_network("10.1.0.0/16"), id_for_network("2001:db8::/48", 17, 500),
        NatOA(IdType.IPV4_ADDR, bytes([192, 168, 1, 10])),
    ], msgid=0x1234ABCD),
    "info-delete": _msg(ExchangeType.INFO, [
        Hash(b"\x0b" * 20),
        Delete(ProtocolId.IPSEC_ESP, [b"\xca\xfe\xba\xbe", b"\xde\xad\xbe\xef"]),
        Delete(ProtocolId.ISAKMP, [ICKY + RCKY], spi_size=16),
    ], msgid=7),
    "info-notify": _msg(ExchangeType.INFO, [
        Notify(NotifyType.NO_PROPOSAL_CHOSEN),
        Notify(NotifyType.R_U_THERE, ProtocolId.ISAKMP, ICKY + RCKY, b"\x00\x00\x12\x34"),
        Notify(NotifyType.RESPONDER_LIFETIME, ProtocolId.IPSEC_ESP, b"\xca\xfe\xba\xbe",
               Attribute(IpsecAttr.SA_LIFE_TYPE, 1).encode()),
    ], msgid=9),
    "transaction": _msg(ExchangeType.TRANSACTION, [
        Hash(b"\x0c" * 20),
        AttributePayload(CfgType.CFG_REQUEST, 0x0102, [
            Attribute(CfgAttr.INTERNAL_IP4_ADDRESS, b""),
            Attribute(CfgAttr.INTERNAL_IP4_NETMASK, b""),
            Attribute(CfgAttr.INTERNAL_IP4_DNS, bytes([10, 0, 0, 53])),
            Attribute(CfgAttr.XAUTH_TYPE, 0),
        ]),
    ], msgid=11),
}


def _tshark(tmp_path: Path, named: dict[str, bytes], ipv6: bool = False) -> list[str]:
    # ike.daemon.pcap frames (isakmpd -L layout); the E flag is left as we set it.
    pcap = tmp_path / "wire.pcap"
    src, dst = ("2001:db8::1", "2001:db8::2") if ipv6 else ("10.0.0.1", "10.0.0.2")
    with pcap.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65536, LINKTYPE_LOOP))
        for i, data in enumerate(named.values()):
            rec = loop_frame((src, 500), (dst, 500), data, i + 1)
            f.write(struct.pack("<IIII", i, 0, len(rec), len(rec)) + rec)
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-V",
         "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    frames = out.split("\nFrame ")
    assert len(frames) == len(named)
    return frames


def _assert_clean(name: str, frame: str) -> None:
    assert "Internet Security Association and Key Management Protocol" in frame, name
    for marker in ("Malformed", "Expert Info (Error", "Expert Info (Warn", "[Dissector bug"):
        assert marker not in frame, f"{name}: {marker}\n{frame}"


def test_tshark_decodes_every_message_cleanly(tmp_path: Path) -> None:
    frames = _tshark(tmp_path, {k: m.encode() for k, m in MESSAGES.items()})
    for name, frame in zip(MESSAGES, frames, strict=True):
        _assert_clean(name, frame)
    got = dict(zip(MESSAGES, frames, strict=True))
    assert "Proposal transforms: 3" in got["main-1"]
    assert got["main-1"].count("Transform ID: KEY_IKE (1)") == 3
    assert "Encryption-Algorithm: AES-CBC" in got["main-1"]
    assert "Life-Duration: 86400" in got["main-1"]
    assert got["main-1"].count("Payload: Vendor ID (13)") == 5
    assert "RFC 3947" in got["main-1"] and "Dead Peer Detection" in got["main-1"]
    assert got["main-3"].count("Payload: NAT-D (RFC 3947) (20)") == 2
    assert "Certificate Encoding: X.509 Certificate - Signature (4)" in got["main-5"]
    assert "Payload: Certificate Request (7)" in got["main-5"]
    assert "Notify Message Type: INITIAL-CONTACT (24578)" in got["main-5"]
    assert "initiator.example.org" in got["aggr-1"]
    assert "vpn@example.org" in got["aggr-2"]
    assert got["aggr-2"].count("Payload: NAT-D (draft-ietf-ipsec-nat-t-ike-01 to 03) (130)") == 2
    assert "Protocol ID: IPSEC_ESP (3)" in got["quick-1"]
    assert "SPI: cafebabe" in got["quick-1"]
    assert "Encapsulation-Mode: Tunnel" in got["quick-1"]
    assert "10.1.0.0/255.255.0.0" in got["quick-1"] or "10.1.0.0" in got["quick-1"]
    assert "Port: 500" in got["quick-1"]
    assert "Payload: NAT-OA (RFC 3947) (21)" in got["quick-1"]
    assert got["info-delete"].count("Payload: Delete (12)") == 2
    assert "Notify Message Type: NO-PROPOSAL-CHOSEN (14)" in got["info-notify"]
    assert "R-U-THERE" in got["info-notify"]
    assert "Type: ISAKMP_CFG_REQUEST (1)" in got["transaction"]
    assert "INTERNAL IP4 DNS: 10.0.0.53" in got["transaction"]


def test_tshark_decodes_encrypted_and_ipv6(tmp_path: Path) -> None:
    enc = Message(
        ICKY, RCKY, ExchangeType.QUICK_MODE, Flags.ENC, 1, ciphertext=b"\x00" * 48,
        first_payload=Hash.TYPE,
    ).encode()  # fmt: skip
    frames = _tshark(tmp_path, {"enc": enc, "main-1": MESSAGES["main-1"].encode()}, ipv6=True)
    _assert_clean("enc", frames[0])
    assert "Encrypted Data" in frames[0]
    _assert_clean("main-1", frames[1])
    assert "Internet Protocol Version 6" in frames[1]


def test_capture_reader_reads_what_the_daemon_writes() -> None:
    buf = io.BytesIO()
    w = PcapWriter(buf)
    mm1 = MESSAGES["main-1"].encode()
    info = MESSAGES["info-delete"].encode()
    w.record(("10.0.0.1", 500), ("10.0.0.2", 500), mm1, now=1.5)
    w.record(("2001:db8::2", 4500), ("2001:db8::1", 4500), info, now=2.0)
    buf.seek(0)
    got = list(read_datagrams(buf))
    assert [d.payload for d in got] == [mm1, info]  # non-ESP marker stripped on 4500
    assert (str(got[0].src), got[0].sport, got[1].dport) == ("10.0.0.1", 500, 4500)
    assert got[0].time == 1.5


def test_what_tshark_saw_is_what_we_decode() -> None:
    for name, msg in MESSAGES.items():
        data = msg.encode()
        assert Message.decode(data) == msg, name

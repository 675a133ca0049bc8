"""Packets captured from strongSwan 5.9.8 and libreswan 4.10 decode and re-encode exactly.

The pcaps in captures/ were recorded once with captures/capture.sh (two peers in
network namespaces kw-a/kw-b, dumpcap on kw-b's veth); each scenario is described
there.  sw-mm.keys.json is the initiator's logged keying material (test PSK,
charon ike=4), used here to decrypt Main Mode 5/6, Quick Mode and the
informationals so their payload chains are checked too.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ike.doi.constants import (
    EspTransformId,
    IdType,
    IkeAttr,
    IkeEncrypt,
    IkeHash,
    IpsecAttr,
    ProtocolId,
)
from ike.wire import (
    CertEncoding,
    CertificateRequest,
    Delete,
    ExchangeType,
    Hash,
    Identification,
    Message,
    NatD,
    Nonce,
    Notify,
    NotifyType,
    PayloadType,
    SecurityAssociation,
    UnknownPayload,
    VendorId,
)
from ike.wire.pcap import Datagram, read_datagrams

CAPTURES = Path(__file__).parent / "captures"
SCENARIOS = sorted(p.stem for p in CAPTURES.glob("*.pcap"))
DPD_VID = bytes.fromhex("afcad71368a1f1c96b8696fc77570100")


def _datagrams(name: str) -> list[Datagram]:
    with (CAPTURES / f"{name}.pcap").open("rb") as f:
        return list(read_datagrams(f))


def _messages(name: str) -> list[Message]:
    return [Message.decode(d.payload) for d in _datagrams(name)]


def test_every_scenario_was_captured() -> None:
    assert SCENARIOS == [
        "ls-am", "ls-am-resp", "ls-mm", "ls-mm-resp", "ls-noprop",
        "sw-am", "sw-mm", "sw-nat", "sw-noprop", "sw-rsa",
    ]  # fmt: skip


@pytest.mark.parametrize("name", SCENARIOS)
def test_capture_round_trips_byte_for_byte(name: str) -> None:
    datagrams = _datagrams(name)
    assert len(datagrams) >= 2
    for d in datagrams:
        msg = Message.decode(d.payload)
        assert msg.encode() == d.payload


def test_strongswan_main_mode_1_offers_three_transforms() -> None:
    mm1 = _messages("sw-mm")[0]
    assert mm1.exchange_type is ExchangeType.ID_PROT
    assert mm1.payload_types() == [PayloadType.SA] + [PayloadType.VENDOR] * 5
    sa = mm1.get(SecurityAssociation)
    assert sa is not None
    (prop,) = sa.proposals
    assert prop.protocol is ProtocolId.ISAKMP and prop.spi == b""
    assert [t.number for t in prop.transforms] == [1, 2, 3]
    first = {a.type: a.as_int() for a in prop.transforms[0].attributes}
    assert first[IkeAttr.ENCRYPTION_ALGORITHM] == IkeEncrypt.AES_CBC
    assert first[IkeAttr.KEY_LENGTH] == 128
    assert first[IkeAttr.HASH_ALGORITHM] == IkeHash.SHA2_256
    assert first[IkeAttr.GROUP_DESCRIPTION] == 14
    last = {a.type: a.as_int() for a in prop.transforms[2].attributes}
    assert last[IkeAttr.ENCRYPTION_ALGORITHM] == IkeEncrypt.TRIPLEDES_CBC
    assert DPD_VID in [v.data for v in mm1.all(VendorId)]


def test_main_mode_3_and_4_carry_ke_nonce_and_two_nat_d() -> None:
    # NAT-D is a hash of the negotiated Phase 1 hash: SHA2-256 in sw-mm, SHA1 in ls-mm.
    for name, size in (("sw-mm", 32), ("ls-mm", 20), ("ls-mm-resp", 20)):
        mm3, mm4 = _messages(name)[2:4]
        for m in (mm3, mm4):
            assert m.payload_types()[:2] == [PayloadType.KEY_EXCH, PayloadType.NONCE]
            assert [len(n.data) for n in m.all(NatD)] == [size, size]


def test_libreswan_responder_selects_one_transform() -> None:
    mm1, mm2 = _messages("ls-mm-resp")[:2]
    sa1, sa2 = mm1.get(SecurityAssociation), mm2.get(SecurityAssociation)
    assert sa1 is not None and sa2 is not None
    (chosen,) = sa2.proposals[0].transforms
    offered = {t.number: t for t in sa1.proposals[0].transforms}
    assert chosen.number in offered
    key = sorted((a.type, a.value) for a in chosen.attributes)
    assert key == sorted((a.type, a.value) for a in offered[chosen.number].attributes)


def test_rsa_main_mode_4_requests_an_x509_certificate() -> None:
    mm4 = _messages("sw-rsa")[3]
    req = mm4.get(CertificateRequest)
    assert req is not None and req.cert_type is CertEncoding.X509_SIG


def test_ike_fragments_stay_opaque() -> None:
    # strongSwan fragments the certificate-bearing MM5 (private payload 132).
    frags = [m for m in _messages("sw-rsa") if m.payload_types() == [PayloadType(132)]]
    assert frags
    assert all(isinstance(m.payloads[0], UnknownPayload) for m in frags)


def test_aggressive_mode_ids_are_fqdns() -> None:
    for name in ("sw-am", "ls-am", "ls-am-resp"):
        am1, am2 = _messages(name)[:2]
        assert am1.exchange_type is ExchangeType.AGGRESSIVE
        id1, id2 = am1.get(Identification), am2.get(Identification)
        assert id1 is not None and id2 is not None
        assert (id1.id_type, id1.data) == (IdType.FQDN, b"a.ikp.test")
        assert (id2.id_type, id2.data) == (IdType.FQDN, b"b.ikp.test")
        assert PayloadType.HASH in am2.payload_types()


@pytest.mark.parametrize("name", ["sw-noprop", "ls-noprop"])
def test_cleartext_informational_says_no_proposal_chosen(name: str) -> None:
    info = _messages(name)[-1]
    assert info.exchange_type is ExchangeType.INFO and not info.is_encrypted
    note = info.get(Notify)
    assert note is not None and note.notify_type is NotifyType.NO_PROPOSAL_CHOSEN


def test_nat_t_capture_floats_to_4500_with_marker_removed() -> None:
    dgrams = _datagrams("sw-nat")
    assert {d.dport for d in dgrams} >= {500, 4500}
    floated = [d for d in dgrams if 4500 in (d.sport, d.dport)]
    assert floated and all(Message.decode(d.payload).is_encrypted for d in floated)


def _cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def test_decrypted_strongswan_bodies_round_trip() -> None:
    """MM5/6, Quick Mode and informationals of sw-mm, decrypted with the logged keys."""
    keys = json.loads((CAPTURES / "sw-mm.keys.json").read_text())["ike_sas"]["1"]
    ka = bytes.fromhex(keys["encryption key Ka"])
    iv = bytes.fromhex(keys["initial IV"])
    msgs = _messages("sw-mm")
    phase2_ivs: dict[int, bytes] = {}
    last_p1_block = b""
    seen: set[PayloadType] = set()
    for msg in msgs:
        if not msg.is_encrypted:
            continue
        assert msg.ciphertext is not None
        if msg.message_id == 0:
            body_iv = iv
            iv = last_p1_block = msg.ciphertext[-16:]
        else:
            # RFC 2409 appendix B: hash(last phase 1 block | message id), SHA2-256 here.
            body_iv = phase2_ivs.get(msg.message_id) or hashlib.sha256(
                last_p1_block + msg.message_id.to_bytes(4, "big")
            ).digest()[:16]
            phase2_ivs[msg.message_id] = msg.ciphertext[-16:]
        plain = _cbc_decrypt(ka, body_iv, msg.ciphertext)
        clear = msg.with_plaintext(plain)
        assert clear.payloads and clear.ciphertext is None
        assert len(clear.trailer) <= 16  # strongSwan pads 1..16 bytes
        seen.update(clear.payload_types())
        # the cleartext chain re-encodes to the decrypted bytes, padding included
        reencoded = clear.encode()
        assert reencoded[28:] == plain
    assert {PayloadType.ID, PayloadType.HASH, PayloadType.NONCE, PayloadType.SA} <= seen
    assert {PayloadType.NOTIFY, PayloadType.DELETE} <= seen


def test_decrypted_quick_mode_offers_esp_with_a_four_byte_spi() -> None:
    keys = json.loads((CAPTURES / "sw-mm.keys.json").read_text())["ike_sas"]["1"]
    ka = bytes.fromhex(keys["encryption key Ka"])
    msgs = _messages("sw-mm")
    mm6 = msgs[5]
    qm1 = msgs[6]
    assert mm6.ciphertext is not None and qm1.ciphertext is not None
    assert qm1.exchange_type is ExchangeType.QUICK_MODE
    iv = hashlib.sha256(mm6.ciphertext[-16:] + qm1.message_id.to_bytes(4, "big")).digest()[:16]
    clear = qm1.with_plaintext(_cbc_decrypt(ka, iv, qm1.ciphertext))
    assert clear.payload_types()[:3] == [PayloadType.HASH, PayloadType.SA, PayloadType.NONCE]
    hash_payload = clear.get(Hash)
    assert hash_payload is not None and len(hash_payload.data) == 32
    sa = clear.get(SecurityAssociation)
    assert sa is not None
    prop = sa.proposals[0]
    assert prop.protocol is ProtocolId.IPSEC_ESP and len(prop.spi) == 4
    xf = prop.transforms[0]
    assert xf.transform_id is EspTransformId.AES
    attrs = {a.type: a.as_int() for a in xf.attributes}
    assert attrs[IpsecAttr.KEY_LENGTH] == 128
    assert clear.get(Nonce) is not None


def test_decrypted_informationals_hold_delete_and_dpd() -> None:
    keys = json.loads((CAPTURES / "sw-mm.keys.json").read_text())["ike_sas"]["1"]
    ka = bytes.fromhex(keys["encryption key Ka"])
    msgs = _messages("sw-mm")
    mm6 = msgs[5]
    assert mm6.ciphertext is not None
    notes: list[Notify] = []
    deletes: list[Delete] = []
    for m in msgs:
        if m.exchange_type is not ExchangeType.INFO or m.ciphertext is None:
            continue
        iv = hashlib.sha256(mm6.ciphertext[-16:] + m.message_id.to_bytes(4, "big")).digest()
        clear = m.with_plaintext(_cbc_decrypt(ka, iv[:16], m.ciphertext))
        notes += clear.all(Notify)
        deletes += clear.all(Delete)
    kinds = {n.notify_type for n in notes}
    assert {NotifyType.R_U_THERE, NotifyType.R_U_THERE_ACK} <= kinds
    for n in notes:
        if n.notify_type is NotifyType.R_U_THERE:
            assert len(n.spi) == 16 and len(n.data) == 4  # cookies, sequence number
    assert any(d.protocol is ProtocolId.ISAKMP and d.spi_size == 16 for d in deletes)

"""Quick Mode bundles, modes, IDs and lifetimes; INITIAL-CONTACT; rekeying; kernel events."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from ike.engine import REKEY_RETIRE_GRACE
from ike.events import Phase1Done, Phase2Done, SADeleted
from ike.kernel.fake import FakeKernel
from ike.kernel.interface import (
    Acquire,
    AddFlow,
    AddSA,
    DeleteSA,
    Expire,
    SAStats,
    TrafficSelector,
)

AH_ESP = """[qm-ahesp]
Protocols=              qm-ah-p,qm-esp-p
[qm-ah-p]
PROTOCOL_ID=            IPSEC_AH
Transforms=             qm-ah-xf
[qm-ah-xf]
TRANSFORM_ID=           SHA2_256
ENCAPSULATION_MODE=     TUNNEL
AUTHENTICATION_ALGORITHM= HMAC_SHA2_256
Life=                   LIFE_QUICK_MODE,life-kb
[qm-esp-p]
PROTOCOL_ID=            IPSEC_ESP
Transforms=             qm-esp-des,qm-esp-xf
[qm-esp-des]
TRANSFORM_ID=           DES
ENCAPSULATION_MODE=     TUNNEL
AUTHENTICATION_ALGORITHM= HMAC_SHA
[qm-esp-xf]
TRANSFORM_ID=           AES
KEY_LENGTH=             256
ENCAPSULATION_MODE=     TUNNEL
AUTHENTICATION_ALGORITHM= HMAC_SHA
Life=                   LIFE_QUICK_MODE,life-kb
[life-kb]
LIFE_TYPE=              KILOBYTES
LIFE_DURATION=          100000
[qm-comp]
Protocols=              qm-comp-p,QM-ESP-AES-SHA
[qm-comp-p]
PROTOCOL_ID=            IPCOMP
Transforms=             qm-comp-xf
[qm-comp-xf]
TRANSFORM_ID=           DEFLATE
ENCAPSULATION_MODE=     TUNNEL
[qm-des]
Protocols=              qm-des-p
[qm-des-p]
PROTOCOL_ID=            IPSEC_ESP
Transforms=             qm-esp-des
"""


def _up(h: Any, **kw: Any) -> Any:
    pair = h.make_pair(h.make_conf("a", more=AH_ESP, **kw), h.make_conf("b", more=AH_ESP, **kw),
                       use_keynote=False)
    pair.a.start(pair.now)
    pair.flush()
    assert [type(e) for e in pair.events("a")] == [Phase1Done, Phase2Done]
    assert [type(e) for e in pair.events("b")] == [Phase1Done, Phase2Done]
    return pair


def _agree(pair: Any) -> None:
    [ia], [ib] = pair.a.sas.ipsec, pair.b.sas.ipsec
    assert len(ia.protocols) == len(ib.protocols)
    for pa, pb in zip(ia.protocols, ib.protocols, strict=True):
        assert pa.choice == pb.choice
        assert (pa.spi_in, pa.spi_out) == (pb.spi_out, pb.spi_in)
        assert (pa.enc_in, pa.auth_in) == (pb.enc_out, pb.auth_out)


def test_ah_plus_esp_bundle_several_transforms_kilobytes(h: Any) -> None:
    pair = _up(h, suites="qm-ahesp")
    _agree(pair)
    [ia] = pair.a.sas.ipsec
    assert [p.choice.protocol_id for p in ia.protocols] == [2, 3]
    assert ia.protocols[1].choice.transform_id == 12  # DES skipped, AES chosen
    assert len(ia.protocols[0].auth_in) == 32 and len(ia.protocols[1].enc_in) == 32
    assert ia.life_kbytes == 100000 and ia.life_seconds == 1200
    adds = [c for c in pair.ka.commands if isinstance(c, AddSA)]
    assert len(adds) == 4 and all(c.lifetime.hard_bytes == 100000 * 1024 for c in adds)
    # ESP inside AH: the inner ESP SAs tunnel, the outer AH SAs are transport (Linux nesting)
    assert {(c.proto, c.tunnel) for c in adds} == {(2, False), (3, True)}
    flows = [c for c in pair.ka.commands if isinstance(c, AddFlow)]
    assert {(f.proto, f.inner_proto) for f in flows} == {(2, 3)}


def test_ipcomp_with_esp(h: Any) -> None:
    pair = _up(h, suites="qm-comp")
    _agree(pair)
    [ia] = pair.a.sas.ipsec
    assert ia.protocols[0].choice.protocol_id == 4 and ia.protocols[0].spi_in < 0x10000
    flows = [c for c in pair.ka.commands if isinstance(c, AddFlow)]
    assert {(f.proto, f.inner_proto) for f in flows} == {(3, 4)}  # IPComp inside ESP


def test_several_proposals_first_supported_wins(h: Any) -> None:
    pair = _up(h, suites="qm-des,QM-ESP-3DES-MD5-SUITE,QM-ESP-AES-SHA-SUITE")
    [ia] = pair.a.sas.ipsec
    assert ia.protocols[0].choice.transform_id == 3  # 3DES, the second suite


def test_transport_mode_and_ports(h: Any) -> None:
    ports = """[net-a-tcp]
ID-type=                IPV4_ADDR
Address=                10.0.0.1
Protocol=               tcp
Port=                   80
"""
    conf_a = h.make_conf("a", suites="QM-ESP-TRP-AES-128-SHA-SUITE", more=ports)
    conf_b = h.make_conf("b", suites="QM-ESP-TRP-AES-128-SHA-SUITE", more=ports)
    for conf, mine in ((conf_a, "Local-ID"), (conf_b, "Remote-ID")):
        with conf.transaction() as t:
            t.set("conn", mine, "net-a-tcp", override=True)
    pair = h.make_pair(conf_a, conf_b, use_keynote=False)
    pair.a.start(pair.now)
    pair.flush()
    assert [type(e) for e in pair.events("b")] == [Phase1Done, Phase2Done]
    out = [c for c in pair.ka.commands if isinstance(c, AddSA) and not c.inbound]
    assert out and not out[0].tunnel
    assert out[0].selector is not None and out[0].selector.proto == 6
    assert out[0].selector.sport == 80
    assert out[0].selector.src == ipaddress.ip_network("10.0.0.1/32")


@pytest.mark.parametrize(("kind", "name"), [("FQDN", "a.example.org"),
                                            ("USER_FQDN", "vpn@a.example.org"),
                                            ("KEY_ID", "key-one")])
def test_phase1_name_ids(h: Any, kind: str, name: str) -> None:
    ids = f"""[id-a]
ID-type=                {kind}
Name=                   {name}
"""
    pair = h.make_pair(h.make_conf("a", extra_peer="ID= id-a", more=ids),
                       h.make_conf("b", extra_peer="Remote-ID= id-a", more=ids),
                       use_keynote=False)
    pair.a.start(pair.now)
    pair.flush()
    assert [type(e) for e in pair.events("b")] == [Phase1Done, Phase2Done]
    [sa_b] = pair.b.sas.isakmp.values()
    assert sa_b.peer_id is not None and sa_b.peer_id.data == name.encode()


def test_ipv6_peers(h: Any) -> None:
    addrs = ("fd00::1", "fd00::2")
    pair = h.make_pair(h.make_conf("a", addrs=addrs), h.make_conf("b", addrs=addrs),
                       use_keynote=False)
    pair.a.start(pair.now)
    pair.flush()
    assert [type(e) for e in pair.events("b")] == [Phase1Done, Phase2Done]
    [sa_b] = pair.b.sas.isakmp.values()
    assert sa_b.peer_id is not None and sa_b.peer_id.id_type == 5


def test_initial_contact_clears_old_sas(h: Any) -> None:
    pair = _up(h)
    old_cookies = next(iter(pair.b.sas.isakmp))
    restarted = h.make_pair(h.make_conf("a"), h.make_conf("b"), seed=99, use_keynote=False)
    pair.a = restarted.a
    pair.ka = restarted.ka
    pair.a.start(pair.now)
    pair.flush()
    ev_b = pair.events("b")
    deleted = [e for e in ev_b if isinstance(e, SADeleted)]
    assert {e.kind for e in deleted} == {"isakmp", "ipsec"}
    assert all(e.reason == "INITIAL-CONTACT" for e in deleted)
    assert old_cookies not in pair.b.sas.isakmp
    assert len(pair.b.sas.isakmp) == 1 and len(pair.b.sas.ipsec) == 1


def test_rekey_before_expiry_deletes_old(h: Any) -> None:
    pair = _up(h, suites="qm-short")
    [old_a] = pair.a.sas.ipsec
    pair.advance(119)
    [new_a] = pair.a.sas.ipsec
    [new_b] = pair.b.sas.ipsec
    assert new_a is not old_a and new_a.spis_out == new_b.spis_in
    assert any(isinstance(e, Phase2Done) for e in pair.events("a"))
    assert [e.reason for e in pair.events("b") if isinstance(e, SADeleted)] == ["peer DELETE"]
    assert len(pair.ka.sas) == 2 and len(pair.kb.sas) == 2


def _watch(pair: Any) -> list[str]:
    """Record every outbound install, failing the run when the peer's kernel lacks the
    inbound SA for that SPI at that moment."""
    seen: list[str] = []
    for mine, theirs, name in ((pair.ka, pair.kb, "a"), (pair.kb, pair.ka, "b")):
        real = mine.add_sa

        def add_sa(cmd: AddSA, real: Any = real, theirs: FakeKernel = theirs,
                   name: str = name) -> None:
            if not cmd.inbound:
                key = (cmd.dst, cmd.spi, int(cmd.proto))
                assert key in theirs.sas, f"{name} sends on SPI {cmd.spi:#x} before the peer has it"
                seen.append(name)
            real(cmd)

        mine.add_sa = add_sa
    return seen


def test_peer_has_the_inbound_sa_before_any_outbound_sa_is_used(h: Any) -> None:
    """Whenever one side installs an outbound SA (and may send on it at once), the other side's
    kernel holds the matching inbound SA already: on the first negotiation and on a rekey (the
    responder installs its inbound SAs before it answers, ike.exchange.install)."""
    pair = h.make_pair(h.make_conf("a", more=AH_ESP, suites="qm-short"),
                       h.make_conf("b", more=AH_ESP, suites="qm-short"), use_keynote=False)
    seen = _watch(pair)
    pair.a.start(pair.now)
    pair.flush()
    assert [type(e) for e in pair.events("b")] == [Phase1Done, Phase2Done]
    assert seen == ["a", "b"]
    [first] = pair.a.sas.ipsec
    pair.advance(119)  # the soft expiry: a rekeys
    [new] = pair.a.sas.ipsec
    # a's new outbound SA waits REKEY_OUTBOUND_DELAY after HASH(3): b's comes first
    assert new is not first and seen == ["a", "b", "b", "a"]
    assert len(pair.ka.sas) == 2 and len(pair.kb.sas) == 2  # the old pair retired


def test_our_rekey_waits_for_a_responder_that_installs_on_hash3(
        h: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A responder like isakmpd or charon installs its inbound SA only when HASH(3) arrives; our
    rekey keeps sending on the old SA until then (REKEY_OUTBOUND_DELAY), so the peer never sees
    a packet on an SPI it does not know yet."""
    from ike.exchange import install

    real = install.install_inbound
    pair = h.make_pair(h.make_conf("a", more=AH_ESP, suites="qm-short"),
                       h.make_conf("b", more=AH_ESP, suites="qm-short"), use_keynote=False)
    monkeypatch.setattr(install, "install_inbound", lambda engine, ex, bundle: (
        None if engine is pair.b else real(engine, ex, bundle)))
    pair.a.start(pair.now)
    pair.flush()
    [first] = pair.a.sas.ipsec
    pair.now = first.soft_at or 0.0
    seen = _watch(pair)  # from here on: the rekey
    pair.a.handle_timer(pair.now)
    pair.flush()  # QM1..QM3 delivered at once; b installs on HASH(3)
    [new] = [s for s in pair.a.sas.ipsec if s is not first]
    assert seen == ["b"] and len(new.pending_out) == 1
    pair.advance(install.REKEY_OUTBOUND_DELAY)
    assert seen == ["b", "a"] and not new.pending_out
    assert any(c.spi == new.protocols[0].spi_out for c in pair.ka.sas.values())


def _rekey_now(pair: Any, old: Any) -> Any:
    """Jump to ``old``'s soft expiry and let a rekey it (every message delivered at once):
    the successor."""
    pair.now = old.soft_at or 0.0
    pair.a.handle_timer(pair.now)
    pair.flush()
    [new] = [s for s in pair.a.sas.ipsec if s is not old]
    return new


def _up_short(h: Any) -> tuple[Any, Any]:
    """A pair with the short-lived suite up: (pair, a's IPsec SA)."""
    pair = h.make_pair(h.make_conf("a", more=AH_ESP, suites="qm-short"),
                       h.make_conf("b", more=AH_ESP, suites="qm-short"), use_keynote=False)
    pair.a.start(pair.now)
    pair.flush()
    [old] = pair.a.sas.ipsec
    return pair, old


def _outbound_swapped_in_order(commands: list[Any], old: Any, new: Any) -> bool:
    """Whether ``commands`` add ``new``'s outbound SA before they delete ``old``'s (so the
    flow never goes without one); StopIteration if either is missing."""
    added = next(i for i, c in enumerate(commands)
                 if isinstance(c, AddSA) and c.spi == new.protocols[0].spi_out)
    removed = next(i for i, c in enumerate(commands)
                   if isinstance(c, DeleteSA) and c.spi == old.protocols[0].spi_out)
    return added < removed


def test_a_late_timer_installs_the_successor_before_it_retires_the_old_sa(h: Any) -> None:
    """The daemon's loop stalls past both the held-back outbound SA's moment and the old SA's
    retirement: one timer run must put the new outbound SA in before taking the old one out,
    so that there is never no outbound SA for the flow."""
    pair, old = _up_short(h)
    new = _rekey_now(pair, old)
    assert new.pending_out
    mark = len(pair.ka.commands)
    pair.now += REKEY_RETIRE_GRACE + 1  # one late run: both moments have passed
    pair.a.handle_timer(pair.now)
    assert _outbound_swapped_in_order(pair.ka.commands[mark:], old, new)
    assert pair.a.sas.ipsec == [new]


def test_a_replaced_sa_stays_while_the_peer_still_sends_on_it(h: Any) -> None:
    """A slow peer keeps sending on the old SA after our rekey (it has not processed HASH(3)
    yet): the old SA is not retired after REKEY_RETIRE_GRACE but once the successor's inbound
    SA counts packets; and never later than REKEY_RETIRE_MAX after the rekey."""
    from ike.exchange.install import REKEY_RETIRE_MAX

    pair, old = _up_short(h)
    new = _rekey_now(pair, old)
    a_addr = ipaddress.ip_address(h.A)

    def inbound(ipsa: Any, packets: int) -> None:
        pair.ka.stats[(a_addr, ipsa.protocols[0].spi_in, 3)] = SAStats(packets * 100, packets,
                                                                      0, 0)

    inbound(old, 7)  # the peer's packets keep arriving on the old SA, none on the new one
    pair.advance(REKEY_RETIRE_GRACE + 3)
    assert old in pair.a.sas.ipsec and (a_addr, old.protocols[0].spi_in, 3) in pair.ka.sas
    inbound(new, 1)  # the peer switched
    pair.advance(1.5)
    assert pair.a.sas.ipsec == [new]
    # a peer that never switches: the old SA goes at REKEY_RETIRE_MAX all the same
    third = _rekey_now(pair, new)
    inbound(new, 50)
    pair.advance(REKEY_RETIRE_GRACE + 1)
    assert new in pair.a.sas.ipsec
    pair.advance(REKEY_RETIRE_MAX)
    assert pair.a.sas.ipsec == [third]


def test_the_new_outbound_sa_waits_until_the_peer_sends_on_the_new_one(h: Any) -> None:
    """A loaded peer has not processed HASH(3) after REKEY_OUTBOUND_DELAY: its packets still
    arrive on the old SA only, so our new outbound SA waits; the peer's first packet on the new
    SA lets it in."""
    from ike.exchange.install import REKEY_OUTBOUND_DELAY

    pair, old = _up_short(h)
    new = _rekey_now(pair, old)
    a_addr = ipaddress.ip_address(h.A)
    pair.ka.stats[(a_addr, old.protocols[0].spi_in, 3)] = SAStats(300, 3, 0, 0)
    pair.advance(REKEY_OUTBOUND_DELAY + 0.5)
    assert new.pending_out  # still held: the peer has not switched
    pair.ka.stats[(a_addr, new.protocols[0].spi_in, 3)] = SAStats(100, 1, 0, 0)
    pair.advance(0.5)
    assert not new.pending_out
    assert (ipaddress.ip_address(h.B), new.protocols[0].spi_out, 3) in pair.ka.sas


def test_the_peers_first_packet_on_the_new_sa_ends_the_hold_early(h: Any) -> None:
    """A peer that processed HASH(3) at once (pluto, or a quick charon) already sends on the new
    SA: our new outbound SA follows within REKEY_OUTBOUND_POLL instead of waiting the whole
    REKEY_OUTBOUND_DELAY, so both directions leave the old generation together."""
    from ike.exchange.install import REKEY_OUTBOUND_DELAY, REKEY_OUTBOUND_POLL

    pair, old = _up_short(h)
    new = _rekey_now(pair, old)
    a_addr = ipaddress.ip_address(h.A)
    pair.advance(REKEY_OUTBOUND_POLL)
    assert new.pending_out  # nothing from the peer on the new SA yet: still held
    pair.ka.stats[(a_addr, new.protocols[0].spi_in, 3)] = SAStats(100, 1, 0, 0)
    pair.advance(REKEY_OUTBOUND_POLL)
    assert not new.pending_out and 2 * REKEY_OUTBOUND_POLL < REKEY_OUTBOUND_DELAY
    assert (ipaddress.ip_address(h.B), new.protocols[0].spi_out, 3) in pair.ka.sas


def test_the_old_sa_expiring_lets_the_held_outbound_sa_in_at_once(h: Any) -> None:
    """The kernel's hard expiry takes the old SAs while our rekey still holds its new outbound
    SA back (a slow rekey started at the soft expiry, 90 %): the held SA must go in at that
    moment, not REKEY_OUTBOUND_DELAY later, or the flow has no outbound SA in between."""
    pair, old = _up_short(h)
    new = _rekey_now(pair, old)
    assert new.pending_out
    mark = len(pair.ka.commands)
    src, dst = ipaddress.ip_address(h.B), ipaddress.ip_address(h.A)
    pair.a.expire(Expire(3, old.protocols[0].spi_in, src, dst, hard=True), pair.now)
    assert not new.pending_out and new.out_at is None
    assert _outbound_swapped_in_order(pair.ka.commands[mark:], old, new)
    assert pair.a.sas.ipsec == [new]
    assert (ipaddress.ip_address(h.B), new.protocols[0].spi_out, 3) in pair.ka.sas


def test_phase1_lifetime_expires(h: Any) -> None:
    # a connection neither side keeps up: its ISAKMP SA just expires (an active one is
    # renegotiated first: tests/engine/test_lifecycle.py)
    pair = h.make_pair(h.make_conf("a", more=AH_ESP, p1="p1-short", active=False),
                       h.make_conf("b", more=AH_ESP, p1="p1-short"), use_keynote=False)
    pair.a.connect("conn", pair.now)
    pair.flush()
    assert [type(e) for e in pair.events("a")] == [Phase1Done, Phase2Done]
    pair.events("b")
    pair.advance(121)
    assert not pair.a.sas.isakmp and not pair.b.sas.isakmp
    assert len(pair.a.sas.ipsec) == 1  # IPsec SAs outlive their ISAKMP SA, as in isakmpd
    kinds = [e.kind for e in pair.events("b") if isinstance(e, SADeleted)]
    assert kinds == ["isakmp"]


def test_kernel_expire_soft_and_hard(h: Any) -> None:
    pair = _up(h)
    [ia] = pair.a.sas.ipsec
    spi = ia.protocols[0].spi_in
    src, dst = ipaddress.ip_address(h.B), ipaddress.ip_address(h.A)
    pair.a.expire(Expire(3, spi, src, dst, hard=False), pair.now)
    pair.flush()
    pair.advance(REKEY_RETIRE_GRACE)  # the replaced SA is retired shortly after the rekey
    assert len(pair.a.sas.ipsec) == 1 and pair.a.sas.ipsec[0] is not ia  # renegotiated
    [ia] = pair.a.sas.ipsec
    # a hard limit: the kernel deletes the SA itself, then says so
    del pair.ka.sas[(dst, ia.protocols[0].spi_in, 3)]
    pair.a.expire(Expire(3, ia.protocols[0].spi_in, src, dst, hard=True), pair.now)
    pair.flush()
    assert not pair.a.sas.ipsec and not pair.b.sas.ipsec
    assert not pair.ka.sas and not pair.kb.sas


def test_acquire_starts_quick_mode_without_flows(h: Any) -> None:
    pair = h.make_pair(h.make_conf("a"), h.make_conf("b"), use_keynote=False)
    sel = TrafficSelector(ipaddress.ip_network("192.168.1.0/24"),
                          ipaddress.ip_network("192.168.2.0/24"))
    pair.a.acquire(Acquire(42, sel, sel, ipaddress.ip_address(h.A),
                           ipaddress.ip_address(h.B), 3), pair.now)
    pair.flush()
    assert [type(e) for e in pair.events("a")] == [Phase1Done, Phase2Done]
    out = [c for c in pair.ka.commands if isinstance(c, AddSA) and not c.inbound]
    assert out[0].acquire_seq == 42
    assert not [c for c in pair.ka.commands if isinstance(c, AddFlow)]


def test_vendor_ids_sent_and_recognised(h: Any) -> None:
    from ike.exchange.vendor import DPD, OPENBSD
    from ike.wire import Message, VendorId

    pair = _up(h)
    mm1 = Message.decode(pair.wire[0][1])
    assert [v.data for v in mm1.all(VendorId)] == [OPENBSD, DPD]
    [sa_b] = pair.b.sas.isakmp.values()
    assert sa_b.vendor_ids == {"openbsd", "dpd"}


def test_dpd_r_u_there_is_acknowledged(h: Any) -> None:
    from ike.doi.constants import ProtocolId
    from ike.events import NotifyReceived
    from ike.exchange.informational import protected
    from ike.wire import Notify, NotifyType

    pair = _up(h)
    [sa_a] = pair.a.sas.isakmp.values()
    ping = Notify(NotifyType.R_U_THERE, ProtocolId.ISAKMP, sa_a.cookies, b"\x00\x00\x00\x07")
    pair.a.queue(protected(pair.a, sa_a, [ping]), sa_a.local, sa_a.peer)
    pair.flush()
    [ack] = [e for e in pair.events("a") if isinstance(e, NotifyReceived)]
    assert ack.notify == NotifyType.R_U_THERE_ACK and ack.authenticated
    assert ack.data == b"\x00\x00\x00\x07"


def test_commit_bit_is_echoed(h: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from ike.exchange.quick import QuickMode
    from ike.wire import Flags, Message

    real = QuickMode.start

    def committing(self: QuickMode, now: float, connection: str) -> None:
        self.he_committed = True  # as if we set it: every message of ours carries it
        real(self, now, connection)

    monkeypatch.setattr(QuickMode, "start", committing)
    pair = _up(h)
    qm = [Message.decode(d) for _s, d in pair.wire if d[18] == 32]
    assert all(m.flags & Flags.COMMIT for m in qm)  # QM2 echoes the initiator's bit


def test_cleartext_of_encrypted_messages_for_captures(h: Any) -> None:
    from ike.wire import Flags, Hash, Identification, Message

    pair = h.make_pair(h.make_conf("a"), h.make_conf("b"), use_keynote=False)
    pair.a.capture_cleartext = pair.b.capture_cleartext = True
    pair.a.start(pair.now)
    pair.flush()
    encrypted = [d for _s, d in pair.wire if d[19] & 1]
    assert len(encrypted) == 5  # MM5, MM6, QM1-3
    for data in encrypted:
        for engine in (pair.a, pair.b):
            clear = engine.cleartext(data)
            assert clear is not None
            msg = Message.decode(clear)
            assert not msg.flags & Flags.ENC
            assert msg.get(Hash) is not None or msg.get(Identification) is not None
    assert pair.a.cleartext(pair.wire[0][1]) is None


def _cert(subject: str, key: Any, issuer: str, issuer_key: Any) -> Any:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=3650))
            .sign(issuer_key, hashes.SHA256()))


def test_rsa_certificates_with_dn_ids(h: Any) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    from ike.auth import MemoryAuth

    ca_key, ka, kb = h.rsa_key("ca"), h.rsa_key("a"), h.rsa_key("b")
    ca = _cert("Test CA", ca_key, "Test CA", ca_key)
    cert_a, cert_b = _cert("a", ka, "Test CA", ca_key), _cert("b", kb, "Test CA", ca_key)
    dn_a = cert_a.subject.public_bytes().hex()
    dn_b = cert_b.subject.public_bytes().hex()
    ids = f"""[dn-a]
ID-type=                DER_ASN1_DN
Name=                   {dn_a}
[dn-b]
ID-type=                DER_ASN1_DN
Name=                   {dn_b}
"""
    p1 = "AES-128-SHA-GRP14-RSA_SIG"
    pair = h.make_pair(h.make_conf("a", p1=p1, extra_peer="ID= dn-a\nRemote-ID= dn-b", more=ids),
                       h.make_conf("b", p1=p1, extra_peer="ID= dn-b\nRemote-ID= dn-a", more=ids),
                       use_keynote=False)
    pair.a.auth = MemoryAuth(keys={dn_a: ka}, certs={dn_a: [cert_a.public_bytes(Encoding.DER)]},
                             trusted_issuers=[ca])
    pair.b.auth = MemoryAuth(keys={dn_b: kb}, certs={dn_b: [cert_b.public_bytes(Encoding.DER)]},
                             trusted_issuers=[ca])
    pair.a.start(pair.now)
    pair.flush()
    assert [type(e) for e in pair.events("b")] == [Phase1Done, Phase2Done]
    [sa_b] = pair.b.sas.isakmp.values()
    assert "DN:/CN=a" in sa_b.principals and sa_b.peer_dn == "/CN=a"
    assert any(p.startswith("rsa-hex:") for p in sa_b.principals)


def test_local_address_learnt_from_the_answer(h: Any) -> None:
    conf_a = h.make_conf("a")
    with conf_a.transaction() as t:
        t.remove("peer", "Local-address")
    pair = h.make_pair(conf_a, h.make_conf("b"), use_keynote=False)
    pair.a.start(pair.now)
    [(mm1, local, _peer)] = pair.a.datagrams_to_send(pair.now)
    assert local == ("0.0.0.0", 500)
    pair.b.receive_datagram(mm1, (h.A, 500), (h.B, 500), pair.now)
    pair.flush()
    assert [type(e) for e in pair.events("b")] == [Phase1Done, Phase2Done]
    [sa_b] = pair.b.sas.isakmp.values()
    assert sa_b.peer_id is not None and bytes(sa_b.peer_id.data) == bytes([10, 0, 0, 1])


def test_aggressive_responder_finds_psk_by_initiator_id(h: Any) -> None:
    ids = """[id-a]
ID-type=                FQDN
Name=                   a.example.org
"""
    conf_a = h.make_conf("a", mode="AGGRESSIVE", extra_peer="ID= id-a", more=ids)
    conf_b = h.make_conf("b", mode="AGGRESSIVE", more="""[a.example.org]
Authentication=         mekmitasdigoat
[roadwarrior]
Phase=                  1
Configuration=          p1conf
""")
    with conf_b.transaction() as t:
        t.remove("Phase 1", h.A)
        t.set("Phase 1", "Default", "roadwarrior", override=True)
    pair = h.make_pair(conf_a, conf_b, use_keynote=False)
    pair.a.start(pair.now)
    pair.flush()
    assert [type(e) for e in pair.events("b")] == [Phase1Done, Phase2Done]
    [sa_b] = pair.b.sas.isakmp.values()
    assert sa_b.name == "roadwarrior"


def test_certificate_from_an_untrusted_ca_is_refused(h: Any) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    from ike.auth import MemoryAuth
    from ike.events import ExchangeFailed
    from ike.wire import NotifyType

    ca_key, other_key, ka, kb = (h.rsa_key(n) for n in ("ca", "other", "a", "b"))
    ca = _cert("Test CA", ca_key, "Test CA", ca_key)
    rogue = _cert("a", ka, "Other CA", other_key)  # same name, wrong issuer
    cert_b = _cert("b", kb, "Test CA", ca_key)
    p1 = "AES-128-SHA-GRP14-RSA_SIG"
    pair = h.make_pair(h.make_conf("a", p1=p1), h.make_conf("b", p1=p1), use_keynote=False)
    pair.a.auth = MemoryAuth(keys={h.A: ka}, certs={h.A: [rogue.public_bytes(Encoding.DER)]},
                             trusted_issuers=[ca])
    pair.b.auth = MemoryAuth(keys={h.B: kb}, certs={h.B: [cert_b.public_bytes(Encoding.DER)]},
                             trusted_issuers=[ca])
    pair.a.start(pair.now)
    pair.flush()
    [fail] = [e for e in pair.events("b") if isinstance(e, ExchangeFailed)]
    assert fail.notify == NotifyType.INVALID_CERTIFICATE
    assert not pair.b.sas.isakmp


def test_selectors_from_every_client_id_type() -> None:
    from ike.exchange.connections import network as _net

    assert str(_net(bytes([10, 0, 0, 5]), 1, "h")) == "10.0.0.5/32"
    assert str(_net(bytes([10, 1, 2, 3, 255, 255, 0, 0]), 4, "h")) == "10.1.0.0/16"
    assert str(_net(bytes([10, 0, 0, 5, 10, 0, 0, 9]), 7, "h")) == "10.0.0.0/28"  # range
    assert str(_net(b"peer.example.org", 2, "192.0.2.1")) == "192.0.2.1/32"  # names: the host
    assert str(_net(bytes([10, 1, 0, 0, 255, 0, 255, 0]), 4, "192.0.2.1")) == "192.0.2.1/32"
    v6 = bytes.fromhex("20010db8" + "00" * 12 + "ffffffff" + "00" * 12)
    assert str(_net(v6, 6, "h")) == "2001:db8::/32"


def test_ipv6_subnet_client_ids(h: Any) -> None:
    nets = """[net6-a]
ID-type=                IPV6_ADDR_SUBNET
Network=                2001:db8:a::
Netmask=                ffff:ffff:ffff::
[net6-b]
ID-type=                IPV6_ADDR_SUBNET
Network=                2001:db8:b::
Netmask=                ffff:ffff:ffff::
"""
    addrs = ("fd00::1", "fd00::2")
    conf_a = h.make_conf("a", more=nets, addrs=addrs)
    conf_b = h.make_conf("b", more=nets, addrs=addrs)
    for conf, local, remote in ((conf_a, "net6-a", "net6-b"), (conf_b, "net6-b", "net6-a")):
        with conf.transaction() as t:
            t.set("conn", "Local-ID", local, override=True)
            t.set("conn", "Remote-ID", remote, override=True)
    pair = h.make_pair(conf_a, conf_b, use_keynote=False)
    pair.a.start(pair.now)
    pair.flush()
    assert [type(e) for e in pair.events("b")] == [Phase1Done, Phase2Done]
    out = [c for c in pair.ka.commands if isinstance(c, AddSA) and not c.inbound]
    assert out[0].selector is not None
    assert str(out[0].selector.src) == "2001:db8:a::/48"
    assert str(out[0].selector.dst) == "2001:db8:b::/48"


def test_acquire_picks_the_connection_whose_ids_cover_the_flow(h: Any) -> None:
    more = """[conn2]
Phase=                  2
ISAKMP-peer=            peer
Configuration=          qmconf
Local-ID=               net-{mine}2
Remote-ID=              net-{theirs}2
[net-a2]
ID-type=                IPV4_ADDR_SUBNET
Network=                172.16.1.0
Netmask=                255.255.255.0
[net-b2]
ID-type=                IPV4_ADDR_SUBNET
Network=                172.16.2.0
Netmask=                255.255.255.0
"""
    conf_a = h.make_conf("a", more=more.format(mine="a", theirs="b"))
    conf_b = h.make_conf("b", more=more.format(mine="b", theirs="a"))
    with conf_a.transaction() as t:
        t.set("Phase 2", "Connections", "conn,conn2", override=True)
    with conf_b.transaction() as t:
        t.set("Phase 2", "Passive-Connections", "conn,conn2", override=True)
    pair = h.make_pair(conf_a, conf_b, use_keynote=False)
    sel = TrafficSelector(ipaddress.ip_network("172.16.1.5/32"),
                          ipaddress.ip_network("172.16.2.9/32"), 6, 0, 80)
    pair.a.acquire(Acquire(7, sel, sel, ipaddress.ip_address(h.A),
                           ipaddress.ip_address(h.B), 3), pair.now)
    pair.flush()
    done = [e for e in pair.events("a") if isinstance(e, Phase2Done)]
    assert [e.name for e in done] == ["conn2"]
    assert [e.name for e in pair.events("b") if isinstance(e, Phase2Done)] == ["conn2"]


def test_kernel_and_engine_soft_expiry_rekey_once(h: Any) -> None:
    pair = _up(h, suites="qm-short")
    [ia] = pair.a.sas.ipsec
    spi = ia.protocols[0].spi_in
    src, dst = ipaddress.ip_address(h.B), ipaddress.ip_address(h.A)
    out = ia.protocols[0].spi_out
    # the kernel reports the soft limit of both SAs of the bundle, one after the other
    pair.a.expire(Expire(3, spi, src, dst, hard=False), pair.now)
    pair.a.expire(Expire(3, out, dst, src, hard=False), pair.now)
    pair.flush()
    pair.advance(30)
    rekeys = [e for e in pair.events("a") if isinstance(e, Phase2Done)]
    assert len(rekeys) == 1


def test_dpd_probes_an_idle_peer_and_gives_a_dead_one_up(h: Any) -> None:
    from ike.events import NotifyReceived
    from ike.wire import NotifyType

    pair = h.make_pair(h.make_conf("a", more="[General]\nDPD-check-interval= 10\n"),
                       h.make_conf("b"), use_keynote=False)
    pair.a.start(pair.now)
    pair.flush()
    pair.events("a"), pair.events("b")
    pair.advance(11)  # idle: R-U-THERE, answered
    assert [e.notify for e in pair.events("b") if isinstance(e, NotifyReceived)] == [
        NotifyType.R_U_THERE]
    assert [e.notify for e in pair.events("a") if isinstance(e, NotifyReceived)] == [
        NotifyType.R_U_THERE_ACK]
    assert pair.a.sas.isakmp and pair.a.sas.ipsec
    pair.drop = lambda side, n, data: True  # the link goes down
    pair.advance(10 + 6 * 5 + 1)
    reasons = {(e.kind, e.reason) for e in pair.events("a") if isinstance(e, SADeleted)}
    assert reasons == {("ipsec", "DPD: peer dead"), ("isakmp", "DPD: peer dead")}
    assert not pair.a.sas.ipsec and not pair.ka.sas
    # the active connection is negotiated afresh (its Main Mode now waits for the peer)
    [fresh] = pair.a.sas.isakmp.values()
    assert fresh.initiator and fresh.state.value == "larval"
    assert [n for waiting in pair.a.pending.values() for n, _seq in waiting] == ["conn"]


def test_dpd_sends_nothing_while_traffic_flows(h: Any) -> None:
    from ike.events import NotifyReceived
    from ike.kernel.interface import SAStats

    pair = h.make_pair(h.make_conf("a", more="[General]\nDPD-check-interval= 10\n"),
                       h.make_conf("b"), use_keynote=False)
    pair.a.start(pair.now)
    pair.flush()
    pair.events("a"), pair.events("b")
    [ia] = pair.a.sas.ipsec
    key = (ipaddress.ip_address(h.A), ia.protocols[0].spi_in, 3)
    for _ in range(3):
        pair.ka.stats[key] = SAStats(1000, 10, int(pair.now), int(pair.now) + 5)
        pair.advance(10)
    assert not [e for e in pair.events("b") if isinstance(e, NotifyReceived)]
    assert pair.a.sas.isakmp

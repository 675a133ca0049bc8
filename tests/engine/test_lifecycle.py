"""SA lifecycle: ISAKMP SAs of active connections renegotiated at soft expiry (the old one
deleted, Phase 2 untouched), passive ones left to expire, and per-SA deletion (FIFO ``d``)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from ike.engine import REKEY_RETIRE_GRACE
from ike.events import Phase1Done, Phase2Done, SADeleted
from ike.kernel.interface import Expire
from ike.wire import ExchangeType


@pytest.fixture
def up(pair_factory: Any) -> Any:
    """A pair with the connection up (a active, b passive), Phase 1 life 120 s if asked."""

    def build(p1: str = "AES-128-SHA-GRP14") -> Any:
        pair = pair_factory(p1=p1)
        pair.a.start(pair.now)
        pair.flush()
        for side in "ab":
            assert [type(e) for e in pair.events(side)] == [Phase1Done, Phase2Done]
        return pair

    return build


def test_active_isakmp_sa_is_renegotiated_and_the_old_one_deleted(h: Any, up: Any) -> None:
    pair = up("p1-short")
    [old_a] = pair.a.sas.isakmp.values()
    [ipsec_a], [ipsec_b] = pair.a.sas.ipsec, pair.b.sas.ipsec
    assert old_a.stayalive  # it carried Phase 2 of an active connection
    pair.advance(115)  # the soft limit lies between 85% and 95% of 120 s
    [new_a] = pair.a.sas.isakmp.values()
    [new_b] = pair.b.sas.isakmp.values()
    assert new_a is not old_a and new_a.cookies == new_b.cookies and new_a.stayalive
    events_a, events_b = pair.events("a"), pair.events("b")
    assert [type(e) for e in events_a if not isinstance(e, SADeleted)] == [Phase1Done]
    assert [(e.kind, e.reason, e.cookies) for e in events_a if isinstance(e, SADeleted)] == [
        ("isakmp", "replaced by rekey", old_a.cookies)]
    assert [(e.kind, e.reason) for e in events_b if isinstance(e, SADeleted)] == [
        ("isakmp", "peer DELETE")]
    # Phase 2 is untouched, and the next Quick Mode runs on the new ISAKMP SA
    assert pair.a.sas.ipsec == [ipsec_a] and pair.b.sas.ipsec == [ipsec_b]
    assert len(pair.ka.sas) == 2 and len(pair.kb.sas) == 2
    spi = ipsec_a.protocols[0].spi_in
    pair.a.expire(Expire(3, spi, ipaddress.ip_address(h.B), ipaddress.ip_address(h.A),
                         hard=False), pair.now)
    pair.flush()
    done = [e for e in pair.events("a") if isinstance(e, Phase2Done)]
    assert [e.cookies for e in done] == [new_a.cookies]
    assert len(pair.a.sas.ipsec) == 2  # the old SA lingers briefly for the peer's sake
    pair.advance(REKEY_RETIRE_GRACE)
    [again_a], [again_b] = pair.a.sas.ipsec, pair.b.sas.ipsec
    assert again_a.spis_out == again_b.spis_in
    # and the successor is renegotiated in its turn
    pair.advance(120)
    [third] = pair.a.sas.isakmp.values()
    assert third.cookies not in (old_a.cookies, new_a.cookies)
    assert set(pair.b.sas.isakmp) == {third.cookies}


def test_passive_side_never_renegotiates_phase1(up: Any) -> None:
    pair = up("p1-short")
    sent_by_b: list[bytes] = []

    def record(side: str, _n: int, data: bytes) -> bool:
        if side == "b":
            sent_by_b.append(data)
        return False

    pair.drop = record
    pair.advance(300)
    # b answered a's Phase 1 exchanges but started none (its connection is passive)
    assert all(not sa.initiator for sa in pair.b.sas.isakmp.values())
    starts = [d for d in sent_by_b
              if d[18] in (ExchangeType.ID_PROT, ExchangeType.AGGRESSIVE) and d[8:16] == bytes(8)]
    assert not starts


def test_a_phase1_only_peer_expires_without_successor(h: Any) -> None:
    pair = h.make_pair(h.make_conf("a", p1="p1-short", active=False),
                       h.make_conf("b", p1="p1-short"), use_keynote=False)
    pair.a.connect("peer", pair.now)  # Phase 1 only: nothing keeps it up
    pair.flush()
    [sa] = pair.a.sas.isakmp.values()
    assert not sa.stayalive
    pair.events("a")
    pair.advance(115)
    assert pair.a.sas.isakmp[sa.cookies].state.value == "fading"
    pair.advance(10)
    assert not pair.a.sas.isakmp and not pair.b.sas.isakmp
    # both hard limits fall at the same instant: b's own expiry or a's DELETE removes it
    [ev] = [e for e in pair.events("b") if isinstance(e, SADeleted)]
    assert ev.kind == "isakmp" and ev.reason in ("expired", "peer DELETE")
    assert not any(isinstance(e, Phase1Done) for e in pair.events("a"))


def test_delete_sa_removes_exactly_one_phase2_sa(h: Any, up: Any) -> None:
    pair = up()
    [old_b] = pair.b.sas.ipsec
    # a rekeys Phase 2 but its DELETE of the old SA is lost: b holds both SAs of "conn"
    pair.drop = lambda side, _n, data: side == "a" and data[18] == ExchangeType.INFO
    [ia] = pair.a.sas.ipsec
    pair.a.expire(Expire(3, ia.protocols[0].spi_in, ipaddress.ip_address(h.B),
                         ipaddress.ip_address(h.A), hard=False), pair.now)
    pair.flush()
    pair.drop = None
    pair.events("a"), pair.events("b")
    assert len(pair.b.sas.ipsec) == 2
    new_b = next(s for s in pair.b.sas.ipsec if s is not old_b)
    assert pair.b.delete_sa(old_b.cookies, old_b.message_id, pair.now)
    sent = pair.b.datagrams_to_send(pair.now)
    assert [d[18] for d, _l, _p in sent] == [ExchangeType.INFO]  # the DELETE to the peer
    assert pair.b.sas.ipsec == [new_b]
    assert len(pair.b.sas.isakmp) == 1  # the ISAKMP SA stays
    installed = {spi for (_dst, spi, _proto) in pair.kb.sas}
    assert installed == {p.spi_in for p in new_b.protocols} | {p.spi_out
                                                                for p in new_b.protocols}
    assert pair.kb.flows  # the flows passed to the new SA on the rekey and stay
    [ev] = [e for e in pair.events("b") if isinstance(e, SADeleted)]
    assert ev.spis == old_b.spis_in + old_b.spis_out
    # deleting the last SA of the connection takes its flows with it; unknown ones are refused
    assert pair.b.delete_sa(new_b.cookies, new_b.message_id, pair.now)
    assert not pair.kb.sas and not pair.kb.flows
    assert not pair.b.delete_sa(new_b.cookies, new_b.message_id, pair.now)
    assert not pair.b.delete_sa(bytes(16), None, pair.now)


def test_a_kernel_hard_expiry_deletes_the_rest_of_the_bundle_only(h: Any, up: Any) -> None:
    """The kernel removed the expired SA itself: the engine deletes the other direction and
    tells the peer, but asks for no delete the kernel can only answer with ESRCH."""
    from ike.kernel.interface import DeleteSA

    pair = up()
    [ia] = pair.a.sas.ipsec
    spi_in, spi_out = ia.protocols[0].spi_in, ia.protocols[0].spi_out
    a_addr, b_addr = ipaddress.ip_address(h.A), ipaddress.ip_address(h.B)
    pair.ka.sas.pop((a_addr, spi_in, 3))  # what the kernel's hard limit does, then says
    pair.ka.commands.clear()
    pair.a.expire(Expire(3, spi_in, b_addr, a_addr, hard=True), pair.now)
    deletes = [c for c in pair.ka.commands if isinstance(c, DeleteSA)]
    assert [(c.spi, c.dst) for c in deletes] == [(spi_out, b_addr)]
    assert not pair.ka.sas and pair.a.sas.ipsec == []
    [ev] = [e for e in pair.events("a") if isinstance(e, SADeleted)]
    assert ev.reason == "kernel hard expire"
    pair.flush()
    assert pair.b.sas.ipsec == []  # the peer got the DELETE


def test_delete_sa_phase1_by_cookies(up: Any) -> None:
    pair = up()
    [sa] = pair.a.sas.isakmp.values()
    assert pair.a.delete_sa(sa.cookies, None, pair.now)
    pair.flush()
    assert not pair.a.sas.isakmp and not pair.b.sas.isakmp
    assert len(pair.a.sas.ipsec) == 1 and len(pair.b.sas.ipsec) == 1


def test_connections_added_at_run_time_count_as_active(h: Any) -> None:
    pair = h.make_pair(h.make_conf("a", p1="p1-short", active=False),
                       h.make_conf("b", p1="p1-short"), use_keynote=False)
    added: list[str] = ["conn"]  # what the daemon's FIFO `c conn` keeps
    pair.a.active_hook = lambda: added
    pair.a.connect("conn", pair.now)
    pair.flush()
    [sa] = pair.a.sas.isakmp.values()
    assert sa.stayalive and pair.a.is_active("conn") and not pair.b.is_active("conn")
    pair.advance(115)
    [new] = pair.a.sas.isakmp.values()
    assert new is not sa


def test_passive_mode_initiates_nothing_not_even_rekeys(up: Any) -> None:
    pair = up("p1-short")
    pair.a.passive = True  # -S / FIFO "M passive"
    pair.a.connect("conn", pair.now)
    assert not pair.a.datagrams_to_send(pair.now)
    [sa] = pair.a.sas.isakmp.values()
    pair.advance(115)  # soft expiry: no successor
    assert list(pair.a.sas.isakmp.values()) == [sa] and sa.state.value == "fading"
    pair.a.passive = False
    pair.advance(10)  # hard expiry: the successor comes now, then the old SA goes
    [new] = pair.a.sas.isakmp.values()
    assert new is not sa and new.state.value == "ready"


def test_both_sides_active_renegotiate_phase1_once(pair_factory: Any) -> None:
    pair = pair_factory(p1="p1-short", active=True)
    pair.a.start(pair.now)
    pair.flush()
    [old_a], [old_b] = pair.a.sas.isakmp.values(), pair.b.sas.isakmp.values()
    assert old_a.stayalive and old_b.stayalive  # both keep the connection up
    pair.advance(116)  # past both soft limits (85-95% of 120 s)
    # the first side to reach its soft limit renegotiated; the other saw the old SA replaced
    # and did not start a second successor
    [new_a], [new_b] = pair.a.sas.isakmp.values(), pair.b.sas.isakmp.values()
    assert new_a.cookies == new_b.cookies != old_a.cookies
    phase1_starts = [d for side, d in pair.wire
                     if d[18] == ExchangeType.ID_PROT and d[8:16] == bytes(8)]
    assert len(phase1_starts) == 2  # the first negotiation and one successor

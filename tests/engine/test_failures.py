"""Every failure ends in the right notify and state, with nothing left behind."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from ike.events import ExchangeFailed, NotifyReceived, Phase1Done, Phase2Done, SADeleted
from ike.kernel.interface import AddSA, DeleteSA, GetSPI
from ike.wire import Message, NotifyType
from keynote import Session

POLICY_3DES_ONLY = """Authorizer: "POLICY"
Licensees: "passphrase:mekmitasdigoat"
Conditions: app_domain == "IPsec policy" && esp_present == "yes" &&
            esp_enc_alg == "3des" -> "true";
"""
POLICY_AES = POLICY_3DES_ONLY.replace('"3des"', '"aes"')


def policy(text: str) -> Any:
    def factory() -> Session:
        s = Session()
        s.add_assertions(text, trusted=True, source="isakmpd.policy")
        return s
    return factory


def _notifies(events: list[Any]) -> list[int]:
    return [e.notify for e in events if isinstance(e, NotifyReceived)]


def _failed(events: list[Any]) -> list[ExchangeFailed]:
    return [e for e in events if isinstance(e, ExchangeFailed)]


def _nothing_left(pair: Any) -> None:
    for engine, kernel in ((pair.a, pair.ka), (pair.b, pair.kb)):
        assert not engine.sas.ipsec
        assert not kernel.sas
        spis = [c.spi if isinstance(c, DeleteSA) else None for c in kernel.commands]
        got = [c for c in kernel.commands if isinstance(c, GetSPI)]
        assert len([s for s in spis if s is not None]) >= len(got)


def test_wrong_psk(h: Any) -> None:
    pair = h.make_pair(h.make_conf("a", psk="right"), h.make_conf("b", psk="wrong"),
                       use_keynote=False)
    pair.a.start(pair.now)
    pair.flush()
    ev_b = pair.events("b")
    [fail] = _failed(ev_b)
    assert fail.notify in (NotifyType.PAYLOAD_MALFORMED, NotifyType.INVALID_HASH_INFORMATION)
    assert not pair.b.sas.isakmp
    ev_a = pair.events("a")
    assert _notifies(ev_a) == [fail.notify]
    assert not [e for e in ev_a if isinstance(e, NotifyReceived) and e.authenticated]
    pair.advance(121)
    ev_a = pair.events("a")
    assert {e.exchange for e in _failed(ev_a)} >= {"main"}
    assert not pair.a.sas.isakmp and not pair.a.exchanges and not pair.b.exchanges
    _nothing_left(pair)


def test_no_phase1_proposal(h: Any) -> None:
    pair = h.make_pair(h.make_conf("a", p1="AES-128-SHA-GRP14"), h.make_conf("b", p1="3DES-MD5"),
                       use_keynote=False)
    pair.a.start(pair.now)
    pair.flush()
    [fail] = _failed(pair.events("b"))
    assert fail.notify == NotifyType.NO_PROPOSAL_CHOSEN
    assert _notifies(pair.events("a")) == [NotifyType.NO_PROPOSAL_CHOSEN]
    assert not pair.b.sas.isakmp
    pair.advance(121)
    assert not pair.a.sas.isakmp and not pair.a.exchanges
    _nothing_left(pair)


def test_no_phase2_proposal(h: Any) -> None:
    more = """[qm-des]
Protocols=              qm-des-p
[qm-des-p]
PROTOCOL_ID=            IPSEC_ESP
Transforms=             qm-des-xf
[qm-des-xf]
TRANSFORM_ID=           DES
ENCAPSULATION_MODE=     TUNNEL
AUTHENTICATION_ALGORITHM= HMAC_SHA
"""
    pair = h.make_pair(h.make_conf("a", suites="qm-des", more=more), h.make_conf("b"),
                       use_keynote=False)
    pair.a.start(pair.now)
    pair.flush()
    ev_a, ev_b = pair.events("a"), pair.events("b")
    assert [type(e) for e in ev_b] == [Phase1Done, ExchangeFailed]
    assert _failed(ev_b)[0].notify == NotifyType.NO_PROPOSAL_CHOSEN
    assert NotifyType.NO_PROPOSAL_CHOSEN in _notifies(ev_a)
    [qm_fail] = [e for e in _failed(ev_a) if e.exchange == "quick"]
    assert qm_fail.notify == NotifyType.NO_PROPOSAL_CHOSEN
    assert not pair.a.exchanges or all(ex.finished for ex in pair.a.exchanges.values())
    _nothing_left(pair)


def test_policy_refusal_responder(h: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ike")
    pair = h.make_pair(h.make_conf("a"), h.make_conf("b"), use_keynote=True,
                       policy_factory=policy(POLICY_3DES_ONLY))
    pair.a.use_keynote = False
    pair.a.start(pair.now)
    pair.flush()
    ev_b = pair.events("b")
    assert _failed(ev_b)[0].notify == NotifyType.NO_PROPOSAL_CHOSEN
    assert "failed policy check" in caplog.text
    assert "isakmpd.policy:1" in caplog.text  # the trace names the deciding assertion
    assert "mekmitasdigoat" not in caplog.text  # the key itself is never logged
    ev_a = pair.events("a")
    assert [e.exchange for e in _failed(ev_a)] == ["quick"]
    _nothing_left(pair)


def test_policy_refusal_initiator(h: Any) -> None:
    pair = h.make_pair(h.make_conf("a"), h.make_conf("b"), use_keynote=True,
                       policy_factory=policy(POLICY_3DES_ONLY))
    pair.b.policy_factory = policy(POLICY_AES)
    pair.a.start(pair.now)
    pair.flush()
    ev_a, ev_b = pair.events("a"), pair.events("b")
    assert _failed(ev_a)[0].notify == NotifyType.NO_PROPOSAL_CHOSEN
    assert [e.exchange for e in _failed(ev_b)] == ["quick"]
    assert not [c for c in pair.ka.commands if isinstance(c, AddSA)]
    # the responder put its inbound SA in before answering (ike.exchange.install), never an
    # outbound one, and the failure took it out again (_nothing_left: the kernel is empty)
    added = [c for c in pair.kb.commands if isinstance(c, AddSA)]
    assert added and all(c.inbound for c in added)
    assert {c.spi for c in added} <= {c.spi for c in pair.kb.commands if isinstance(c, DeleteSA)}
    _nothing_left(pair)


def test_policy_accepts(h: Any) -> None:
    pair = h.make_pair(h.make_conf("a"), h.make_conf("b"), use_keynote=True,
                       policy_factory=policy(POLICY_AES))
    pair.a.start(pair.now)
    pair.flush()
    assert [type(e) for e in pair.events("b")] == [Phase1Done, Phase2Done]
    assert [type(e) for e in pair.events("a")] == [Phase1Done, Phase2Done]


def test_bad_quick_mode_hash(h: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from ike.exchange.quick import QuickMode

    real = QuickMode._hash

    def wrong(self: QuickMode, which: int, rest: bytes) -> bytes:
        digest = real(self, which, rest)
        return bytes(b ^ 1 for b in digest) if self.initiator and which == 1 else digest

    monkeypatch.setattr(QuickMode, "_hash", wrong)
    pair = h.make_pair(h.make_conf("a"), h.make_conf("b"), use_keynote=False)
    pair.a.start(pair.now)
    pair.flush()
    [fail] = _failed(pair.events("b"))
    assert fail.notify == NotifyType.INVALID_HASH_INFORMATION
    assert [e.notify for e in _failed(pair.events("a"))] == [
        NotifyType.INVALID_HASH_INFORMATION]
    _nothing_left(pair)


def test_bad_signature(h: Any) -> None:
    from ike.auth import MemoryAuth

    p1 = "AES-128-SHA-GRP14-RSA_SIG"
    pair = h.make_pair(h.make_conf("a", p1=p1), h.make_conf("b", p1=p1), use_keynote=False)
    ka, kb, other = h.rsa_key("a"), h.rsa_key("b"), h.rsa_key("other")
    pair.a.auth = MemoryAuth(keys={h.A: ka}, peer_keys={h.B: kb.public_key()})
    pair.b.auth = MemoryAuth(keys={h.B: kb}, peer_keys={h.A: other.public_key()})
    pair.a.start(pair.now)
    pair.flush()
    [fail] = _failed(pair.events("b"))
    assert fail.notify == NotifyType.INVALID_SIGNATURE
    assert not pair.b.sas.isakmp
    pair.advance(121)
    assert not pair.a.sas.isakmp
    _nothing_left(pair)


@pytest.mark.parametrize(("mode", "lost"), [
    ("ID_PROT", {2, 5, 8}),  # MM2 (answered again on MM1's repeat), MM5, QM2
    ("ID_PROT", {1, 4, 7}),  # MM1, MM4, QM1
    ("ID_PROT", {6, 9}),  # MM6 (resent on MM5's repeat) and QM3 (resent on QM2's repeat)
    ("AGGRESSIVE", {1, 5}),  # AM1 and QM2
    ("AGGRESSIVE", {2, 6}),  # AM2 (answered again on AM1's repeat) and QM3
])
def test_lost_messages_recovered_by_retransmission(h: Any, mode: str, lost: set[int]) -> None:
    pair = h.make_pair(h.make_conf("a", mode=mode), h.make_conf("b", mode=mode),
                       use_keynote=False)
    distinct: list[bytes] = []

    def drop(side: str, n: int, data: bytes) -> bool:
        """Lose the first copy of the k-th distinct message of the exchange, for k in lost."""
        if data in distinct:
            return False
        distinct.append(data)
        return len(distinct) in lost

    pair.drop = drop
    pair.a.start(pair.now)
    pair.flush()
    pair.advance(60)
    assert [type(e) for e in pair.events("a")] == [Phase1Done, Phase2Done]
    assert [type(e) for e in pair.events("b")] == [Phase1Done, Phase2Done]
    assert pair.a.sas.ipsec[0].protocols[0].enc_out == pair.b.sas.ipsec[0].protocols[0].enc_in


def test_lost_aggressive_message_3_is_not_recovered(h: Any) -> None:
    """As isakmpd: the answer to message 1 is not retransmitted, so a lost AM3 leaves the
    responder waiting until Exchange-max-time; then it fails and keeps nothing."""
    pair = h.make_pair(h.make_conf("a", mode="AGGRESSIVE"), h.make_conf("b", mode="AGGRESSIVE"),
                       use_keynote=False)
    pair.drop = lambda side, n, data: n == 3
    pair.a.start(pair.now)
    pair.flush()
    assert [type(e) for e in pair.events("a")] == [Phase1Done]
    pair.advance(121)
    assert [e.exchange for e in _failed(pair.events("b"))] == ["aggressive"]
    assert not pair.b.sas.isakmp and not pair.b.exchanges


def test_retransmission_backoff_and_give_up(h: Any) -> None:
    pair = h.make_pair(h.make_conf("a"), h.make_conf("b"), use_keynote=False)
    pair.drop = lambda side, n, data: True
    pair.a.start(pair.now)
    start = pair.now
    sent: list[float] = []
    pair.flush()
    sent.append(pair.now - start)
    while pair.now - start < 119:
        t = pair.a.get_timer()
        assert t is not None
        pair.now = t
        before = pair.count
        pair.a.handle_timer(t)
        pair.flush()
        if pair.count > before:
            sent.append(pair.now - start)
    assert sent == [0, 7, 16, 27]  # 7 s, 9 s, 11 s; then isakmpd gives up
    pair.advance(2)
    assert sorted(e.exchange for e in _failed(pair.events("a"))) == ["main", "quick"]
    assert not pair.a.sas.isakmp and not pair.a.exchanges


def test_truncated_and_garbage_datagrams_change_nothing(h: Any) -> None:
    pair = h.make_pair(h.make_conf("a"), h.make_conf("b"), use_keynote=False)
    pair.a.start(pair.now)
    [(mm1, local, peer)] = pair.a.datagrams_to_send(pair.now)
    for junk in (mm1[:27], mm1[:40], mm1[:-1], b"", b"\x00" * 28, mm1 + b"x"):
        pair.b.receive_datagram(junk, local, peer, pair.now)
    assert not pair.b.sas.isakmp and not pair.b.datagrams_to_send(pair.now)
    pair.b.receive_datagram(mm1, local, peer, pair.now)
    pair.flush()
    assert [type(e) for e in pair.events("a")] == [Phase1Done, Phase2Done]


def test_replayed_and_reordered_messages_are_dropped(h: Any) -> None:
    pair = h.make_pair(h.make_conf("a"), h.make_conf("b"), use_keynote=False)
    pair.a.start(pair.now)
    pair.flush()
    pair.events("a"), pair.events("b")
    sas_before = dict(pair.kb.sas)
    for side, data in list(pair.wire):
        target = pair.b if side == "a" else pair.a
        src = (h.A, 500) if side == "a" else (h.B, 500)
        dst = (h.B, 500) if side == "a" else (h.A, 500)
        target.receive_datagram(data, src, dst, pair.now)
    pair.flush()
    assert not _failed(pair.events("a")) and not _failed(pair.events("b"))
    assert len(pair.a.sas.isakmp) == len(pair.b.sas.isakmp) == 1
    assert len(pair.a.sas.ipsec) == len(pair.b.sas.ipsec) == 1
    assert pair.kb.sas == sas_before
    pair.advance(200)  # after the exchanges are forgotten, replays still do nothing
    qm1 = next(d for s, d in pair.wire if s == "a" and Message.decode(d).exchange_type == 32)
    pair.b.receive_datagram(qm1, (h.A, 500), (h.B, 500), pair.now)
    assert len(pair.b.sas.ipsec) == 1 and not pair.b.exchanges


def test_peer_delete(h: Any, caplog: pytest.LogCaptureFixture) -> None:
    pair = h.make_pair(h.make_conf("a"), h.make_conf("b"), use_keynote=False)
    pair.a.start(pair.now)
    pair.flush()
    pair.events("a"), pair.events("b")
    [named] = [s for _p, s in pair.b.sas.ipsec[0].spis_out]  # the DELETE names its inbound SA
    caplog.set_level(logging.INFO, logger="ike")
    pair.a.delete("conn", pair.now)
    pair.flush()
    [dl] = [e for e in pair.events("b") if isinstance(e, SADeleted)]
    assert dl.kind == "ipsec" and dl.reason == "peer DELETE"
    assert not pair.a.sas.ipsec and not pair.b.sas.ipsec
    assert not pair.ka.sas and not pair.kb.sas and not pair.ka.flows and not pair.kb.flows
    # an operator sees, without debugging on, which SA the peer removed
    assert f"peer {h.A} deleted IPsec SA conn (SPI {named:08x})" in caplog.text
    pair.a.delete("peer", pair.now)
    pair.flush()
    assert [e.kind for e in pair.events("b") if isinstance(e, SADeleted)] == ["isakmp"]
    assert not pair.a.sas.isakmp and not pair.b.sas.isakmp
    assert f"peer {h.A} deleted ISAKMP SA " in caplog.text


def test_policy_sees_filters_from_each_side(h: Any) -> None:
    def side(remote: str, local: str, initiator: str) -> str:
        return ('Authorizer: "POLICY"\nLicensees: "passphrase:mekmitasdigoat"\n'
                f'Conditions: remote_filter == "{remote}" && local_filter == "{local}" && '
                f'initiator == "{initiator}" && phase_1 == "main" && pfs == "no" && '
                'remote_negotiation_address ~= "^010\\\\.000\\\\.000\\\\.00[12]$" -> "true";\n')

    net_a, net_b = "192.168.001.000-192.168.001.255", "192.168.002.000-192.168.002.255"
    pair = h.make_pair(h.make_conf("a"), h.make_conf("b"), use_keynote=True,
                       policy_factory=policy(side(net_b, net_a, "yes")))
    pair.b.policy_factory = policy(side(net_a, net_b, "no"))
    pair.a.start(pair.now)
    pair.flush()
    assert [type(e) for e in pair.events("a")] == [Phase1Done, Phase2Done]
    assert [type(e) for e in pair.events("b")] == [Phase1Done, Phase2Done]


def test_broken_policy_refuses_without_crashing(h: Any, caplog: pytest.LogCaptureFixture) -> None:
    pair = h.make_pair(h.make_conf("a"), h.make_conf("b"), use_keynote=True,
                       policy_factory=policy('Authorizer: "POLICY"\nConditions: a ==== b;\n'))
    pair.a.use_keynote = False
    pair.a.start(pair.now)
    pair.flush()
    [fail] = _failed(pair.events("b"))
    assert fail.notify == NotifyType.NO_PROPOSAL_CHOSEN and "policy" in fail.reason
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_leftover_key_length_refuses_phase1(h: Any) -> None:
    more = """[aes-nokl]
ENCRYPTION_ALGORITHM=   AES_CBC
HASH_ALGORITHM=         SHA
AUTHENTICATION_METHOD=  PRE_SHARED
GROUP_DESCRIPTION=      MODP_2048
Life=                   LIFE_MAIN_MODE
"""
    pair = h.make_pair(h.make_conf("a", p1="aes-nokl", more=more),
                       h.make_conf("b", p1="AES-128-SHA-GRP14"), use_keynote=False)
    pair.a.start(pair.now)
    pair.flush()
    [fail] = _failed(pair.events("b"))
    assert fail.notify == NotifyType.NO_PROPOSAL_CHOSEN and "KEY_LENGTH" in fail.reason


def test_responder_inbound_sa_does_not_outlive_a_failed_exchange(h: Any) -> None:
    """HASH(3) never arrives: the responder fails at Exchange-max-time and removes the inbound
    SA it installed before answering; its kernel is left as before."""
    pair = h.make_pair(h.make_conf("a"), h.make_conf("b"), use_keynote=False)
    quick: list[int] = []

    def drop(side: str, n: int, data: bytes) -> bool:
        """Lose every Quick Mode message of a's after the first (HASH(3) and its resends)."""
        if side != "a" or data[18] != 32:  # the exchange type byte of the ISAKMP header
            return False
        quick.append(n)
        return len(quick) > 1

    pair.drop = drop
    pair.a.start(pair.now)
    pair.flush()
    inbound = [c for c in pair.kb.commands if isinstance(c, AddSA)]
    assert inbound and all(c.inbound for c in inbound)  # in before message 2 left
    assert {(c.dst, c.spi, int(c.proto)) for c in inbound} <= set(pair.kb.sas)
    pair.advance(125)  # past Exchange-max-time (120 s)
    assert [e.exchange for e in _failed(pair.events("b"))] == ["quick"]
    assert not pair.kb.sas and not pair.b.sas.ipsec and not pair.b.installed
    deleted = {c.spi for c in pair.kb.commands if isinstance(c, DeleteSA)}
    assert {c.spi for c in inbound} <= deleted

"""Engine.get_timer from its deadline heaps agrees, at every call, with a scan of every exchange
and SA (what it computed before the heaps): through rekeys of both phases, DPD giving a dead
peer up, NAT-keepalives, retransmissions and an exchange's max time."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ike import timers
from ike.engine import Engine
from ike.exchange import transaction


def scan(engine: Engine) -> float | None:
    """Every deadline of every exchange and SA, the earliest one (the old get_timer)."""
    found: list[float] = []
    for ex in engine.exchanges.values():
        if not ex.finished:
            found.append(ex.deadline)
        found += [t for t in (ex.retransmit_at, ex.linger_until) if t is not None]
    for sa in engine.sas.isakmp.values():
        found += [t for t in (sa.soft_at, sa.hard_at) if t is not None]
        if sa.dpd is not None:
            found.append(sa.dpd.next_at)
        if sa.nat is not None and sa.nat.keepalive_at is not None:
            found.append(sa.nat.keepalive_at)
    for ipsa in engine.sas.ipsec:
        found += [t for t in (ipsa.soft_at, ipsa.hard_at, ipsa.out_at) if t is not None]
    if engine.cfg_states and (t := transaction.next_deadline(engine)) is not None:
        found.append(t)
    return min(found, default=None)


@pytest.fixture(params=[-1, None], ids=["heap", "default"])
def checked(request: pytest.FixtureRequest,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Every get_timer call checked against ``scan``, with the heap always in use or as by
    default (a scan of these few SAs); yields the count of calls."""
    if request.param is not None:
        monkeypatch.setattr(timers, "SCAN_MAX", request.param)
    calls = [0]
    real = Engine.get_timer

    def get_timer(engine: Engine) -> float | None:
        got = real(engine)
        assert got == scan(engine)
        calls[0] += 1
        return got

    monkeypatch.setattr(Engine, "get_timer", get_timer)
    yield calls
    assert calls[0] > 10


def test_only_the_exchange_base_gives_exchange_deadlines_a_time() -> None:
    """Exchange deadlines are not hooked: ike.exchange.base tells the timer heap when it sets
    one.  Anywhere else they may only be cleared."""
    root = Path(__file__).resolve().parents[2] / "ike"
    setting = re.compile(r"\.(retransmit_at|deadline|linger_until)\s*=(?!=)(?!\s*None\b)")
    offenders = [f"{path.relative_to(root)}:{n}" for path in root.rglob("*.py")
                 if path.name != "base.py"
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if setting.search(line)]
    assert offenders == []


def test_rekeys_of_both_phases(h: Any, checked: list[int]) -> None:
    pair = h.make_pair(h.make_conf("a", p1="p1-short", suites="qm-short"),
                       h.make_conf("b", p1="p1-short", suites="qm-short"),
                       use_keynote=False)
    pair.a.start(pair.now)
    pair.flush()
    first = pair.a.sas.ipsec[0]
    pair.advance(500)  # four lifetimes of each phase: soft expiry, successors, retirement
    assert first not in pair.a.sas.ipsec and len(pair.a.sas.ipsec) == 1
    assert len(pair.a.sas.isakmp) == 1


def test_dpd_gives_a_dead_peer_up(h: Any, checked: list[int]) -> None:
    pair = h.make_pair(h.make_conf("a", more="[General]\nDPD-check-interval= 10\n"),
                       h.make_conf("b"), use_keynote=False)
    pair.a.start(pair.now)
    pair.flush()
    pair.advance(11)
    pair.drop = lambda side, n, data: True
    pair.advance(10 + 6 * 5 + 1)
    assert not pair.a.sas.ipsec
    pair.advance(300)  # the fresh Main Mode retransmits, gives up and times out
    assert not pair.a.exchanges or all(ex.finished for ex in pair.a.exchanges.values())


def test_lost_messages_retransmissions_and_max_time(h: Any, checked: list[int]) -> None:
    pair = h.make_pair(h.make_conf("a"), h.make_conf("b"), use_keynote=False)
    pair.drop = lambda side, n, data: n % 3 == 0  # every third datagram is lost
    pair.a.start(pair.now)
    pair.flush()
    pair.advance(400)
    assert pair.a.sas.ipsec or not pair.a.exchanges


def test_nat_keepalives(h: Any, checked: list[int]) -> None:
    conf_a = h.make_conf("a", more="[General]\nNAT-T-Keepalive= 7\n")
    conf_b = h.make_conf("b", more="[General]\nNAT-T-Keepalive= 7\n")
    pair = h.make_pair(conf_a, conf_b, use_keynote=False, nat_traversal=True)
    pair.a.start(pair.now)
    pair.flush()
    [sa] = pair.a.sas.isakmp.values()
    assert sa.nat is not None
    sa.nat.local_behind = True  # as if NAT-D had found us behind a NAT
    from ike.exchange import natt

    natt.arm_keepalive(pair.a, sa, pair.now)
    assert pair.a.get_timer() == pair.now + 7
    pair.advance(30)
    assert sa.nat.keepalive_at == pytest.approx(pair.now + 5)  # sent at +7, +14, +21, +28

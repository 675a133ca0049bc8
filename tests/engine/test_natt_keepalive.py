"""NAT-keepalives (RFC 3948 2.3) in memory: only the side behind the NAT sends them, one 0xFF
byte from its NAT-T port every ``NAT-T-Keepalive`` seconds."""

from __future__ import annotations

from typing import Any

import pytest

from ike.events import Phase2Done

NAT = "192.0.2.99"
PORTS = {500: 31000, 4500: 31001}


def _deliver(pair: Any, h: Any, sent: list[tuple[str, bytes, Any, Any]]) -> None:
    """Move datagrams both ways; a's appear to come from the NAT."""
    back = {v: k for k, v in PORTS.items()}
    for _ in range(50):
        moved = False
        for data, local, peer in pair.a.datagrams_to_send(pair.now):
            moved = True
            sent.append(("a", data, local, peer))
            pair.b.receive_datagram(data, (NAT, PORTS[local[1]]), peer, pair.now)
        for data, local, peer in pair.b.datagrams_to_send(pair.now):
            moved = True
            sent.append(("b", data, local, peer))
            pair.a.receive_datagram(data, local, (h.A, back[peer[1]]), pair.now)
        if not moved:
            return
    raise AssertionError("no end")


@pytest.mark.parametrize(("interval", "expected"), [(None, 3), (7, 8), (0, 0)])
def test_only_the_side_behind_nat_sends_keepalives(h: Any, interval: int | None,
                                                   expected: int) -> None:
    general = "" if interval is None else f"[General]\nNAT-T-Keepalive= {interval}\n"
    conf_a = h.make_conf("a", more=general)
    conf_b = h.make_conf("b", addrs=(NAT, h.B), more=general)
    pair = h.make_pair(conf_a, conf_b, use_keynote=False, nat_traversal=True)
    pair.a.start(pair.now)
    sent: list[tuple[str, bytes, Any, Any]] = []
    _deliver(pair, h, sent)
    assert any(isinstance(e, Phase2Done) for e in pair.events("a"))
    sent.clear()
    end = pair.now + 60
    while (t := pair.a.get_timer()) is not None and t <= end:
        pair.now = t
        pair.a.handle_timer(t)
        pair.b.handle_timer(t)
        _deliver(pair, h, sent)
    keepalives = [s for s in sent if s[1] == b"\xff"]
    assert len(keepalives) == expected
    assert all(side == "a" and local == (h.A, 4500) and peer == (h.B, 4500)
               for side, _d, local, peer in keepalives)
    assert len(pair.a.sas.ipsec) == len(pair.b.sas.ipsec) == 1

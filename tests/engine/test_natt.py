"""NAT traversal in memory: the initiator behind a NAT that rewrites its address and ports."""

from __future__ import annotations

from typing import Any

import pytest

from ike.events import Phase1Done, Phase2Done
from ike.kernel.interface import AddSA
from ike.wire import Message, NatD

NAT = "192.0.2.99"
PORTS = {500: 31000, 4500: 31001}


def _run_through_nat(pair: Any, h: Any) -> list[tuple[str, Any, Any, bytes]]:
    """Deliver datagrams both ways; a's are rewritten to come from the NAT's address/ports."""
    back = {v: k for k, v in PORTS.items()}
    seen: list[tuple[str, Any, Any, bytes]] = []
    for _ in range(50):
        moved = False
        for data, local, peer in pair.a.datagrams_to_send(pair.now):
            moved = True
            src = (NAT, PORTS[local[1]])
            seen.append(("a", src, peer, data))
            pair.b.receive_datagram(data, src, peer, pair.now)
        for data, local, peer in pair.b.datagrams_to_send(pair.now):
            moved = True
            assert peer[0] == NAT
            dst = (h.A, back[peer[1]])
            seen.append(("b", local, dst, data))
            pair.a.receive_datagram(data, local, dst, pair.now)
        if not moved:
            return seen
    raise AssertionError("no end")


@pytest.mark.parametrize("mode", ["ID_PROT", "AGGRESSIVE"])
def test_initiator_behind_nat_floats_and_encapsulates(h: Any, mode: str) -> None:
    conf_a = h.make_conf("a", mode=mode)
    conf_b = h.make_conf("b", mode=mode, addrs=(NAT, h.B))
    pair = h.make_pair(conf_a, conf_b, use_keynote=False, nat_traversal=True)
    pair.a.start(pair.now)
    seen = _run_through_nat(pair, h)
    assert [type(e) for e in pair.events("a")] == [Phase1Done, Phase2Done]
    assert [type(e) for e in pair.events("b")] == [Phase1Done, Phase2Done]
    [sa_a], [sa_b] = pair.a.sas.isakmp.values(), pair.b.sas.isakmp.values()
    assert sa_a.nat is not None and sa_a.nat.local_behind and not sa_a.nat.peer_behind
    assert sa_b.nat is not None and sa_b.nat.peer_behind and not sa_b.nat.local_behind
    assert sa_a.local == (h.A, 4500) and sa_a.peer == (h.B, 4500)
    assert sa_b.peer == (NAT, 31001) and sa_b.local == (h.B, 4500)
    # NAT-D went in message 3/4 (Main) or 2/3 (Aggressive); everything after floated to 4500
    assert any(Message.decode(d).get(NatD) for s, _src, _dst, d in seen[:4] if not d[19] & 1)
    assert all(src[1] == 31001 for s, src, _dst, _d in seen[-3:] if s == "a")
    for kernel, dport in ((pair.ka, 4500), (pair.kb, 31001)):
        adds = [c for c in kernel.commands if isinstance(c, AddSA)]
        assert adds and all(c.encap is not None and c.encap.dport == dport for c in adds)
    [ia] = pair.a.sas.ipsec
    assert (4, 3) in ia.protocols[0].choice.attributes  # UDP_ENCAP_TUNNEL (RFC 3947)


def test_no_nat_no_float(h: Any) -> None:
    pair = h.make_pair(h.make_conf("a"), h.make_conf("b"), use_keynote=False,
                       nat_traversal=True)
    pair.a.start(pair.now)
    pair.flush()
    assert [type(e) for e in pair.events("b")] == [Phase1Done, Phase2Done]
    [sa_a] = pair.a.sas.isakmp.values()
    assert sa_a.nat is not None and not sa_a.nat.detected and sa_a.peer[1] == 500
    adds = [c for c in pair.ka.commands if isinstance(c, AddSA)]
    assert all(c.encap is None for c in adds)

"""NAT-OA (RFC 3947 5.2, drafts) in Quick Mode: UDP-encapsulated transport mode through a NAT
carries the original addresses, which end up on the SAs for the checksum fix-up."""

from __future__ import annotations

from typing import Any

from ike.events import Phase2Done
from ike.exchange import natt
from ike.kernel.interface import AddSA
from ike.sa import IsakmpSA
from ike.wire import Flags, Message, NatOA, PayloadType
from ike.wire.constants import ExchangeType

NAT = "192.0.2.99"
PORTS = {500: 31000, 4500: 31001}
TRP = "QM-ESP-TRP-AES-128-SHA-SUITE"


def _through_nat(pair: Any, h: Any) -> None:
    back = {v: k for k, v in PORTS.items()}
    for _ in range(50):
        moved = False
        for data, local, peer in pair.a.datagrams_to_send(pair.now):
            moved = True
            pair.wire.append(("a", data))
            pair.b.receive_datagram(data, (NAT, PORTS[local[1]]), peer, pair.now)
        for data, local, peer in pair.b.datagrams_to_send(pair.now):
            moved = True
            pair.wire.append(("b", data))
            pair.a.receive_datagram(data, local, (h.A, back[peer[1]]), pair.now)
        if not moved:
            return
    raise AssertionError("no end")


def test_transport_mode_through_nat_exchanges_original_addresses(h: Any) -> None:
    conf_a = h.make_conf("a", suites=TRP)
    conf_b = h.make_conf("b", suites=TRP, addrs=(NAT, h.B))
    pair = h.make_pair(conf_a, conf_b, use_keynote=False, nat_traversal=True)
    pair.a.capture_cleartext = pair.b.capture_cleartext = True
    pair.a.start(pair.now)
    _through_nat(pair, h)
    assert any(isinstance(e, Phase2Done) for e in pair.events("b"))
    # QM 1 and 2 each carry NAT-OAi then NAT-OAr (type 21) as their sender knows them
    qm = [(side, Message.decode(clear)) for side, d in pair.wire
          if Message.decode(d).exchange_type == ExchangeType.QUICK_MODE
          and (clear := (pair.a if side == "a" else pair.b).cleartext(d)) is not None]
    oas = {side: [(p.payload_type, bytes(p.address)) for p in m.payloads
                  if isinstance(p, NatOA)] for side, m in qm[:2]}
    ip = {x: bytes(int(o) for o in x.split(".")) for x in (h.A, h.B, NAT)}
    assert oas["a"] == [(PayloadType.NAT_OA, ip[h.A]), (PayloadType.NAT_OA, ip[h.B])]
    assert oas["b"] == [(PayloadType.NAT_OA, ip[NAT]), (PayloadType.NAT_OA, ip[h.B])]
    for kernel, original in ((pair.ka, h.B), (pair.kb, h.A)):
        adds = [c for c in kernel.commands if isinstance(c, AddSA)]
        assert adds and all(c.encap is not None and str(c.encap.original_address) == original
                            and not c.tunnel for c in adds)


def test_draft_peers_send_one_nat_oa_with_their_own_address() -> None:
    sa = IsakmpSA("p", True, bytes(8), ("10.0.0.1", 4500), ("192.0.2.99", 4500))
    state = natt.NatState(draft=True, local_behind=True)
    [oa] = natt.nat_oa_payloads(sa, state, True)
    assert oa.payload_type == PayloadType.NAT_OA_DRAFT and oa.address == bytes([10, 0, 0, 1])
    msg = Message(bytes(8), bytes(8), ExchangeType.QUICK_MODE, Flags.NONE, 1, [oa])
    assert natt.peer_original_address(state, False, msg) == "10.0.0.1"
    rfc = natt.NatState(draft=False)
    both = natt.nat_oa_payloads(sa, rfc, False)
    assert [p.address for p in both] == [bytes([192, 0, 2, 99]), bytes([10, 0, 0, 1])]
    two = Message(bytes(8), bytes(8), ExchangeType.QUICK_MODE, Flags.NONE, 1, list(both))
    assert natt.peer_original_address(rfc, True, two) == "10.0.0.1"
    assert natt.peer_original_address(rfc, False, two) == "192.0.2.99"

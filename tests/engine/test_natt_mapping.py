"""A NAT mapping that changes under established SAs (RFC 3947/3948): the engine follows the
peer to its new port or address and re-installs the UDP-encapsulated SAs; nothing is
renegotiated or lost."""

from __future__ import annotations

import ipaddress
from typing import Any

from ike.doi.constants import ProtocolId
from ike.events import NotifyReceived, Phase2Done, SADeleted
from ike.exchange import informational
from ike.kernel.interface import AddFlow, AddSA, DeleteFlow, DeleteSA, Direction, NatMapping
from ike.wire import Notify, NotifyType

NAT, NAT2 = "192.0.2.99", "192.0.2.77"


class Nat:
    """A NAT in front of a that can change its mapping."""

    def __init__(self, pair: Any, h: Any) -> None:
        self.pair, self.h = pair, h
        self.address = NAT
        self.ports = {500: 31000, 4500: 31001}

    def run(self) -> None:
        pair, h = self.pair, self.h
        back = {v: k for k, v in self.ports.items()}
        for _ in range(50):
            moved = False
            for data, local, peer in pair.a.datagrams_to_send(pair.now):
                moved = True
                pair.b.receive_datagram(data, (self.address, self.ports[local[1]]), peer,
                                        pair.now)
            for data, local, peer in pair.b.datagrams_to_send(pair.now):
                moved = True
                assert peer == (self.address, peer[1]), "b answers the mapping it saw last"
                pair.a.receive_datagram(data, local, (h.A, back[peer[1]]), pair.now)
            if not moved:
                return
        raise AssertionError("no end")


def _probe(pair: Any) -> None:
    """a sends an R-U-THERE (a protected informational) from wherever the NAT maps it."""
    [sa_a] = pair.a.sas.isakmp.values()
    probe = Notify(NotifyType.R_U_THERE, ProtocolId.ISAKMP, sa_a.cookies, bytes([0, 0, 0, 9]))
    pair.a.queue(informational.protected(pair.a, sa_a, [probe]), sa_a.local, sa_a.peer)


def _setup(h: Any) -> tuple[Any, Nat]:
    conf_a = h.make_conf("a")
    conf_b = h.make_conf("b", addrs=(NAT, h.B), more="[Phase 1]\nDefault= peer\n")
    pair = h.make_pair(conf_a, conf_b, use_keynote=False, nat_traversal=True)
    nat = Nat(pair, h)
    pair.a.start(pair.now)
    nat.run()
    assert any(isinstance(e, Phase2Done) for e in pair.events("b"))
    return pair, nat


def test_new_port_seen_in_an_informational_moves_the_sas(h: Any) -> None:
    pair, nat = _setup(h)
    [old] = pair.b.sas.ipsec
    pair.kb.commands.clear()
    nat.ports[4500] = 42424  # the NAT forgot the mapping and picked another port
    _probe(pair)  # the next message comes from there
    nat.run()
    [sa_b] = pair.b.sas.isakmp.values()
    assert sa_b.peer == (NAT, 42424)
    assert pair.b.sas.ipsec == [old]
    moved = [c for c in pair.kb.commands if isinstance(c, AddSA)
             and c.spi in (old.protocols[0].spi_in, old.protocols[0].spi_out)]
    assert len(moved) == 2 and all(c.encap is not None and c.encap.dport == 42424
                                   for c in moved)
    assert sum(isinstance(c, DeleteSA) for c in pair.kb.commands) == 2
    assert not [e for e in pair.events("b") if isinstance(e, SADeleted)]
    # b's acknowledgement reached a through the new mapping
    assert any(isinstance(e, NotifyReceived) and e.notify == NotifyType.R_U_THERE_ACK
               for e in pair.events("a"))


def test_kernel_mapping_event_moves_address_and_flows(h: Any) -> None:
    pair, nat = _setup(h)
    [ipsa] = pair.b.sas.ipsec
    p = ipsa.protocols[0]
    pair.kb.commands.clear()
    pair.b.nat_mapping(NatMapping(3, p.spi_in, ipaddress.ip_address(h.B), 0,
                                  ipaddress.ip_address(NAT), ipaddress.ip_address(NAT2),
                                  31001, 31005), pair.now)
    [sa_b] = pair.b.sas.isakmp.values()
    assert sa_b.peer == (NAT2, 31005) and ipsa.peer == NAT2
    adds = {c.inbound: c for c in pair.kb.commands if isinstance(c, AddSA)}
    assert str(adds[True].src) == NAT2 and str(adds[False].dst) == NAT2
    assert all(c.encap is not None and c.encap.dport == 31005 for c in adds.values())
    assert {str(f.dst) if f.direction == 1 else str(f.src) for f in ipsa.flows} == {NAT2}
    # the peer's next message from there is answered there
    nat.address, nat.ports[4500] = NAT2, 31005
    _probe(pair)
    nat.run()
    assert pair.b.sas.ipsec == [ipsa]


def test_transport_mode_selectors_follow_the_new_address(h: Any) -> None:
    """Transport mode without client IDs: the selectors name the peer's (NATed) host, so a new
    mapping rewrites them in the SAs and flows too, through the kernel interface."""
    trp = "QM-ESP-TRP-AES-128-SHA-SUITE"
    conf_a = h.make_conf("a", suites=trp)
    conf_b = h.make_conf("b", suites=trp, addrs=(NAT, h.B), more="[Phase 1]\nDefault= peer\n")
    for conf in (conf_a, conf_b):
        with conf.transaction() as t:
            t.remove("conn", "Local-ID")
            t.remove("conn", "Remote-ID")
    pair = h.make_pair(conf_a, conf_b, use_keynote=False, nat_traversal=True)
    nat = Nat(pair, h)
    pair.a.start(pair.now)
    nat.run()
    [ipsa] = pair.b.sas.ipsec
    old_host, new_host = ipaddress.ip_network(NAT), ipaddress.ip_network(NAT2)
    assert {f.selector.dst for f in ipsa.flows if f.direction == Direction.OUT} == {old_host}
    p = ipsa.protocols[0]
    pair.kb.commands.clear()
    pair.b.nat_mapping(NatMapping(3, p.spi_in, ipaddress.ip_address(h.B), 0,
                                  ipaddress.ip_address(NAT), ipaddress.ip_address(NAT2),
                                  31001, 31005), pair.now)
    mine = ipaddress.ip_network(h.B)
    for flow in ipsa.flows:
        out = flow.direction == Direction.OUT
        assert (flow.selector.src, flow.selector.dst) == ((mine, new_host) if out
                                                          else (new_host, mine))
    deleted = {(c.selector.src, c.selector.dst) for c in pair.kb.commands
               if isinstance(c, DeleteFlow)}
    assert deleted == {(mine, old_host), (old_host, mine)}
    added = [c for c in pair.kb.commands if isinstance(c, AddFlow)]
    assert len(added) == 2 and all(new_host in (c.selector.src, c.selector.dst) for c in added)
    sas = [c for c in pair.kb.commands if isinstance(c, AddSA)]
    assert len(sas) == 2 and all(c.selector is not None and not c.tunnel
                                 and new_host in (c.selector.src, c.selector.dst) for c in sas)

"""NAT traversal in Phase 1 (RFC 3947, drafts 02/03): NAT-D payloads, detection, the port float.

Active when we offer NAT-T (the engine's ``nat_traversal``) and the peer sent one of the NAT-T
vendor IDs.  Each side sends two NAT-D hashes, HASH(CKY-I | CKY-R | IP | Port) with the
negotiated hash: first the peer's address as it sees it, then its own.  A hash that does not
match what we see tells which side is behind a NAT; then the initiator moves to port 4500 for
the rest of the exchange (Main Mode message 5, Aggressive Mode message 3), and Quick Mode asks
for UDP-encapsulated ESP.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ike.crypto.prf import get_hash
from ike.doi.constants import IdType
from ike.kernel import interface as k
from ike.sa import IsakmpSA
from ike.timers import TimedPart, timed_part
from ike.wire import Message, NatD, NatOA, PayloadType

if TYPE_CHECKING:
    from ike.engine import Engine

log = logging.getLogger("ike.exchange")

__all__ = ["KEEPALIVE", "NATT_PORT", "UDP_TRANSPORT", "NatState", "arm_keepalive", "detect",
           "follow", "keepalive", "mapping_changed", "moved", "nat_oa_payloads",
           "natd_payloads", "peer_original_address", "version"]

NATT_PORT = 4500
UDP_TRANSPORT = frozenset({4, 61444})
"""ENCAPSULATION_MODE UDP-Encapsulated-Transport (RFC 3947, drafts): the modes with NAT-OA."""
KEEPALIVE = b"\xff"
"""A NAT-keepalive (RFC 3948 2.3): one 0xFF byte on the NAT-T port, no non-ESP marker."""


@timed_part("keepalive_at")
@dataclass
class NatState(TimedPart):
    """What NAT-T found for one ISAKMP SA."""

    draft: bool
    """The peer speaks only the drafts: payload types 130/131, encapsulation 61443/61444."""
    local_behind: bool = False
    peer_behind: bool = False
    keepalive_at: float | None = None
    """When the next NAT-keepalive goes out (only the side behind the NAT sends them; on the
    engine's timer heap through its SA)."""
    keepalive_interval: float = 20.0

    @property
    def detected(self) -> bool:
        """A NAT somewhere between us: encapsulate ESP in UDP."""
        return self.local_behind or self.peer_behind


def version(nat_traversal: bool, peer_vids: set[str]) -> NatState | None:
    """The NAT-T flavour both sides speak, or None (RFC 3947 preferred over the drafts)."""
    if not nat_traversal:
        return None
    if "nat-t-rfc3947" in peer_vids:
        return NatState(draft=False)
    if peer_vids & {"nat-t-draft-02", "nat-t-draft-03"}:
        return NatState(draft=True)
    return None


def _hash(sa: IsakmpSA, address: str, port: int) -> bytes:
    packed = ipaddress.ip_address(address).packed
    return get_hash(sa.hash_alg).digest(sa.icookie + sa.rcookie + packed + port.to_bytes(2, "big"))


def natd_payloads(sa: IsakmpSA, state: NatState) -> list[NatD]:
    """Our two NAT-D payloads: the peer's address and port as we send to them, then ours."""
    return [NatD(_hash(sa, sa.peer[0], sa.peer[1]), state.draft),
            NatD(_hash(sa, sa.local[0], sa.local[1]), state.draft)]


def detect(sa: IsakmpSA, state: NatState, msg: Message) -> None:
    """Compare the peer's NAT-D hashes with the addresses we see; note who is behind a NAT."""
    got = [bytes(p.data) for p in msg.payloads
           if p.payload_type in (PayloadType.NAT_D, PayloadType.NAT_D_DRAFT)
           and isinstance(p, NatD)]
    if len(got) < 2:
        return  # the peer does not do NAT-D after all: no NAT assumed
    state.local_behind = got[0] != _hash(sa, sa.local[0], sa.local[1])
    state.peer_behind = _hash(sa, sa.peer[0], sa.peer[1]) not in got[1:]


def arm_keepalive(engine: Engine, sa: IsakmpSA, now: float) -> None:
    """Phase 1 is up: when we are the one behind a NAT, keep its mapping open every
    ``NAT-T-Keepalive`` seconds ([General], default 20; 0 turns keepalives off)."""
    state = sa.nat
    if state is None or not state.local_behind:
        return
    interval = engine.conf.get_num("General", "NAT-T-Keepalive", 20)
    if interval > 0:
        state.keepalive_interval = float(interval)
        state.keepalive_at = now + interval


def keepalive(engine: Engine, sa: IsakmpSA, now: float) -> None:
    """The keepalive timer fired: send one from our NAT-T port and re-arm."""
    state = sa.nat
    if state is None or state.keepalive_at is None or state.keepalive_at > now:
        return
    engine.queue(KEEPALIVE, sa.local, sa.peer)
    state.keepalive_at = now + state.keepalive_interval


def _oa(address: str, draft: bool) -> NatOA:
    ip = ipaddress.ip_address(address)
    return NatOA(IdType.IPV4_ADDR if ip.version == 4 else IdType.IPV6_ADDR, ip.packed, draft)


def nat_oa_payloads(sa: IsakmpSA, state: NatState, initiator: bool) -> list[NatOA]:
    """NAT-OA for a UDP-encapsulated transport mode Quick Mode message: RFC 3947 5.2 sends the
    initiator's then the responder's address as this side knows them (NAT-OAi, NAT-OAr); the
    drafts send one, the sender's own address."""
    if state.draft:
        return [_oa(sa.local[0], True)]
    first, second = (sa.local[0], sa.peer[0]) if initiator else (sa.peer[0], sa.local[0])
    return [_oa(first, False), _oa(second, False)]


def peer_original_address(state: NatState, initiator: bool, msg: Message) -> str | None:
    """The peer's own address from its NAT-OA payloads (its NAT-OAr when we initiated, its
    NAT-OAi when we respond; the drafts' single one), for the transport-mode checksum fix-up."""
    got = [p for p in msg.payloads if isinstance(p, NatOA)]
    if not got:
        return None
    pick = got[0] if state.draft or len(got) == 1 else got[1 if initiator else 0]
    try:
        return str(ipaddress.ip_address(pick.address))
    except ValueError:
        return None


def follow(engine: Engine, sa: IsakmpSA, old: tuple[str, int]) -> None:
    """The peer of ``sa`` moved from ``old`` (a NAT mapping changed): its UDP-encapsulated
    SAs are installed again towards the new address and port, and their flows follow, so
    that the SAs are kept (RFC 3948: the encapsulation ports are the IKE ones)."""
    if sa.nat is None or sa.peer == old:
        return
    new_ip = k.address(sa.peer[0])
    for ipsa in engine.sas.ipsec:
        if ipsa.peer != old[0]:
            continue
        for p in ipsa.protocols:
            for spi, inbound in ((p.spi_in, True), (p.spi_out, False)):
                cmd = engine.installed.get((p.choice.protocol_id, spi, inbound))
                if cmd is None or cmd.encap is None:
                    continue
                moved = replace(cmd, src=new_ip if inbound else cmd.src,
                                dst=cmd.dst if inbound else new_ip, acquire_seq=0,
                                encap=replace(cmd.encap, sport=sa.local[1], dport=sa.peer[1]))
                if not cmd.tunnel and cmd.selector is not None:
                    moved = replace(moved, selector=_host_moved(cmd.selector, old[0],
                                                                sa.peer[0]))
                try:
                    engine.kernel.delete_sa(k.DeleteSA(cmd.proto, cmd.spi, cmd.src, cmd.dst))
                    engine.add_sa(moved)
                except k.KernelError as e:
                    log.warning("%s NAT-T: cannot move SA %08x to %s:%d: %s", engine.tag,
                                spi, sa.peer[0], sa.peer[1], e)
        if old[0] != sa.peer[0]:
            flows = []
            for flow in ipsa.flows:
                if isinstance(flow, k.AddFlow):
                    out = flow.direction == k.Direction.OUT
                    gone = k.DeleteFlow(flow.selector, flow.direction)
                    flow = replace(flow, src=flow.src if out else new_ip,
                                   dst=new_ip if out else flow.dst)
                    if not flow.tunnel:  # transport mode: the selector names the peer host
                        flow = replace(flow, selector=_host_moved(flow.selector, old[0],
                                                                  sa.peer[0]))
                    try:
                        engine.kernel.delete_flow(gone)
                        engine.kernel.add_flow(flow)
                    except k.KernelError as e:
                        log.warning("%s NAT-T: cannot move a flow: %s", engine.tag, e)
                flows.append(flow)
            ipsa.flows = flows
            ipsa.peer = sa.peer[0]


def _host_moved(selector: k.TrafficSelector, old: str, new: str) -> k.TrafficSelector:
    """A transport-mode selector with the peer's old host (/32 or /128) replaced by the new
    one; client networks negotiated as IDs stay as they are."""
    was, now = ipaddress.ip_network(old), ipaddress.ip_network(new)
    if was.version != now.version:
        return selector
    return replace(selector, src=now if selector.src == was else selector.src,
                   dst=now if selector.dst == was else selector.dst)


def moved(engine: Engine, sa: IsakmpSA, src: tuple[str, int], dst: tuple[str, int]) -> None:
    """An authenticated message of this SA came from elsewhere: the float to 4500, or a NAT
    mapping that changed.  Answer where it came from; the SAs stay and follow."""
    log.info("%s peer %s:%d now at %s:%d", engine.tag, sa.peer[0], sa.peer[1], *src)
    old, sa.peer, sa.local = sa.peer, src, dst
    follow(engine, sa, old)


def mapping_changed(engine: Engine, event: k.NatMapping) -> None:
    """The kernel saw ESP-in-UDP of one of our SAs from a new address or port: the peer's NAT
    mapping changed; its ISAKMP SA moves and the SAs are re-pointed (RFC 3947 / 3948)."""
    new = (str(event.new_src), event.new_sport)
    for sa in list(engine.sas.isakmp.values()):
        if sa.peer == (str(event.old_src), event.old_sport) and sa.nat is not None:
            moved(engine, sa, new, sa.local)

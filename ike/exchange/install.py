"""Putting a Quick Mode's IPsec SAs and flows into the kernel, in an order that loses no packet.

The two sides of a Quick Mode learn the keys at different moments, and the initiator starts
sending on its new outbound SA as soon as it has sent HASH(3).  If the responder installed its
inbound SA only when HASH(3) arrives (as isakmpd and charon do), a packet the initiator sends
in the meantime meets no SA and is dropped -- during a rekey, that is a lost packet of a live
stream.  So, as FreeS/WAN's pluto did, the responder installs its *inbound* SAs just before it
sends message 2 (the keys are known then) and its outbound SAs and flows when HASH(3) verifies;
if the exchange fails in between, the engine deletes them with the exchange's SPIs.  The
initiator installs everything when it sends HASH(3), inbound first.

A rekey keeps the flows: they pass from the old bundle to the new one, and the side that rekeyed
retires the old SAs ``REKEY_RETIRE_GRACE`` seconds later (the peer may still send on them until
it processed our HASH(3)); if the kernel's counters show the peer still sending on the old SA
and not yet on the new one, it waits for the switch, ``REKEY_RETIRE_MAX`` seconds at most.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, NamedTuple, cast

from ike.events import ExchangeFailed, Phase2Done
from ike.exchange import connections
from ike.exchange.errors import ExchangeError
from ike.kernel import interface as k
from ike.sa import IPsecSA, SAState
from ike.wire import NotifyType

if TYPE_CHECKING:
    from ike.engine import Engine
    from ike.exchange.quick import QuickMode

__all__ = ["REKEY_OUTBOUND_DELAY", "REKEY_OUTBOUND_POLL", "REKEY_RETIRE_GRACE",
           "REKEY_RETIRE_MAX", "established", "install_inbound", "may_retire", "outbound_due",
           "release_successors"]

log = logging.getLogger("ike.engine")

#: seconds a Phase 2 SA replaced by our rekey lives on: the peer switches to the new SA only
#: once it processed our HASH(3), and packets it sent before then must still be accepted
REKEY_RETIRE_GRACE = 2.0
#: seconds at most that a replaced SA waits for the peer to switch to its successor
REKEY_RETIRE_MAX = 30.0
#: seconds our rekey's new outbound SA waits after HASH(3) (the old one still works meanwhile)
#: unless the peer's first packet on the new SA shows sooner that it has the new SAs in
REKEY_OUTBOUND_DELAY = 0.5
#: seconds between looks at the new inbound SA's counter while the outbound SA is held
REKEY_OUTBOUND_POLL = 0.1
_UDP_ENCAP = frozenset({3, 4, 61443, 61444})
"""ENCAPSULATION_MODE values of ESP in UDP (RFC 3947 and the drafts)."""
_LAYER = {4: 0, 3: 1, 2: 2}
"""Nesting of a bundle's protocols, innermost first: IPComp, ESP, AH."""


class _Plan(NamedTuple):
    """What a bundle puts into the kernel, worked out once (the responder installs its inbound
    SAs at message 2 and the rest at HASH(3))."""

    selector: k.TrafficSelector
    inbound_selector: k.TrafficSelector
    local: k.Address
    peer: k.Address
    outer: int
    inner: int
    pairs: list[tuple[k.AddSA, k.AddSA]]
    """The (inbound, outbound) AddSA pair of every protocol of the bundle."""


def _plan(ex: QuickMode, bundle: IPsecSA) -> _Plan:
    if ex.install_plan is not None:
        return cast(_Plan, ex.install_plan)
    selector, inbound_selector = connections.selectors(bundle.local_ids, bundle.remote_ids,
                                                        bundle.local, bundle.peer)
    lifetime = k.Lifetime.from_negotiated(bundle.life_seconds, bundle.life_kbytes)
    local, peer = connections.address(bundle.local), connections.address(bundle.peer)
    # Bundles nest IPComp inside ESP inside AH (RFC 2401); in tunnel mode only the
    # innermost pair's inner SA tunnels and the outer one is transport (as Linux wants).
    outer, inner = _outer_inner(bundle)
    pairs = []
    for p in bundle.protocols:
        values = dict(p.choice.attributes)
        protocol = p.choice.protocol_id
        tunnel = bundle.tunnel and (protocol != outer or not inner)
        encap = None
        if protocol == 3 and values.get(4) in _UDP_ENCAP:
            oa = connections.address(ex.peer_oa) if ex.peer_oa else None
            encap = k.NatTEncap(ex.sa.local[1], ex.sa.peer[1], original_address=oa)
        pairs.append((
            k.AddSA(protocol, p.spi_in, peer, local, True, p.choice.transform_id,
                    values.get(5), values.get(6), p.enc_in, p.auth_in, tunnel,
                    inbound_selector, lifetime, encap=encap),
            k.AddSA(protocol, p.spi_out, local, peer, False, p.choice.transform_id,
                    values.get(5), values.get(6), p.enc_out, p.auth_out, tunnel, selector,
                    lifetime, encap=encap, acquire_seq=ex.acquire_seq)))
    plan = _Plan(selector, inbound_selector, local, peer, outer, inner, pairs)
    ex.install_plan = plan
    return plan


def _outer_inner(bundle: IPsecSA) -> tuple[int, int]:
    """The outermost protocol of the bundle and the one inside it (0 if none)."""
    if len(bundle.protocols) == 1:
        return bundle.protocols[0].choice.protocol_id, 0
    layers = sorted((p.choice.protocol_id for p in bundle.protocols),
                    key=lambda proto: _LAYER.get(proto, 1))
    return (layers[-1] if layers else 0), (layers[-2] if len(layers) > 1 else 0)


def install_inbound(engine: Engine, ex: QuickMode, bundle: IPsecSA) -> None:
    """The responder's inbound SAs, before message 2 leaves: the initiator may send on them as
    soon as it has sent HASH(3).  A kernel refusal fails the exchange (the engine then deletes
    what was installed, with the exchange's SPIs)."""
    try:
        for inbound, _outbound in _plan(ex, bundle).pairs:
            engine.add_sa(inbound)
    except k.KernelError as e:
        log.warning("%s kernel refused inbound IPsec SA %s: %s %s", engine.tag, bundle.name, e,
                    e.errno_name)
        raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN, f"kernel: {e}") from None
    ex.inbound_installed = True


def established(engine: Engine, ex: QuickMode, bundle: IPsecSA, now: float) -> None:
    """Quick Mode done: install the SAs and flows, start lifetimes, retire a rekeyed SA."""
    old = [s for s in engine.sas.ipsec_by_name(bundle.name) if s.peer == bundle.peer]
    # Our rekey: the old outbound SA carries our traffic a little longer, until the peer has
    # surely processed HASH(3) and installed its inbound SA (a responder that does so only
    # then -- isakmpd, charon -- would drop what we sent on the new one before).
    hold = bundle.initiator and any(stale.flows for stale in old)
    try:
        plan = _plan(ex, bundle)
        for inbound, outbound in plan.pairs:
            if not ex.inbound_installed:
                engine.add_sa(inbound)
            if hold:
                bundle.pending_out.append(outbound)
            else:
                engine.add_sa(outbound)
        if hold:
            bundle.out_at = now + REKEY_OUTBOUND_POLL
            bundle.hold_until = now + REKEY_OUTBOUND_DELAY
        _flows(engine, ex, bundle, old, plan)
    except k.KernelError as e:
        # As charon does when its install fails: undo, and tell the peer with a DELETE.
        log.warning("%s kernel refused IPsec SA %s: %s %s", engine.tag, bundle.name, e,
                    e.errno_name)
        engine.delete_ipsec_sa(bundle, now, reason=f"kernel: {e}")
        engine.emit(ExchangeFailed(bundle.name, "quick", f"kernel: {e}", 0, ex.sa.peer))
        return
    if bundle.life_seconds:
        fraction = 0.85 + engine.rand.randrange(0, 1001) / 10000
        bundle.soft_at = now + bundle.life_seconds * fraction
        bundle.hard_at = now + bundle.life_seconds
    bundle.set_state(SAState.READY)
    engine.sas.ipsec.append(bundle)
    if engine.is_active(bundle.name):  # its ISAKMP SA stays alive too (exchange_finalize)
        ex.sa.stayalive = True
    if log.isEnabledFor(logging.INFO):
        log.info("%s IPsec SA %s established, SPIs in %s out %s", engine.tag, bundle.name,
                 " ".join(f"{s:08x}" for _p, s in bundle.spis_in),
                 " ".join(f"{s:08x}" for _p, s in bundle.spis_out))
    engine.emit(Phase2Done(bundle.name, bundle.cookies, bundle.message_id, bundle.initiator,
                             bundle.spis_in, bundle.spis_out))
    if bundle.initiator:  # the side that rekeyed retires the old SA and says so
        for stale in old:
            # not at once: until the peer has processed our HASH(3) it still sends on the
            # old SA (isakmpd only marks it replaced and keeps it to its hard expiry)
            stale.replaced = True
            stale.set_state(SAState.FADING)
            stale.soft_at = None
            end = now + REKEY_RETIRE_GRACE
            stale.hard_at = end if stale.hard_at is None else min(stale.hard_at, end)
            stale.retire_from = now
            stale.in_packets = _inbound_packets(engine, stale)


def _inbound_packets(engine: Engine, bundle: IPsecSA) -> int:
    """Packets the bundle's inbound SAs have counted (0 when the kernel cannot say)."""
    total = 0
    peer, local = connections.address(bundle.peer), connections.address(bundle.local)
    for p in bundle.protocols:
        try:
            stats = engine.kernel.query_sa(k.QuerySA(p.choice.protocol_id, p.spi_in, peer, local))
        except (k.KernelError, AttributeError):
            continue
        if stats is not None:
            total += stats.packets
    return total


def _still_on_old(engine: Engine, new: IPsecSA, olds: list[IPsecSA], now: float) -> bool:
    """Whether the peer plainly still sends on the SAs ``new`` replaced: their inbound SAs
    counted packets since the rekey and ``new``'s none yet (a slow peer that has not processed
    HASH(3))."""
    return bool(olds) and not _inbound_packets(engine, new) and _old_counting(engine, olds, now)


def _old_counting(engine: Engine, olds: list[IPsecSA], now: float) -> bool:
    """Whether an SA of ``olds`` counted inbound packets since our rekey replaced it, within
    REKEY_RETIRE_MAX of the rekey."""
    return any(s.retire_from is not None and now < s.retire_from + REKEY_RETIRE_MAX
               and _inbound_packets(engine, s) > s.in_packets for s in olds)


def _same_connection(engine: Engine, bundle: IPsecSA, *, replaced: bool) -> list[IPsecSA]:
    """The other bundles of ``bundle``'s connection and peer that were (or were not) replaced."""
    return [s for s in engine.sas.ipsec_by_name(bundle.name)
            if s.peer == bundle.peer and s.replaced == replaced and s is not bundle]


def may_retire(engine: Engine, stale: IPsecSA, now: float) -> bool:
    """Whether an SA our rekey replaced may go now: not while the peer still sends on it and
    not on its successor (_still_on_old); then it is looked at again every second."""
    successors = _same_connection(engine, stale, replaced=False)
    if not successors or not all(_still_on_old(engine, s, [stale], now) for s in successors):
        return True
    log.info("%s IPsec SA %s: the peer still sends on the replaced SA, keeping it", engine.tag,
             stale.name)
    stale.hard_at = now + 1.0
    return False


def release_successors(engine: Engine, gone: IPsecSA, now: float) -> None:
    """An SA our rekey replaced is going (retired, expired in the kernel, deleted by the
    peer): a successor still holding its outbound SA back must put it in first, or the flow
    would have no outbound SA at all until the hold ends."""
    if not gone.replaced:
        return
    for successor in _same_connection(engine, gone, replaced=False):
        if successor.pending_out:
            _install_held(engine, successor, now)


def outbound_due(engine: Engine, bundle: IPsecSA, now: float) -> bool:
    """Install the held-back outbound SAs of our rekey; False if the kernel refused them (the
    bundle is then deleted, and the peer told).  While the kernel's counters show the peer
    still sending on the old SA and nothing yet on the new one (it has not processed HASH(3)
    yet: a loaded peer may take longer than REKEY_OUTBOUND_DELAY), they wait a little more,
    REKEY_RETIRE_MAX after the rekey at most.  The peer's first packet on the new SA ends the
    wait at once: it sends on the new SAs only once it has them all in, so from then on both
    directions of the flow use the same generation."""
    if _inbound_packets(engine, bundle):
        return _install_held(engine, bundle, now)
    if bundle.hold_until is not None and now < bundle.hold_until:
        bundle.out_at = min(now + REKEY_OUTBOUND_POLL, bundle.hold_until)
        return True
    # the new inbound SA counted nothing (asked above): is the peer still on the old one?
    if _old_counting(engine, _same_connection(engine, bundle, replaced=True), now):
        bundle.out_at = now + 0.25
        return True
    return _install_held(engine, bundle, now)


def _install_held(engine: Engine, bundle: IPsecSA, now: float) -> bool:
    """Put the held-back outbound SAs in now (False: the kernel refused, the bundle is gone)."""
    bundle.out_at = bundle.hold_until = None
    try:
        while bundle.pending_out:
            cmd = bundle.pending_out[0]
            assert isinstance(cmd, k.AddSA)
            engine.add_sa(cmd)
            bundle.pending_out.pop(0)
    except k.KernelError as e:
        log.warning("%s kernel refused outbound IPsec SA %s: %s %s", engine.tag, bundle.name, e,
                    e.errno_name)
        bundle.pending_out.clear()
        engine.delete_ipsec_sa(bundle, now, reason=f"kernel: {e}")
        return False
    return True


def _flows(engine: Engine, ex: QuickMode, bundle: IPsecSA, old: list[IPsecSA],
           plan: _Plan) -> None:
    """A rekey passes the old bundle's flows on; a new bundle gets its own (unless an ACQUIRE
    started it: then the flows were there already)."""
    inherited = [f for stale in old for f in stale.flows]
    if inherited:
        bundle.flows = inherited
        for stale in old:
            stale.flows = []
        return
    if ex.acquire_seq or not bundle.protocols:
        return
    for flow in (k.AddFlow(plan.selector, k.Direction.OUT, plan.local, plan.peer, plan.outer,
                           bundle.tunnel, inner_proto=plan.inner),
                 k.AddFlow(plan.inbound_selector, k.Direction.IN, plan.peer, plan.local,
                           plan.outer, bundle.tunnel, inner_proto=plan.inner)):
        engine.kernel.add_flow(flow)
        bundle.flows.append(flow)

"""Dead peer detection (RFC 3706) as isakmpd does it (reference/isakmpd.md 6.6).

Runs for an ISAKMP SA when the peer sent the DPD vendor ID and ``DPD-check-interval`` (peer
section, else [General]) is above 0.  Every interval: if an inbound IPsec SA of that peer saw
traffic since the last check, nothing is sent; otherwise R-U-THERE goes out (protected
informational, SPI = the cookies, data = a 32-bit sequence number starting at a random 15-bit
value), and is repeated every 5 s; after 5 unanswered ones the peer is dead: its IPsec SAs and
the ISAKMP SA are removed, without DELETE.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ike.doi.constants import ProtocolId
from ike.exchange import informational
from ike.kernel import interface as k
from ike.sa import IsakmpSA
from ike.timers import TimedPart, timed_part
from ike.wire import Notify, NotifyType

if TYPE_CHECKING:
    from ike.engine import Engine

__all__ = ["DPD_RETRANS_MAX", "DPD_RETRANS_WAIT", "DpdState", "acknowledged", "due", "start"]

log = logging.getLogger("ike.exchange")
DPD_RETRANS_WAIT = 5.0
DPD_RETRANS_MAX = 5


@timed_part("next_at")
@dataclass
class DpdState(TimedPart):
    """One ISAKMP SA's DPD: when to look next (on the engine's timer heap through its SA), the
    sequence number, unanswered probes."""

    interval: float
    next_at: float
    seq: int
    outstanding: int = 0
    last_check: float = 0.0


def start(engine: Engine, sa: IsakmpSA, now: float) -> None:
    """Arm DPD for a new ISAKMP SA when both sides want it."""
    if "dpd" not in sa.vendor_ids:
        return
    interval = engine.conf.get_num(sa.name, "DPD-check-interval",
                                   engine.conf.get_num("General", "DPD-check-interval", 0))
    if interval > 0:
        sa.dpd = DpdState(float(interval), now + interval, engine.rand.uint32() & 0x7FFF,
                          last_check=now)


def _traffic_since(engine: Engine, sa: IsakmpSA, since: float) -> bool:
    """Whether an inbound SA of this peer was used after ``since`` (kernel counters)."""
    for ipsa in engine.sas.ipsec:
        if ipsa.peer != sa.peer[0]:
            continue
        for p in ipsa.protocols:
            try:
                stats = engine.kernel.query_sa(k.QuerySA(
                    p.choice.protocol_id, p.spi_in, k.address(ipsa.peer), k.address(ipsa.local)))
            except (k.KernelError, AttributeError):
                continue
            # the kernel counts in wall-clock seconds; the engine's time plus wall_offset is that
            if stats is not None and stats.use_time and \
                    stats.use_time > since + engine.wall_offset:
                return True
    return False


def due(engine: Engine, sa: IsakmpSA, now: float) -> None:
    """The DPD timer of ``sa`` fired: probe, or give the peer up."""
    state = sa.dpd
    if not isinstance(state, DpdState) or state.next_at > now:
        return
    if state.outstanding == 0 and _traffic_since(engine, sa, state.last_check):
        state.last_check = now
        state.next_at = now + state.interval
        return
    if state.outstanding >= DPD_RETRANS_MAX:
        log.warning("%s DPD: peer %s is dead", engine.tag, sa.peer[0])
        engine.peer_dead(sa, now)
        return
    if state.outstanding == 0:
        state.seq = (state.seq + 1) & 0xFFFFFFFF
    state.outstanding += 1
    probe = Notify(NotifyType.R_U_THERE, ProtocolId.ISAKMP, sa.cookies,
                   state.seq.to_bytes(4, "big"))
    engine.queue(informational.protected(engine, sa, [probe]), sa.local, sa.peer)
    state.next_at = now + DPD_RETRANS_WAIT


def acknowledged(sa: IsakmpSA, data: bytes, now: float) -> bool:
    """An R-U-THERE-ACK arrived: True when it answers our current probe."""
    state = sa.dpd
    if not isinstance(state, DpdState) or len(data) != 4:
        return False
    if int.from_bytes(data, "big") != state.seq or not state.outstanding:
        log.info("DPD: R-U-THERE-ACK with sequence %d ignored", int.from_bytes(data, "big"))
        return False
    state.outstanding = 0
    state.last_check = now
    state.next_at = now + state.interval
    return True

"""ISAKMP SA renegotiation as isakmpd does it (``sa_soft_expire``, ``exchange_finalize``).

An ISAKMP SA that carried Phase 2 of an active connection (``[Phase 2]:Connections`` or FIFO
``c``) is *stayalive*: at its soft expiry a new Phase 1 with the same peer section starts, and the
new SA is stayalive too.  Any other SA (a passive one) just fades at the soft limit and is deleted,
with a DELETE, at the hard one.  When a Phase 1 completes, older ready SAs of the same name and
peer are marked *replaced* (no successor, no DPD); the side that negotiated the successor deletes
them with a DELETE to the peer as soon as they run no exchange (isakmpd itself keeps them until
their hard expiry; the peer is told either way).  IPsec SAs do not depend on the ISAKMP SA that
negotiated them and keep working; their DELETEs later go through the newest ready SA.

isakmpd matches "the same SA" by name and Phase 1 IDs; here name and peer address stand for it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ike.sa import IPsecSA, IsakmpSA, SAState

if TYPE_CHECKING:
    from ike.engine import Engine

__all__ = ["hard_expire", "ipsec_soft_expire", "mark_replaced", "retire_replaced", "soft_expire"]

log = logging.getLogger("ike.exchange")


def ipsec_soft_expire(engine: Engine, ipsa: IPsecSA, now: float) -> None:
    """An IPsec SA's first soft limit (ours or the kernel's, whichever comes first): the side
    that negotiated it renegotiates an active connection, once; the new SA retires it."""
    if ipsa.state is not SAState.READY:
        return
    ipsa.set_state(SAState.FADING)
    ipsa.soft_at = None
    if engine.is_active(ipsa.name) and ipsa.initiator:
        log.info("%s rekeying %s before it expires", engine.tag, ipsa.name)
        engine.connect(ipsa.name, now)


def _renegotiating(engine: Engine, sa: IsakmpSA) -> bool:
    """Whether a Phase 1 with this SA's peer section is already under way (ours)."""
    return any(ex.message_id == 0 and not ex.finished and ex.sa is not sa
               and ex.sa.initiator and ex.sa.name == sa.name
               for ex in engine.exchanges.values())


def _successor(engine: Engine, sa: IsakmpSA, now: float) -> None:
    if not sa.stayalive or sa.replaced or engine.passive or _renegotiating(engine, sa):
        return
    log.info("%s renegotiating ISAKMP SA %s with %s before it expires", engine.tag,
             sa.cookies.hex(), sa.peer[0])
    new = engine.phase1_initiate(sa.name, now)
    if new is not None:
        new.stayalive = True


def soft_expire(engine: Engine, sa: IsakmpSA, now: float) -> None:
    """The soft lifetime passed: a stayalive SA gets a successor, any other one fades."""
    sa.soft_at = None
    sa.set_state(SAState.FADING)
    _successor(engine, sa, now)


def hard_expire(engine: Engine, sa: IsakmpSA, now: float) -> None:
    """The hard lifetime passed: start a successor if none was made (``sa_hard_expire``); the
    caller then deletes the SA."""
    sa.hard_at = None
    _successor(engine, sa, now)


def mark_replaced(engine: Engine, new: IsakmpSA, now: float) -> None:
    """A Phase 1 completed: older SAs of the same name and peer are replaced by ``new``; when
    ``new`` is a successor we negotiated, they are retired (DELETE sent)."""
    for old in list(engine.sas.isakmp.values()):
        if (old is new or old.replaced or old.state not in (SAState.READY, SAState.FADING)
                or old.name.lower() != new.name.lower() or old.peer[0] != new.peer[0]):
            continue
        log.debug("%s ISAKMP SA %s replaced by %s", engine.tag, old.cookies.hex(),
                  new.cookies.hex())
        old.replaced = True
        old.dpd = None
        if new.initiator and new.stayalive:
            retire_replaced(engine, old, now)


def retire_replaced(engine: Engine, old: IsakmpSA, now: float) -> None:
    """Delete a replaced SA (with a DELETE) once no exchange of its own still runs; until then
    its hard limit is brought forward to the end of the last one."""
    running = [ex.deadline for ex in engine.exchanges.values()
               if ex.sa is old and not ex.finished]
    if not running:
        engine.delete_isakmp(old, now, reason="replaced by rekey")
        return
    end = max(running)
    old.soft_at = None
    old.hard_at = end if old.hard_at is None else min(old.hard_at, end)

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
from dataclasses import dataclass

from ike.crypto.prf import get_hash
from ike.sa import IsakmpSA
from ike.wire import Message, NatD, PayloadType

__all__ = ["NATT_PORT", "NatState", "detect", "natd_payloads", "version"]

NATT_PORT = 4500


@dataclass
class NatState:
    """What NAT-T found for one ISAKMP SA."""

    draft: bool
    """The peer speaks only the drafts: payload types 130/131, encapsulation 61443/61444."""
    local_behind: bool = False
    peer_behind: bool = False

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

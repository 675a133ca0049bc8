"""Security associations as the engine keeps them: ISAKMP SAs (Phase 1) and IPsec SAs (Phase 2).

Plain records plus one table.  An ISAKMP SA is found by its cookie pair (a half-open one, before
the responder cookie is known, by the initiator cookie and peer); an IPsec SA by the SPIs we
receive on, by its connection name, or through the ISAKMP SA that negotiated it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from ike.crypto.cipher import CBC
from ike.crypto.keymat import Phase1Keys
from ike.policy import ChosenProtocol, IdentityData

if TYPE_CHECKING:
    from ike.exchange.dpd import DpdState
    from ike.exchange.natt import NatState

__all__ = ["IPsecSA", "IsakmpSA", "ProtoSA", "SAState", "SATable"]

log = logging.getLogger("ike.sa")

Addr = tuple[str, int]


class SAState(Enum):
    """Life of an SA: negotiating, usable, soft-expired (still usable), gone."""

    LARVAL = "larval"
    READY = "ready"
    FADING = "fading"
    DEAD = "dead"


@dataclass
class IsakmpSA:
    """One Phase 1 SA with everything Phase 2 and Informational exchanges need from it."""

    name: str
    initiator: bool
    icookie: bytes
    local: Addr
    peer: Addr
    rcookie: bytes = bytes(8)
    state: SAState = SAState.LARVAL
    exchange: str = "main"
    # negotiated transform (IKE attribute values, RFC 2409 appendix A)
    encryption: int = 0
    key_length: int = 0
    hash_alg: int = 0
    auth_method: int = 0
    group: int = 0
    life_seconds: int = 0
    life_kbytes: int = 0
    keys: Phase1Keys | None = None
    iv: bytes = b""
    """The last CBC block of the last Phase 1 message: the seed of every Phase 2 IV."""
    local_id: IdentityData | None = None
    peer_id: IdentityData | None = None
    peer_dn: str = ""
    principals: tuple[str, ...] = ()
    peer_key: object | None = None
    """What authenticated the peer (pki's PeerKey primes the KeyNote session with its chain
    assertions and credentials)."""
    policy_session: object | None = None
    vendor_ids: set[str] = field(default_factory=set)
    nat: NatState | None = None
    """NAT-T state when both sides speak it (ike.exchange.natt)."""
    dpd: DpdState | None = None
    """Dead peer detection state when both sides want it (ike.exchange.dpd)."""
    created: float = 0.0
    soft_at: float | None = None
    hard_at: float | None = None
    stayalive: bool = False
    """Negotiate a successor at soft expiry (isakmpd's SA_FLAG_STAYALIVE): the SA carried
    Phase 2 of an active connection, or was itself negotiated as such a successor."""
    replaced: bool = False
    """A newer ISAKMP SA with this peer took over (SA_FLAG_REPLACED): no successor, no DPD."""
    message_ids: set[int] = field(default_factory=set)
    """Phase 2 / informational message IDs seen or used on this SA (replay protection)."""
    _cbc: tuple[Phase1Keys, CBC] | None = field(default=None, repr=False, compare=False)

    def cbc(self) -> CBC:
        """This SA's keyed cipher, built once for its keys: every Quick Mode and informational
        exchange on the SA uses the same key, so each need not key a new one."""
        assert self.keys is not None, "cipher before keys"
        if self._cbc is None or self._cbc[0] is not self.keys:
            self._cbc = (self.keys, CBC(self.encryption, self.keys.enc_key))
        return self._cbc[1]

    @property
    def cookies(self) -> bytes:
        """CKY-I | CKY-R."""
        return self.icookie + self.rcookie

    def set_state(self, new: SAState) -> None:
        """Move to ``new``, logging the transition."""
        if new is not self.state:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("isakmp sa %s %s: %s -> %s", self.name, self.cookies.hex(),
                          self.state.value, new.value)
            self.state = new

    def __repr__(self) -> str:  # keys stay out of logs
        return f"IsakmpSA({self.name!r}, {self.cookies.hex()}, {self.state.value})"


@dataclass
class ProtoSA:
    """One protocol of a negotiated bundle: its choice, both SPIs, both key sets."""

    choice: ChosenProtocol
    spi_in: int
    spi_out: int = 0
    enc_in: bytes = field(default=b"", repr=False)
    auth_in: bytes = field(default=b"", repr=False)
    enc_out: bytes = field(default=b"", repr=False)
    auth_out: bytes = field(default=b"", repr=False)


@dataclass
class IPsecSA:
    """One Phase 2 SA bundle (ESP, AH, IPComp or AH+ESP) as negotiated by Quick Mode."""

    name: str
    cookies: bytes
    message_id: int
    initiator: bool
    local: str
    peer: str
    protocols: list[ProtoSA] = field(default_factory=list)
    tunnel: bool = True
    local_ids: IdentityData | None = None
    remote_ids: IdentityData | None = None
    state: SAState = SAState.LARVAL
    life_seconds: int = 0
    life_kbytes: int = 0
    soft_at: float | None = None
    hard_at: float | None = None
    flows: list[object] = field(default_factory=list)
    replaced: bool = False
    """A rekey by us installed its successor; deleted (with a DELETE) shortly after."""
    pending_out: list[object] = field(default_factory=list)
    """Outbound SA commands of a rekey by us, held back until ``out_at`` (ike.exchange.install)."""
    out_at: float | None = None
    hold_until: float | None = None
    """Without a packet from the peer on the new SA, the held outbound SAs wait until then."""
    retire_from: float | None = None
    """When our rekey replaced it (ike.exchange.install.may_retire)."""
    in_packets: int = 0
    """Packets its inbound SAs had counted then."""

    @property
    def spis_in(self) -> tuple[tuple[int, int], ...]:
        """(protocol, SPI) pairs we receive on."""
        return tuple((p.choice.protocol_id, p.spi_in) for p in self.protocols)

    @property
    def spis_out(self) -> tuple[tuple[int, int], ...]:
        """(protocol, SPI) pairs we send on."""
        return tuple((p.choice.protocol_id, p.spi_out) for p in self.protocols)

    def set_state(self, new: SAState) -> None:
        """Move to ``new``, logging the transition."""
        if new is not self.state:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("ipsec sa %s %x: %s -> %s", self.name, self.message_id,
                          self.state.value, new.value)
            self.state = new


@dataclass
class SATable:
    """All SAs of one engine."""

    isakmp: dict[bytes, IsakmpSA] = field(default_factory=dict)
    ipsec: list[IPsecSA] = field(default_factory=list)

    def add_isakmp(self, sa: IsakmpSA) -> None:
        """Index an ISAKMP SA by its cookie pair."""
        self.isakmp[sa.cookies] = sa

    def rekey_isakmp(self, sa: IsakmpSA, old_cookies: bytes) -> None:
        """Re-index after the responder cookie became known."""
        if self.isakmp.get(old_cookies) is sa:
            del self.isakmp[old_cookies]
        self.isakmp[sa.cookies] = sa

    def find_half_open(self, icookie: bytes, peer: Addr) -> IsakmpSA | None:
        """The SA a responder created for this initiator cookie and peer, if any."""
        for sa in self.isakmp.values():
            if sa.icookie == icookie and sa.peer == peer and not sa.initiator:
                return sa
        return None

    def remove_isakmp(self, sa: IsakmpSA) -> None:
        """Forget an ISAKMP SA (its IPsec SAs stay, as in isakmpd)."""
        sa.set_state(SAState.DEAD)
        if self.isakmp.get(sa.cookies) is sa:
            del self.isakmp[sa.cookies]

    def ready_isakmp(self, peer_host: str) -> Iterator[IsakmpSA]:
        """Usable ISAKMP SAs with this peer address, newest first."""
        found = [s for s in self.isakmp.values()
                 if s.peer[0] == peer_host and s.state in (SAState.READY, SAState.FADING)]
        found.sort(key=lambda s: (s.state is SAState.READY, s.created), reverse=True)
        return iter(found)

    def ipsec_by_spi(self, proto: int, spi: int) -> IPsecSA | None:
        """The IPsec SA with this (protocol, SPI) on either side."""
        for sa in self.ipsec:
            for p in sa.protocols:
                if p.choice.protocol_id == proto and spi in (p.spi_in, p.spi_out):
                    return sa
        return None

    def ipsec_by_name(self, name: str) -> list[IPsecSA]:
        """Live IPsec SAs of a connection."""
        return [s for s in self.ipsec if s.name == name and s.state is not SAState.DEAD]

    def remove_ipsec(self, sa: IPsecSA) -> None:
        """Forget an IPsec SA."""
        sa.set_state(SAState.DEAD)
        if sa in self.ipsec:
            self.ipsec.remove(sa)

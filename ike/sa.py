"""Security associations as the engine keeps them: ISAKMP SAs (Phase 1) and IPsec SAs (Phase 2).

Plain records plus one table.  An ISAKMP SA is found by its cookie pair (a half-open one, before
the responder cookie is known, by the initiator cookie and peer); an IPsec SA by the SPIs we
receive on, by its connection name, or through the ISAKMP SA that negotiated it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, overload

from ike.crypto.cipher import CBC
from ike.crypto.keymat import Phase1Keys
from ike.policy import ChosenProtocol, IdentityData
from ike.timers import NEVER, Timed, TimedDict, TimerHeap, timed

if TYPE_CHECKING:
    from ike.exchange.dpd import DpdState
    from ike.exchange.natt import NatState

__all__ = ["IPsecSA", "IPsecTable", "IsakmpSA", "ProtoSA", "SAState", "SATable"]

log = logging.getLogger("ike.sa")

Addr = tuple[str, int]


class SAState(Enum):
    """Life of an SA: negotiating, usable, soft-expired (still usable), gone."""

    LARVAL = "larval"
    READY = "ready"
    FADING = "fading"
    DEAD = "dead"


@timed("soft_at", "hard_at", parts=("nat", "dpd"))
@dataclass
class IsakmpSA(Timed):
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
    # The timed attributes (ike.timers: hooked while the engine's timer heap is in use).
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

    def timer_min(self) -> float:
        """The earliest of soft and hard expiry, the next DPD check, the next NAT-keepalive."""
        earliest = NEVER
        if (t := self.soft_at) is not None:
            earliest = t
        if (t := self.hard_at) is not None and t < earliest:
            earliest = t
        if (dpd := self.dpd) is not None and (due := dpd.next_at) < earliest:
            earliest = due
        if (nat := self.nat) is not None and (t := nat.keepalive_at) is not None \
                and t < earliest:
            earliest = t
        return earliest

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


@timed("soft_at", "hard_at", "out_at")
@dataclass
class IPsecSA(Timed):
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
    """Deadlines (with ``out_at``): hooked while the engine's timer heap is in use
    (ike.timers)."""
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

    def timer_min(self) -> float:
        """The earliest of soft and hard expiry and the held-back outbound SAs' next look."""
        earliest = NEVER
        if (t := self.soft_at) is not None:
            earliest = t
        if (t := self.hard_at) is not None and t < earliest:
            earliest = t
        if (t := self.out_at) is not None and t < earliest:
            earliest = t
        return earliest

    def set_state(self, new: SAState) -> None:
        """Move to ``new``, logging the transition."""
        if new is not self.state:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("ipsec sa %s %x: %s -> %s", self.name, self.message_id,
                          self.state.value, new.value)
            self.state = new


class IPsecTable(Sequence[IPsecSA]):
    """The IPsec SAs in the order they were established, indexed by identity, by connection
    name and by (protocol, SPI) (removal and look-ups in O(1) at gateway scale: a DELETE or a
    kernel EXPIRE names an SPI), with the heap of their deadlines.  ``append``, ``remove`` and
    ``clear`` are the only ways in and out."""

    def __init__(self, heap: TimerHeap | None = None) -> None:
        self._items: TimedDict[int, IPsecSA] = TimedDict(heap)
        """By identity; putting an SA in registers its deadlines."""
        self._by_name: dict[str, dict[int, IPsecSA]] = {}
        self._by_spi: dict[tuple[int, int], dict[int, IPsecSA]] = {}
        """(protocol, SPI) on either side -> the SAs using it, oldest first (an SPI we chose
        may equal one a peer chose for another SA)."""
        self.timers = self._items.timers
        self.view = self._items.values()
        """The SAs, oldest first: a live view (no copy, as iterating the table makes; do not
        add or remove while walking it)."""

    def append(self, sa: IPsecSA) -> None:
        """Add a newly established SA (at the end)."""
        key = id(sa)
        if key not in self._items:  # (an id in the table is that SA's: it is alive)
            self._items[key] = sa
            self._by_name.setdefault(sa.name, {})[key] = sa
            by_spi = self._by_spi  # (a loop, not a generator: one of these per Quick Mode)
            for p in sa.protocols:
                proto = p.choice.protocol_id
                for k in ((proto, p.spi_in), (proto, p.spi_out)):
                    using = by_spi.get(k)
                    if using is None:
                        by_spi[k] = {key: sa}
                    else:
                        using[key] = sa

    def remove(self, sa: IPsecSA) -> None:
        """Take ``sa`` out (ValueError when it is not in, as for a list)."""
        key = id(sa)
        if self._items.get(key) is not sa:
            raise ValueError("IPsec SA not in the table")
        del self._items[key]
        named = self._by_name[sa.name]
        del named[key]
        if not named:
            del self._by_name[sa.name]
        by_spi = self._by_spi  # (the SPIs never change once the SA is established)
        for p in sa.protocols:
            proto = p.choice.protocol_id
            for k in ((proto, p.spi_in), (proto, p.spi_out)):
                using = by_spi.get(k)
                if using is not None and using.pop(key, None) is not None and not using:
                    del by_spi[k]

    def clear(self) -> None:
        """Forget every SA."""
        self._items.clear()
        self._by_name.clear()
        self._by_spi.clear()

    def by_spi(self, proto: int, spi: int) -> IPsecSA | None:
        """The oldest SA with this (protocol, SPI) on either side."""
        using = self._by_spi.get((proto, spi))
        return next(iter(using.values())) if using else None

    def by_name(self, name: str) -> list[IPsecSA]:
        """The SAs of one connection, oldest first."""
        named = self._by_name.get(name)
        return list(named.values()) if named else []

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[IPsecSA]:
        # a snapshot, as iterating a list was: callers delete SAs while they walk
        return iter(tuple(self._items.values()))

    def __contains__(self, sa: object) -> bool:
        return self._items.get(id(sa)) is sa

    @overload
    def __getitem__(self, index: int) -> IPsecSA: ...

    @overload
    def __getitem__(self, index: slice) -> list[IPsecSA]: ...

    def __getitem__(self, index: int | slice) -> IPsecSA | list[IPsecSA]:
        return list(self._items.values())[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, IPsecTable):
            other = list(other)
        return isinstance(other, list) and list(self._items.values()) == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"IPsecTable({list(self._items.values())!r})"


@dataclass
class SATable:
    """All SAs of one engine."""

    timers: TimerHeap = field(default_factory=TimerHeap)
    """The deadlines of both tables (and of the engine's exchanges): ike.timers."""
    isakmp: TimedDict[bytes, IsakmpSA] = field(init=False)
    """By cookie pair; putting an SA in registers its deadlines."""
    ipsec: IPsecTable = field(init=False)

    def __post_init__(self) -> None:
        self.isakmp = TimedDict(self.timers)
        self.ipsec = IPsecTable(self.timers)

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
        """The IPsec SA with this (protocol, SPI) on either side (indexed)."""
        return self.ipsec.by_spi(proto, spi)

    def ipsec_by_name(self, name: str) -> list[IPsecSA]:
        """Live IPsec SAs of a connection (indexed: the rekey and delete paths ask often)."""
        named = self.ipsec._by_name.get(name)  # (by_name inlined: every Quick Mode asks)
        return [s for s in named.values() if s.state is not SAState.DEAD] if named else []

    def remove_ipsec(self, sa: IPsecSA) -> None:
        """Forget an IPsec SA."""
        sa.set_state(SAState.DEAD)
        if sa in self.ipsec:  # by identity, in O(1)
            self.ipsec.remove(sa)

"""The kernel command interface: what the IKE engine asks of the kernel, and what it hears back.

This is the Python counterpart of isakmpd's ``sysdep_ipsec_*`` / ``pf_key_v2_*`` split: the engine
builds command dataclasses carrying IPsec DOI values (RFC 2407) and hands them to a
:class:`KernelBackend`; the backend (``xfrm`` on Linux, ``none`` for ``-n``, ``fake`` in tests)
translates them and delivers kernel events (:class:`Acquire`, :class:`Expire`,
:class:`PolicyExpire`, and on request :class:`NatMapping`) to one handler.  Only the backends
speak netlink.

Conventions: protocols, transforms and attributes are DOI numbers (``ike.doi.constants``);
addresses are ``ipaddress`` objects; SPIs are ints; selectors are given in the direction of the
traffic they match; errors are :class:`KernelError` with the errno and the kernel's own message.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol, runtime_checkable

from ike.doi.constants import ProtocolId

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: SPI range isakmpd asks for (``IPSEC_SPI_LOW``): SPIs 1..255 are reserved by IANA (RFC 4303).
IPSEC_SPI_LOW = 0x100
IPSEC_SPI_HIGH = 0xFFFFFFFF
#: IPComp CPIs are 16 bits (RFC 3173); 1..255 are well known, 256..61439 negotiable.
IPCOMP_CPI_LOW = 0x100
IPCOMP_CPI_HIGH = 0xEFFF


class Direction(IntEnum):
    """Flow direction; the values are Linux's XFRM_POLICY_IN/OUT/FWD."""

    IN = 0
    OUT = 1
    FWD = 2


class EncapType(IntEnum):
    """UDP encapsulation of ESP (RFC 3948); values are the Linux UDP_ENCAP_* numbers."""

    ESPINUDP_NON_IKE = 1
    ESPINUDP = 2


def address(value: str | Address) -> Address:
    """Parse an IP address (convenience for tests and configuration glue)."""
    return value if not isinstance(value, str) else ipaddress.ip_address(value)


def network(value: str | Network) -> Network:
    """Parse an IP network, accepting host bits set as isakmpd's ID payload handling does."""
    return value if not isinstance(value, str) else ipaddress.ip_network(value, strict=False)


@dataclass(frozen=True)
class TrafficSelector:
    """Local/remote networks with an upper-layer protocol and ports (0 = any), like a QM ID pair.

    ``src`` and ``dst`` are as seen by packets going *out*; :meth:`reversed` gives the inbound one.
    """

    src: Network
    dst: Network
    proto: int = 0
    sport: int = 0
    dport: int = 0

    def __post_init__(self) -> None:
        # the same class is the same version (the version property is a Python call each)
        if type(self.src) is not type(self.dst) and self.src.version != self.dst.version:
            raise ValueError(f"selector mixes IPv{self.src.version} and IPv{self.dst.version}")
        if not (0 <= self.proto <= 255 and 0 <= self.sport <= 65535
                and 0 <= self.dport <= 65535):  # one test on the hot path, the name on failure
            for name, top in (("proto", 255), ("sport", 65535), ("dport", 65535)):
                value = getattr(self, name)
                if not 0 <= value <= top:
                    raise ValueError(f"selector {name} {value} out of range")

    def __hash__(self) -> int:
        # computed once (an ipaddress network hashes in Python) and kept: a selector is
        # immutable, and flows are keyed by it
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((self.src, self.dst, self.proto, self.sport, self.dport))
            object.__setattr__(self, "_hash", cached)
        return cached

    @property
    def family(self) -> int:
        """The address family (AF_INET or AF_INET6)."""
        return socket.AF_INET if self.src.version == 4 else socket.AF_INET6

    def reversed(self) -> TrafficSelector:
        """The selector of the opposite direction (swap source and destination)."""
        return TrafficSelector(self.dst, self.src, self.proto, self.dport, self.sport)

    @classmethod
    def host_pair(cls, src: Address, dst: Address) -> TrafficSelector:
        """A /32 (/128) selector between two hosts, as for transport mode."""
        return cls(ipaddress.ip_network(src), ipaddress.ip_network(dst))


@dataclass(frozen=True)
class Lifetime:
    """Soft and hard limits of one SA (0 = no limit); isakmpd sets soft to 90 % of hard."""

    soft_seconds: int = 0
    hard_seconds: int = 0
    soft_bytes: int = 0
    hard_bytes: int = 0

    @classmethod
    @functools.lru_cache(maxsize=64)
    def from_negotiated(cls, seconds: int = 0, kilobytes: int = 0) -> Lifetime:
        """Limits from the DOI SA Life Type/Duration attributes, soft = 90 % as isakmpd does
        (memoised: a Lifetime is immutable, and every Quick Mode with a peer negotiates the
        same one, which a frozen dataclass's __init__ would build field by field)."""
        nbytes = kilobytes * 1024
        return cls(seconds * 9 // 10, seconds, nbytes * 9 // 10, nbytes)


@dataclass(frozen=True)
class NatTEncap:
    """UDP encapsulation of ESP for NAT traversal (RFC 3947/3948): ports of the IKE peers."""

    sport: int = 4500
    dport: int = 4500
    type: EncapType = EncapType.ESPINUDP
    original_address: Address | None = None


# --------------------------------------------------------------------------- commands


# Plain slotted dataclasses (not frozen): built once or twice per Quick Mode, and a frozen
# dataclass's __init__ pays object.__setattr__ per field; none is hashed or used as a key.
@dataclass(slots=True)
class GetSPI:
    """Reserve an inbound SPI (CPI for IPComp) for SAs from ``src`` to us (``dst``).

    ``seq`` is the ACQUIRE sequence number when the negotiation started from one (isakmpd passes
    it too).  The backend answers with the SPI; an xfrm kernel keeps it as a larval SA that the
    matching inbound :class:`AddSA` completes.
    """

    src: Address
    dst: Address
    proto: int = ProtocolId.IPSEC_ESP
    seq: int = 0
    spi_min: int = IPSEC_SPI_LOW
    spi_max: int = IPSEC_SPI_HIGH
    reqid: int = 0

    def spi_range(self) -> tuple[int, int]:
        """The range to allocate from: for IPComp with the default (ESP) range, the 16-bit
        negotiable CPI range instead, as isakmpd asks for."""
        if self.proto == ProtocolId.IPCOMP and (self.spi_min, self.spi_max) == (
            IPSEC_SPI_LOW, IPSEC_SPI_HIGH
        ):
            return IPCOMP_CPI_LOW, IPCOMP_CPI_HIGH
        return self.spi_min, self.spi_max


@dataclass(slots=True)
class AddSA:
    """Install one SA; ``inbound`` ones use the SPI we allocated, outbound ones the peer's.

    Algorithms are DOI values: ``transform_id`` is the ESP/AH/IPCOMP transform (RFC 2407 4.4.4),
    ``auth_alg`` the Authentication Algorithm attribute (class 5, None when absent, e.g. AES-GCM),
    ``key_length`` the Key Length attribute in bits (None when absent).  ``enc_key`` is the whole
    encryption part of KEYMAT, salt or nonce included for CTR/GCM/CCM/GMAC; ``auth_key`` the
    authentication part.  ``acquire_seq`` (outbound) replaces the larval state of an ACQUIRE.
    """

    proto: int
    spi: int
    src: Address
    dst: Address
    inbound: bool
    transform_id: int
    auth_alg: int | None = None
    key_length: int | None = None
    enc_key: bytes = field(default=b"", repr=False)
    auth_key: bytes = field(default=b"", repr=False)
    tunnel: bool = False
    selector: TrafficSelector | None = None
    lifetime: Lifetime = Lifetime()
    encap: NatTEncap | None = None
    reqid: int = 0
    replay_window: int = 32
    acquire_seq: int = 0


@dataclass(frozen=True)
class DeleteSA:
    """Remove one SA, identified as the kernel does by (dst, spi, proto)."""

    proto: int
    spi: int
    src: Address
    dst: Address


@dataclass(frozen=True)
class QuerySA:
    """Read an SA's current counters (isakmpd's ``pf_key_v2_get_kernel_sa``)."""

    proto: int
    spi: int
    src: Address
    dst: Address


@dataclass(frozen=True)
class SAStats:
    """What :class:`QuerySA` answers: current byte/packet counts and times (epoch seconds)."""

    bytes: int
    packets: int
    add_time: int
    use_time: int


@dataclass(slots=True)
class AddFlow:
    """Install a flow (XFRM policy): traffic matching ``selector`` in ``direction`` needs IPsec.

    ``selector`` is always given in the direction of the traffic it matches (for IN/FWD flows the
    remote network is ``src``).  ``src``/``dst`` are the SA endpoints (tunnel mode: the gateways;
    transport mode: the hosts).  ``proto`` is the DOI protocol; ``bypass`` instead installs an
    allow-without-IPsec flow, as isakmpd's bypass flows.

    A two-protocol bundle (IPComp under ESP, ESP under AH) gives the inner protocol in
    ``inner_proto``.  Linux applies the inner one first and, in tunnel mode, tunnels there: the
    inner SA must then be the tunnel-mode one and the outer SA transport mode (as strongSwan
    installs them); an inbound IPComp template is optional, since small packets come
    uncompressed (the kernel refuses optional templates in outbound policies).
    """

    selector: TrafficSelector
    direction: Direction
    src: Address
    dst: Address
    proto: int = ProtocolId.IPSEC_ESP
    tunnel: bool = False
    reqid: int = 0
    priority: int = 0
    bypass: bool = False
    optional: bool = False
    inner_proto: int = 0


@dataclass(frozen=True)
class DeleteFlow:
    """Remove the flow with this selector and direction."""

    selector: TrafficSelector
    direction: Direction


@dataclass(frozen=True)
class Flush:
    """Remove everything this daemon installed (shutdown, FIFO ``t``/``T``).

    ``everything`` flushes the whole SAD and SPD of the network namespace instead; never use it
    outside a namespace the caller owns.
    """

    everything: bool = False


KernelCommand = GetSPI | AddSA | DeleteSA | QuerySA | AddFlow | DeleteFlow | Flush

# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class Acquire:
    """Traffic hit a flow with no SA: negotiate one (isakmpd's on-demand connections).

    ``selector`` is the flow's (policy) selector, to use as the Quick Mode IDs; ``packet`` the
    exact triggering packet's selector.  ``src``/``dst`` are the SA endpoints.  The outbound
    SA carries ``seq`` back in :attr:`AddSA.acquire_seq`.
    """

    seq: int
    selector: TrafficSelector
    packet: TrafficSelector
    src: Address
    dst: Address
    proto: int
    reqid: int = 0
    tunnel: bool = False
    policy_index: int = 0


@dataclass(frozen=True)
class Expire:
    """An SA reached a limit: soft means renegotiate, hard means it is gone (tell the peer).

    ``spi == 0`` with ``hard`` is a larval state timing out: an ACQUIRE nobody answered in time.
    """

    proto: int
    spi: int
    src: Address
    dst: Address
    hard: bool
    reqid: int = 0

    @property
    def larval(self) -> bool:
        """True for an unanswered ACQUIRE's state timing out (not an SA expiry)."""
        return self.spi == 0


@dataclass(frozen=True)
class PolicyExpire:
    """A flow with a lifetime expired (soft or hard)."""

    selector: TrafficSelector
    direction: Direction
    hard: bool
    policy_index: int = 0


@dataclass(frozen=True)
class NatMapping:
    """ESP-in-UDP arrived for an inbound SA from another address or port than installed: the
    peer's NAT mapping changed (RFC 3947/3948).  Only sent by backends asked for it."""

    proto: int
    spi: int
    dst: Address
    reqid: int
    old_src: Address
    new_src: Address
    old_sport: int
    new_sport: int


KernelEvent = Acquire | Expire | PolicyExpire | NatMapping
EventHandler = Callable[[KernelEvent], None]

# --------------------------------------------------------------------------- errors


class KernelError(Exception):
    """A kernel command failed; ``errno`` and the kernel's own message (extack) when it sent one."""

    def __init__(
        self, message: str, *, errno_value: int = 0, command: object = None, extack: str = ""
    ) -> None:
        super().__init__(message)
        self.errno = errno_value
        self.command = command
        self.extack = extack

    @property
    def errno_name(self) -> str:
        """The symbolic name of :attr:`errno` (``EPROTONOSUPPORT``), or ``""``."""
        return errno.errorcode.get(self.errno, "")


# --------------------------------------------------------------------------- backend protocol


@runtime_checkable
class KernelBackend(Protocol):
    """What every backend offers.  Commands are synchronous (netlink answers at once); events are
    delivered to the handler given to :meth:`set_event_handler`, from the asyncio loop given to
    :meth:`attach` (xfrm) or directly when injected (fake)."""

    name: str

    def open(self) -> None:
        """Open kernel sockets; safe to call once before any command."""

    def close(self) -> None:
        """Close sockets; does not remove anything (see :class:`Flush`)."""

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start delivering kernel events to the handler from this event loop."""

    def get_spi(self, cmd: GetSPI) -> int:
        """Reserve and return an inbound SPI (or CPI)."""

    def add_sa(self, cmd: AddSA) -> None:
        """Install an SA."""

    def delete_sa(self, cmd: DeleteSA) -> None:
        """Remove an SA."""

    def query_sa(self, cmd: QuerySA) -> SAStats | None:
        """Counters of an SA, or None if the kernel has no such SA."""

    def add_flow(self, cmd: AddFlow) -> None:
        """Install a flow."""

    def delete_flow(self, cmd: DeleteFlow) -> None:
        """Remove a flow."""

    def flush(self, cmd: Flush) -> None:
        """Remove what this daemon installed (or, with ``everything``, the namespace's all)."""

    def set_event_handler(self, handler: EventHandler | None) -> None:
        """Where kernel events go (None: drop them)."""

    def bypass_socket(self, sock: socket.socket) -> None:
        """Let an IKE socket's traffic bypass IPsec flows."""

    def enable_udp_encap(self, sock: socket.socket) -> None:
        """Make a UDP :4500 socket decapsulate ESP-in-UDP (RFC 3948)."""


def execute(backend: KernelBackend, cmd: KernelCommand) -> int | SAStats | None:
    """Run one command on a backend by its type (for engines that queue commands as data)."""
    match cmd:
        case GetSPI():
            return backend.get_spi(cmd)
        case AddSA():
            backend.add_sa(cmd)
        case DeleteSA():
            backend.delete_sa(cmd)
        case QuerySA():
            return backend.query_sa(cmd)
        case AddFlow():
            backend.add_flow(cmd)
        case DeleteFlow():
            backend.delete_flow(cmd)
        case Flush():
            backend.flush(cmd)
    return None

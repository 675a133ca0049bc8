"""Events the engine reports to its runtime (popped with `Engine.next_event()`).

Plain frozen dataclasses, one per thing a daemon, a test or a log wants to hear about.  Kernel
work is not an event: it goes to the kernel backend as commands (ike.kernel.interface).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "EngineEvent",
    "ExchangeFailed",
    "ModeConfigDone",
    "NotifyReceived",
    "Phase1Done",
    "Phase2Done",
    "SADeleted",
    "XauthDone",
]


@dataclass(frozen=True)
class Phase1Done:
    """An ISAKMP SA is established (Main or Aggressive Mode finished on our side)."""

    name: str
    """The ISAKMP-peer section (or the address when none was configured)."""
    cookies: bytes
    """CKY-I | CKY-R, 16 bytes: the SA's identity on the wire."""
    initiator: bool
    peer: tuple[str, int]
    exchange: str
    """``main`` or ``aggressive``."""


@dataclass(frozen=True)
class Phase2Done:
    """A Quick Mode finished: the IPsec SA bundle was handed to the kernel."""

    name: str
    """The IPsec-connection section, or ``peer-<address>`` for a passive responder."""
    cookies: bytes
    message_id: int
    initiator: bool
    spis_in: tuple[tuple[int, int], ...]
    """(DOI protocol, SPI) pairs we receive on."""
    spis_out: tuple[tuple[int, int], ...]
    """(DOI protocol, SPI) pairs we send on."""


@dataclass(frozen=True)
class SADeleted:
    """An SA is gone: deleted by us, by the peer, by expiry, or replaced by a rekey."""

    kind: str
    """``isakmp`` or ``ipsec``."""
    name: str
    reason: str
    cookies: bytes
    spis: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class ExchangeFailed:
    """An exchange ended without an SA; ``notify`` is the type sent or received (0: none)."""

    name: str
    exchange: str
    reason: str
    notify: int
    peer: tuple[str, int]


@dataclass(frozen=True)
class NotifyReceived:
    """A notification from the peer (after Phase 1 only when its HASH verified)."""

    notify: int
    protocol: int
    spi: bytes
    data: bytes
    peer: tuple[str, int]
    authenticated: bool


@dataclass(frozen=True)
class ModeConfigDone:
    """The peer gave us mode-config attributes (a REPLY to our REQUEST, or its SET)."""

    name: str
    cookies: bytes
    peer: tuple[str, int]
    attributes: dict[str, list[str]]
    """By attribute name (``INTERNAL_IP4_ADDRESS``...), values as text."""


@dataclass(frozen=True)
class XauthDone:
    """XAUTH ended: ``server`` True when we checked the peer's credentials."""

    name: str
    cookies: bytes
    user: str
    success: bool
    server: bool


EngineEvent = (Phase1Done | Phase2Done | SADeleted | ExchangeFailed | NotifyReceived
               | ModeConfigDone | XauthDone)

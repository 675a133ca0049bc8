"""The exchange layer's one error type: a peer's message we refuse, and the notify that says so."""

from __future__ import annotations

import ipaddress

from ike.wire.constants import NotifyType

__all__ = ["ExchangeError", "config_address"]


class ExchangeError(Exception):
    """An exchange cannot go on: ``notify`` answers the peer (when ``send``), ``reason`` is logged.

    Raised anywhere inside a task; the engine translates it once, at the boundary, into a
    notification (or a silent drop) and the end of the exchange.
    """

    def __init__(self, notify: NotifyType, reason: str, *, send: bool = True,
                 fatal: bool = True) -> None:
        super().__init__(f"{notify.name}: {reason}")
        self.notify = notify
        self.reason = reason
        self.send = send
        self.fatal = fatal


def config_address(text: str, where: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address read from the configuration (*where* is ``[section]:Tag``): a value that is
    none fails the exchange with a message naming it, instead of escaping as ValueError."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ExchangeError(NotifyType.INVALID_ID_INFORMATION,
                            f"{where}: {text!r} is not an IP address", send=False) from None

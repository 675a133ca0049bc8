"""The exchange layer's one error type: a peer's message we refuse, and the notify that says so."""

from __future__ import annotations

from ike.wire.constants import NotifyType

__all__ = ["ExchangeError"]


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

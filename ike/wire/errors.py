"""The codec's one error type: what went wrong and which notify answers it."""

from __future__ import annotations

from ike.wire.constants import NotifyType


class WireError(Exception):
    """A datagram (or a value to encode) that breaks the ISAKMP wire format.

    ``notify`` is the RFC 2408 notify type the engine should answer with (or
    drop on); ``message`` says, for a person, what was wrong and where.
    """

    def __init__(self, notify: NotifyType, message: str) -> None:
        super().__init__(message)
        self.notify = notify
        self.message = message

    def __str__(self) -> str:
        return f"{self.notify.name}: {self.message}"

    def __repr__(self) -> str:
        return f"WireError({self.notify.name}, {self.message!r})"

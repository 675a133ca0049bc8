"""The exchange task base: one object per exchange, holding its state, CBC chain and retransmits.

A task builds and processes messages; the engine owns the transport.  Every message this task
sends goes through :meth:`Exchange.send`, which encrypts when asked, remembers the datagram for
retransmission (isakmpd's back-off: ``xmits * 2 + 5`` seconds) and for answering a repeated peer
message, and queues it.  State changes go through :meth:`set_state` and are logged ``old -> new``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

from ike.crypto.cipher import Keystate
from ike.sa import IsakmpSA
from ike.timers import NEVER, Timed
from ike.wire import (
    ExchangeType,
    Flags,
    Message,
    Payload,
    PayloadType,
    decode_chain,
    encode_message,
    encode_payloads,
)

if TYPE_CHECKING:
    from ike.engine import Engine

__all__ = ["Exchange", "cleartext_of", "rest_of"]

#: Each defined flag combination with E set, by integer value (IntFlag.__or__ runs in Python).
_WITH_ENC = {v: Flags(v | Flags.ENC) for v in range(8)}
_NONE = PayloadType.NONE  # bound once: an Enum class attribute read is slow

log = logging.getLogger("ike.exchange")


def cleartext_of(msg: Message) -> bytes:
    """The message as it would be with no encryption (E flag off, padding dropped), for
    packet captures."""
    return replace(msg, flags=msg.flags & ~Flags.ENC, trailer=b"", ciphertext=None).encode()


def rest_of(msg: Message, skip: int = 1) -> bytes:
    """The encoded payloads after the first ``skip`` ones (the input of QM/Informational HASHes)."""
    return encode_payloads(msg.payloads[skip:])[1]


class Exchange(Timed, ABC):
    """Base of all exchange tasks (Main, Aggressive, Quick, Informational).

    Its deadlines are plain attributes, set on every message: unlike an SA's they are never
    hooked (ike.timers) -- only this class's own lifecycle gives them a time (``__init__``,
    before the exchange enters the engine's table; :meth:`send`, :meth:`retransmit` and
    :meth:`finish`, which tell the engine's timer heap, while it is in use, what the hook of
    a timed attribute would).  Clearing one (None) is allowed anywhere: a deadline that goes
    away or moves later needs no entry."""

    kind: ClassVar[str] = "exchange"
    exchange_type: ClassVar[ExchangeType] = ExchangeType.NONE
    retransmit_at: float | None = None
    """When the last message goes out again (None: not to be resent)."""
    deadline: float
    """Exchange-max-time after the start: an unfinished exchange fails then."""
    linger_until: float | None = None
    """When a finished exchange is forgotten (until then it answers retransmissions)."""

    def __init__(self, engine: Engine, sa: IsakmpSA, message_id: int, initiator: bool,
                 now: float, name: str) -> None:
        self.engine = engine
        self.sa = sa
        self.message_id = message_id
        self.initiator = initiator
        self.name = name
        self.state = "start"
        self.step = 1 if not initiator else 2
        """The number (1-based, within the exchange) of the next message we expect."""
        self.keystate: Keystate | None = None
        self.last_in: bytes | None = None
        self.seen: set[bytes] = set()
        self.rest_in = b""
        """The peer's messages already processed: old copies are dropped."""
        self.last_out: bytes | None = None
        self.answers: bytes | None = None
        """The peer message ``last_out`` answered: only its repeat makes us resend."""
        self.xmits = 0
        self.retransmit_at = None
        self.deadline = now + engine.exchange_max_time
        self.finished = False
        self.failed = False
        self.linger_until = None
        self.he_committed = False

    # ---- bookkeeping -----------------------------------------------------------------------

    def set_state(self, new: str) -> None:
        """Move to ``new``, logging ``old -> new`` with the exchange's identity."""
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s %s/%08x: %s -> %s", self.engine.tag, self.kind,
                      self.sa.cookies.hex(), self.message_id, self.state, new)
        self.state = new

    def timer_min(self) -> float:
        """The earliest of retransmission, the max-time deadline (while unfinished) and the
        end of lingering."""
        earliest = NEVER if self.finished else self.deadline
        if (t := self.retransmit_at) is not None and t < earliest:
            earliest = t
        if (t := self.linger_until) is not None and t < earliest:
            earliest = t
        return earliest

    @property
    def key(self) -> tuple[bytes, int]:
        """How the engine indexes this exchange: (CKY-I | CKY-R, M-ID)."""
        return self.sa.cookies, self.message_id

    def finish(self, now: float, *, failed: bool = False) -> None:
        """End the exchange; keep the last message a while to answer retransmissions."""
        self.finished = True
        self.failed = failed
        self.retransmit_at = None
        self.linger_until = now + self.engine.exchange_max_time
        if self.engine.timers.large:  # (nothing to do while scanning)
            self._armed(self.linger_until)
        self.set_state("failed" if failed else "done")

    # ---- messages --------------------------------------------------------------------------

    def send(self, payloads: Sequence[Payload], now: float, *, encrypt: bool,
             retransmit: bool = True, flags: Flags = Flags.NONE,
             chain: bytes | None = None) -> bytes:
        """Encode, maybe encrypt, queue and remember one message of this exchange.

        ``chain`` is the payloads already encoded (``encode_payloads(payloads)[1]``), when the
        caller had to encode them anyway (for a HASH over them)."""
        if self.he_committed:
            flags |= Flags.COMMIT
        sa = self.sa
        if chain is None:
            first, chain = encode_payloads(payloads)
        else:
            first = payloads[0].payload_type
        clear = b""
        body = chain
        if encrypt:
            assert self.keystate is not None, "encryption before keys"
            if self.engine.capture_cleartext:
                clear = encode_message(sa.icookie, sa.rcookie, first, self.exchange_type, flags,
                                       self.message_id, chain)
            body = self.keystate.encrypt(chain)
            flags = _WITH_ENC.get(int(flags)) or flags | Flags.ENC
            self.keystate.update_iv()
        data = encode_message(sa.icookie, sa.rcookie, first, self.exchange_type, flags,
                              self.message_id, body)
        if clear:
            self.engine.remember_cleartext(data, clear)
        self.last_out = data
        self.answers = self.last_in
        self.engine.queue(data, sa.local, sa.peer)
        self.xmits = 1
        if retransmit:
            self.retransmit_at = now + self.engine.retransmit_delay(1)
            if self.engine.timers.large:  # (nothing to do while scanning)
                self._armed(self.retransmit_at)
        else:
            self.retransmit_at = None
        return data

    def decrypt(self, msg: Message) -> Message:
        """Decrypt an encrypted message in place (its payloads and padding replace its
        ciphertext; one Message per datagram) and return it; the CBC chain moves on success
        only.  A cleartext message is returned as it is."""
        ciphertext = msg.ciphertext
        if ciphertext is None:
            return msg
        assert self.keystate is not None
        raw = msg.encode() if self.engine.capture_cleartext else b""
        plain = self.keystate.decrypt(ciphertext)
        msg.payloads, end = decode_chain(msg.first_payload, plain)
        msg.trailer = plain[end:]
        msg.ciphertext = None
        msg.first_payload = _NONE
        self.keystate.update_iv()
        if len(plain) >= 4:
            # the payloads after the first, as sent: the input of QM/informational HASHes
            self.rest_in = plain[int.from_bytes(plain[2:4], "big"):end]
        if raw:
            self.engine.remember_cleartext(raw, cleartext_of(msg))
        return msg

    def retransmit(self, now: float) -> None:
        """Resend the last message on timeout, with isakmpd's back-off, or give up."""
        if self.last_out is None or self.retransmit_at is None:
            return
        if self.xmits > self.engine.retransmits:
            log.info("%s giving up on exchange %s, no response from peer %s:%d", self.engine.tag,
                     self.name, self.sa.peer[0], self.sa.peer[1])
            self.retransmit_at = None
            return
        self.engine.queue(self.last_out, self.sa.local, self.sa.peer)
        self.xmits += 1
        self.retransmit_at = when = now + self.engine.retransmit_delay(self.xmits)
        self._armed(when)

    def _armed(self, when: float) -> None:
        """A deadline was just set to ``when``: while the heap is in use, one earlier than it
        knows of goes on it (what the hook of a timed attribute does, ike.timers)."""
        if (heap := self._timers) is not None and when < self._tmin:
            heap.push(when, self)

    @abstractmethod
    def process(self, msg: Message, now: float) -> None:
        """Handle the peer's next message (already decrypted and checked against the rules)."""
        ...

    def on_timeout(self, now: float) -> None:
        """The exchange ran past Exchange-max-time: clean up what it holds."""
        self.finish(now, failed=True)


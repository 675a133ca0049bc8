"""Which payloads are legal in which message of which exchange: one table, checked first.

The table plays the part of isakmpd's exchange scripts (``exchange.c``) and strongSwan's
``payload_rule_t`` arrays: for every (exchange type, message number) the payload types allowed,
how many of each, and whether the message must be encrypted.  The engine checks a decoded
message against it before any task sees it; a miss is PAYLOAD_MALFORMED (wrong count) or
INVALID_PAYLOAD_TYPE (a payload that has no business there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ike.exchange.errors import ExchangeError
from ike.wire.constants import ExchangeType, NotifyType, PayloadType

__all__ = ["RULES", "MessageRule", "check"]

P = PayloadType
MANY = 255


@dataclass(frozen=True)
class MessageRule:
    """Allowed payloads of one message: ``{type: (min, max)}`` and the encryption demand.

    ``encrypted`` is True (must), False (must not) or None (either, as for Aggressive 3).
    """

    payloads: dict[PayloadType, tuple[int, int]]
    encrypted: bool | None
    first: PayloadType | None = None


_NATD = {P.NAT_D: (0, MANY), P.NAT_D_DRAFT: (0, MANY)}
_VID = {P.VENDOR: (0, MANY)}
_AUTH = {P.HASH: (0, 1), P.SIG: (0, 1), P.CERT: (0, MANY), P.CERT_REQ: (0, MANY),
         P.NOTIFY: (0, MANY)}
_QM = {P.HASH: (1, 1), P.SA: (1, 1), P.NONCE: (1, 1), P.KEY_EXCH: (0, 1), P.ID: (0, 2),
       P.NOTIFY: (0, MANY), P.NAT_OA: (0, 2), P.NAT_OA_DRAFT: (0, 2)}

RULES: dict[tuple[int, int], MessageRule] = {
    (ExchangeType.ID_PROT, 1): MessageRule({P.SA: (1, 1), **_VID}, False),
    (ExchangeType.ID_PROT, 2): MessageRule({P.SA: (1, 1), **_VID, P.NOTIFY: (0, MANY)}, False),
    (ExchangeType.ID_PROT, 3): MessageRule(
        {P.KEY_EXCH: (1, 1), P.NONCE: (1, 1), P.CERT_REQ: (0, MANY), **_VID, **_NATD}, False),
    (ExchangeType.ID_PROT, 4): MessageRule(
        {P.KEY_EXCH: (1, 1), P.NONCE: (1, 1), P.CERT_REQ: (0, MANY), **_VID, **_NATD}, False),
    (ExchangeType.ID_PROT, 5): MessageRule({P.ID: (1, 1), **_AUTH, **_VID}, True),
    (ExchangeType.ID_PROT, 6): MessageRule({P.ID: (1, 1), **_AUTH, **_VID}, True),
    (ExchangeType.AGGRESSIVE, 1): MessageRule(
        {P.SA: (1, 1), P.KEY_EXCH: (1, 1), P.NONCE: (1, 1), P.ID: (1, 1),
         P.CERT_REQ: (0, MANY), **_VID}, False),
    (ExchangeType.AGGRESSIVE, 2): MessageRule(
        {P.SA: (1, 1), P.KEY_EXCH: (1, 1), P.NONCE: (1, 1), P.ID: (1, 1), **_AUTH, **_VID,
         **_NATD}, False),
    (ExchangeType.AGGRESSIVE, 3): MessageRule({**_AUTH, **_VID, **_NATD}, None),
    (ExchangeType.QUICK_MODE, 1): MessageRule(_QM, True, P.HASH),
    (ExchangeType.QUICK_MODE, 2): MessageRule(_QM, True, P.HASH),
    (ExchangeType.QUICK_MODE, 3): MessageRule({P.HASH: (1, 1)}, True, P.HASH),
    (ExchangeType.TRANSACTION, 1): MessageRule({P.HASH: (1, 1), P.ATTRIBUTE: (1, 1)}, True,
                                               P.HASH),
    (ExchangeType.TRANSACTION, 2): MessageRule({P.HASH: (1, 1), P.ATTRIBUTE: (1, 1)}, True,
                                               P.HASH),
    (ExchangeType.INFO, 1): MessageRule(
        {P.HASH: (0, 1), P.NOTIFY: (0, MANY), P.DELETE: (0, MANY)}, None),
}


#: Payload layouts already found legal: a verdict depends on nothing but its key, and a few
#: layouts recur on every exchange.  Bounded, as the peer chooses the layout.
_PASSED: set[tuple[int, int, tuple[int, ...], bool]] = set()
_PASSED_MAX = 256


def check(exchange: int, step: int, types: Sequence[int], encrypted: bool) -> None:
    """Raise ExchangeError unless message ``step`` of ``exchange`` may hold ``types``."""
    key = (exchange, step, tuple(types), encrypted)  # an IntEnum hashes as its int
    if key in _PASSED:
        return
    _check(exchange, step, types, encrypted)
    if len(_PASSED) < _PASSED_MAX:
        _PASSED.add(key)


def _check(exchange: int, step: int, types: Sequence[int], encrypted: bool) -> None:
    rule = RULES.get((exchange, step))
    if rule is None:
        raise ExchangeError(NotifyType.INVALID_EXCHANGE_TYPE,
                            f"no message {step} in a {ExchangeType(exchange).name} exchange")
    if rule.encrypted is True and not encrypted:
        raise ExchangeError(NotifyType.INVALID_FLAGS,
                            f"cleartext {ExchangeType(exchange).name} message {step}")
    if rule.encrypted is False and encrypted:
        raise ExchangeError(NotifyType.INVALID_FLAGS,
                            f"encrypted {ExchangeType(exchange).name} message {step}")
    counts: dict[int, int] = {}
    for t in types:
        counts[t] = counts.get(t, 0) + 1
    for t, n in counts.items():
        limits = rule.payloads.get(t)  # type: ignore[call-overload]
        if limits is None:
            if t >= 128:
                continue  # private payloads are ignored, as isakmpd does
            raise ExchangeError(
                NotifyType.INVALID_PAYLOAD_TYPE,
                f"{PayloadType(t).name} not allowed in {ExchangeType(exchange).name} "
                f"message {step}")
        if n > limits[1]:
            raise ExchangeError(NotifyType.PAYLOAD_MALFORMED,
                                f"{n} {PayloadType(t).name} payloads in message {step}")
    for t, (low, _high) in rule.payloads.items():
        if counts.get(t, 0) < low:
            raise ExchangeError(NotifyType.PAYLOAD_MALFORMED,
                                f"{ExchangeType(exchange).name} message {step} lacks {t.name}")
    if rule.first is not None and (not types or types[0] != rule.first):
        raise ExchangeError(NotifyType.PAYLOAD_MALFORMED,
                            f"message {step} does not start with {rule.first.name}")
    if exchange == ExchangeType.INFO and not (counts.get(P.NOTIFY) or counts.get(P.DELETE)):
        raise ExchangeError(NotifyType.PAYLOAD_MALFORMED, "informational without N or D")

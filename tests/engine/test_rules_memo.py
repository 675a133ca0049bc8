"""The payload rule check remembers only legal layouts: an illegal one fails every time."""

from __future__ import annotations

import pytest

from ike.exchange import rules
from ike.exchange.errors import ExchangeError
from ike.wire.constants import ExchangeType, PayloadType

P = PayloadType


def test_illegal_layout_fails_every_time_legal_passes_every_time() -> None:
    legal = [P.SA, P.VENDOR]
    for _ in range(3):
        rules.check(ExchangeType.ID_PROT, 1, legal, False)
    for _ in range(3):
        with pytest.raises(ExchangeError, match="NONCE not allowed"):
            rules.check(ExchangeType.ID_PROT, 1, [P.SA, P.NONCE], False)
        with pytest.raises(ExchangeError, match="encrypted"):
            rules.check(ExchangeType.ID_PROT, 1, legal, True)


def test_the_memo_stays_bounded() -> None:
    for n in range(rules._PASSED_MAX + 50):
        rules.check(ExchangeType.ID_PROT, 1, [P.SA, *([P.VENDOR] * (n % 17)), 128 + n % 100],
                    False)
    assert len(rules._PASSED) <= rules._PASSED_MAX

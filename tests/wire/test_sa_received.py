"""A decoded SA payload keeps its body as received (Phase 1 hashes SAi_b from it)."""

from __future__ import annotations

from ike.doi.constants import ProtocolId
from ike.wire import Message
from ike.wire.attributes import Attribute
from ike.wire.payloads import Proposal, SecurityAssociation, Transform


def _sa() -> SecurityAssociation:
    xf = Transform(0, 1, [Attribute(1, 7), Attribute(2, 2), Attribute(14, 128)])
    return SecurityAssociation([Proposal(1, ProtocolId.ISAKMP, b"", [xf])])


def test_received_is_the_body_and_ignored_by_equality() -> None:
    built = _sa()
    assert built.received == b""
    data = Message(b"\x01" * 8, payloads=[built]).encode()
    got = Message.decode(data).get(SecurityAssociation)
    assert got is not None
    assert got.received == built.encode_body() == got.encode_body()
    assert got.received == data[28 + 4:]
    assert got == built  # received takes no part in comparisons
    assert "received" not in repr(got)

"""The codec's fast paths give what the checked decoders give, and leave every fault to them.

SecurityAssociation.decode reads a regular SA body in one pass (_regular_proposals) and falls
back to the checked chain decoders otherwise; a decoded transform keeps all-TV attributes as
bytes until they are read; encode_payloads loops and falls back to the checked encoder.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ike.doi.constants import EspTransformId, ProtocolId
from ike.wire import (
    Attribute,
    PayloadType,
    Proposal,
    SecurityAssociation,
    Transform,
    WireError,
)
from ike.wire.buffer import GENERIC
from ike.wire.message import _encode_checked, encode_payloads
from ike.wire.payloads import Hash, Nonce, Payload, _chain, _regular_proposals

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

u8 = st.integers(0, 0xFF)
tv_attributes = st.lists(st.builds(Attribute, st.integers(0, 0x7FFF), st.integers(0, 0xFFFF)),
                         min_size=1, max_size=5)
any_attributes = st.lists(st.builds(Attribute, st.integers(0, 0x7FFF),
                                     st.one_of(st.integers(0, 0xFFFF), st.binary(max_size=6))),
                          max_size=4)


def _sas(attributes: st.SearchStrategy[list[Attribute]]) -> st.SearchStrategy[bytes]:
    """Encoded SA payload bodies (DOI and situation included)."""
    transforms = st.builds(Transform, u8, u8, attributes)
    proposals = st.builds(Proposal, u8, st.sampled_from([1, 2, 3, 4, 200]),
                          st.binary(max_size=8), st.lists(transforms, max_size=3))
    return st.builds(lambda ps: SecurityAssociation(ps).encode_body(),
                     st.lists(proposals, min_size=1, max_size=3))


def _checked(body: bytes) -> list[Proposal]:
    return _chain(memoryview(body)[8:], PayloadType.PROPOSAL, Proposal.decode, 4, "SA")


@SETTINGS
@given(_sas(tv_attributes))
def test_a_regular_sa_is_read_in_one_pass_as_the_checked_decoders_read_it(body: bytes) -> None:
    fast = _regular_proposals(memoryview(body)[8:])
    assert fast is not None
    assert fast == _checked(body)
    assert [[t.received for t in p.transforms] for p in fast] == [
        [t.received for t in p.transforms] for p in _checked(body)]


@SETTINGS
@given(_sas(any_attributes), st.data())
def test_damaged_sa_bodies_fall_back_to_the_checked_error(body: bytes, data: st.DataObject
                                                          ) -> None:
    damaged = bytearray(body)
    if len(damaged) > 8:
        at = data.draw(st.integers(8, len(damaged) - 1))
        damaged[at] = data.draw(u8)
        cut = data.draw(st.integers(8, len(damaged)))
        damaged = damaged[:cut]
    raw = bytes(damaged)
    fast = _regular_proposals(memoryview(raw)[8:])
    try:
        checked = _checked(raw)
    except WireError:
        assert fast is None  # the fault is the checked decoders' to report
        return
    assert fast is None or fast == checked


def test_tv_attributes_are_decoded_when_first_read() -> None:
    xf = Transform(1, EspTransformId.AES, [Attribute(1, 1), Attribute(2, 28800), Attribute(4, 1)])
    sa = SecurityAssociation([Proposal(1, ProtocolId.IPSEC_ESP, b"\0\0\0\1", [xf])])
    got = SecurityAssociation.decode(memoryview(sa.encode_body())).proposals[0].transforms[0]
    assert got._attributes is None  # still bytes
    assert got.encode_body() == xf.encode_body()  # reads them
    assert got.attributes == xf.attributes and got == xf
    assert repr(got) == repr(xf)
    echoed = got.echo()
    assert echoed.encode_body() == got.received and echoed != got  # another class


def test_tlv_attributes_are_decoded_and_checked_at_once() -> None:
    xf = Transform(1, 12, [Attribute(1, 1), Attribute(2, b"\x00\x01\x51\x80")])
    body = memoryview(xf.encode_body())
    assert Transform.decode(body, 3)._attributes == xf.attributes
    try:
        Transform.decode(body[:-1], 3)
    except WireError as e:
        assert "TRANSFORM #1 attributes" in str(e)
    else:
        raise AssertionError("a cut TLV attribute decoded")


def test_encode_payloads_falls_back_to_the_checked_encoder_on_any_fault() -> None:
    good: list[Payload] = [Hash(b"h" * 20), Nonce(b"n" * 16)]
    assert encode_payloads(good) == _encode_checked(good)
    assert encode_payloads(good)[1][:4] == GENERIC.pack(10, 0, 24)
    too_long: list[Payload] = [Hash(b"x"), Nonce(b"n" * 0x10000)]
    for encoder in (encode_payloads, _encode_checked):
        try:
            encoder(too_long)
        except WireError as e:
            assert "NONCE" in str(e)
        else:
            raise AssertionError("a 64 KiB payload encoded")

"""The RTM_GETADDR decoder behind Listen-on (ike/daemon/ifaddrs.py): the real dump of this host
decodes, and no mutation of it -- truncated, bit-flipped, lengths lying -- makes it raise."""

from __future__ import annotations

import socket
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ike.daemon import ifaddrs
from ike.daemon.ifaddrs import LocalAddress, parse_dump

SETTINGS = settings(derandomize=True, max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _message(kind: int, body: bytes) -> bytes:
    data = struct.pack("=IHHII", 16 + len(body), kind, 2, 1, 0) + body
    return data + bytes(-len(data) % 4)


def _addr(family: int, index: int, raw: bytes, scope: int = 0) -> bytes:
    attr = struct.pack("=HH", 4 + len(raw), ifaddrs.IFA_LOCAL) + raw
    attr += bytes(-len(attr) % 4)
    return _message(ifaddrs.RTM_NEWADDR, struct.pack("=BBBBI", family, 24, 0, scope, index)
                    + attr)


DUMP = (_addr(socket.AF_INET, 1, bytes([127, 0, 0, 1]))
        + _addr(socket.AF_INET6, 2, bytes(15) + b"\x01")
        + _addr(socket.AF_INET6, 2, b"\xfe\x80" + bytes(13) + b"\x01", ifaddrs.RT_SCOPE_LINK)
        + _message(ifaddrs.NLMSG_DONE, bytes(4)))


def test_a_dump_decodes_to_its_addresses() -> None:
    found, done = parse_dump(DUMP, {1: "lo", 2: "eth0"})
    assert done
    assert found == [LocalAddress("127.0.0.1", "lo", socket.AF_INET, False),
                     LocalAddress("::1", "eth0", socket.AF_INET6, False),
                     LocalAddress("fe80::1", "eth0", socket.AF_INET6, True)]


def test_this_hosts_own_dump_has_the_loopback_address() -> None:
    assert any(a.address == "127.0.0.1" and not a.link_local for a in ifaddrs.local_addresses())


def test_a_message_longer_than_its_datagram_ends_the_dump() -> None:
    lying = bytearray(DUMP)
    struct.pack_into("=I", lying, 0, 4000)
    assert parse_dump(bytes(lying), {}) == ([], True)


def test_an_address_of_the_wrong_size_is_skipped() -> None:
    found, done = parse_dump(_addr(socket.AF_INET, 1, bytes(5)) + DUMP, {})
    assert done and [a.address for a in found] == ["127.0.0.1", "::1", "fe80::1"]


@SETTINGS
@given(st.data())
def test_no_mutation_of_a_dump_raises(data: st.DataObject) -> None:
    raw = bytearray(DUMP)
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    found, _done = parse_dump(bytes(raw[:cut]), {1: "lo"})
    assert all(a.family in (socket.AF_INET, socket.AF_INET6) for a in found)


@SETTINGS
@given(st.binary(max_size=300))
def test_no_bytes_at_all_make_it_raise(raw: bytes) -> None:
    found, done = parse_dump(raw, {})
    assert isinstance(done, bool) and all(isinstance(a, LocalAddress) for a in found)

"""Fuzzing the XFRM netlink decoders with the messages the kernel really sent (the captures in
tests/kernel/fixtures), bit-flipped, cut short, with lying length fields, and with random bytes:
the result is an event (or None) or NetlinkDecodeError, never another exception."""

from __future__ import annotations

import json
import socket
import struct
from pathlib import Path

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from ike.kernel import netlink
from ike.kernel.interface import (
    Acquire,
    Expire,
    GetSPI,
    KernelError,
    NatMapping,
    PolicyExpire,
    TrafficSelector,
    address,
)
from ike.kernel.xfrm import XfrmKernel

SETTINGS = settings(
    derandomize=True, max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
FIXTURES = Path(__file__).parent / "fixtures"
CAPTURED: dict[str, bytes] = {
    f"{kernel}:{name}": bytes.fromhex(text)
    for kernel in ("kernel_events", "kernel_events_uml61")
    for name, text in json.loads((FIXTURES / f"{kernel}.json").read_text())["messages"].items()
}
EVENTS = (Acquire, Expire, PolicyExpire, NatMapping, type(None))
XFRM_KINDS = [int(kind) for kind in netlink.XfrmMsg] + [netlink.NLMSG_ERROR, 0, 0xFFFF]


def decode_all(data: bytes) -> list[object]:
    """What the backend does with a datagram: split it, then decode each message by type."""
    out: list[object] = []
    for msg in netlink.split_messages(data):
        assert len(msg.body) <= len(data) - netlink.NLMSG_HDR.size
        if msg.kind == netlink.NLMSG_ERROR:
            err, text = netlink.decode_error(msg)
            assert isinstance(err, int) and isinstance(text, str)
            out.append((err, text))
        elif msg.kind == netlink.XfrmMsg.NEWSA:
            out.append(netlink.decode_usersa_info(msg.body))
        else:
            decoded = netlink.decode_event(msg)
            assert isinstance(decoded, EVENTS)
            out.append(decoded)
    return out


def _mutations(draw: st.DrawFn, start: bytes) -> bytes:
    """*start* with a few of: bit flips, a cut (length fixed up or not), a lying nlmsg_len or
    attribute length, random bytes appended, a second message after it."""
    data = bytearray(start)
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["flip", "cut", "cut+len", "nlmsg_len", "u16", "tail", "two"]))
        if how == "flip" and data:
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif how in ("cut", "cut+len"):
            data = data[: draw(st.integers(0, len(data)))]
            if how == "cut+len" and len(data) >= 4:
                data[0:4] = struct.pack("=I", len(data))
        elif how == "nlmsg_len" and len(data) >= 4:
            data[0:4] = struct.pack("=I", draw(st.integers(0, 2**32 - 1)))
        elif how == "u16" and len(data) >= 2:  # an attribute's length, a family, a prefix...
            at = draw(st.integers(0, len(data) - 2))
            data[at : at + 2] = struct.pack("=H", draw(st.integers(0, 0xFFFF)))
        elif how == "tail":
            data += draw(st.binary(max_size=64))
        elif how == "two":
            data += bytes(-len(data) % 4) + CAPTURED[draw(st.sampled_from(sorted(CAPTURED)))]
    return bytes(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A captured message, mutated."""
    return _mutations(draw, CAPTURED[draw(st.sampled_from(sorted(CAPTURED)))])


@settings(SETTINGS, max_examples=600)
@given(mutated())
def test_mutated_captures_decode_or_raise_decode_error(data: bytes) -> None:
    """Every mutation of a real kernel message is decoded or refused with NetlinkDecodeError."""
    try:
        decoded = decode_all(data)
    except netlink.NetlinkDecodeError as exc:
        assert str(exc)
        event("NetlinkDecodeError")
    else:
        event(f"{len(decoded)} decoded")


@SETTINGS
@given(st.binary(max_size=64), st.integers(0, 2**32 - 1))
@example(bytes(16), 16)  # a second, empty header after the first message
def test_a_lying_length_is_refused(tail: bytes, length: int) -> None:
    """A message whose nlmsg_len runs past the datagram (or is shorter than its own header)
    is a NetlinkDecodeError from split_messages, not a short or wrong read."""
    data = struct.pack("=IHHII", length, netlink.XfrmMsg.ACQUIRE, 0, 0, 0) + tail
    lies = length < netlink.NLMSG_HDR.size or length > len(data)
    try:
        first = next(netlink.split_messages(data))  # the tail may hold a lying one of its own
    except netlink.NetlinkDecodeError:
        assert lies
    else:
        assert not lies and len(first.body) == length - netlink.NLMSG_HDR.size


@SETTINGS
@given(st.sampled_from(XFRM_KINDS), st.integers(0, 0xFFFF), st.binary(max_size=400))
def test_random_bodies_of_every_type(kind: int, flags: int, body: bytes) -> None:
    """Random bodies under every XFRM message type (and NLMSG_ERROR) decode or raise
    NetlinkDecodeError."""
    data = netlink.nlmsg(kind, flags, body)
    try:
        decode_all(data)
    except netlink.NetlinkDecodeError as exc:
        assert str(exc)


@SETTINGS
@given(st.binary(max_size=200))
def test_parse_attrs(data: bytes) -> None:
    """Attributes found fit in the buffer, their types have the flag bits removed."""
    try:
        attrs = netlink.parse_attrs(data)
    except netlink.NetlinkDecodeError:
        return
    assert sum(netlink.NLATTR.size + len(p) for _k, p in attrs) <= len(data)
    assert all(0 <= kind < 0x4000 for kind, _p in attrs)


@SETTINGS
@given(st.binary(max_size=120), st.integers(0, 80))
@example(bytes(10), 0)  # found: a short buffer raised struct.error
@example(netlink.SELECTOR.pack(bytes(16), bytes(16), 0, 0, 0, 0, 2, 33, 0, 0, 0, 0), 0)  # /33
def test_decode_selector(data: bytes, offset: int) -> None:
    """Any bytes at any offset are a TrafficSelector or a NetlinkDecodeError."""
    try:
        sel = netlink.decode_selector(data, offset)
    except netlink.NetlinkDecodeError as exc:
        assert str(exc)
    else:
        assert isinstance(sel, TrafficSelector)
        assert len(data) >= offset + netlink.SELECTOR.size


@SETTINGS
@given(st.binary(max_size=300), st.integers(0, 100))
def test_decode_usersa_info(data: bytes, offset: int) -> None:
    """Any bytes at any offset are an SAInfo or a NetlinkDecodeError."""
    try:
        sa = netlink.decode_usersa_info(data, offset)
    except netlink.NetlinkDecodeError:
        assert len(data) < offset + netlink.USERSA_INFO_SIZE
    else:
        assert 0 <= sa.spi < 2**32 and sa.stats.bytes >= 0


VALID_EVENTS = sorted(
    name for name in CAPTURED
    if any(kind in name for kind in ("acquire", "polexpire", "expire_larval", "mapping"))
)  # fmt: skip


@st.composite
def _datagram_items(draw: st.DrawFn) -> tuple[bytes, int]:
    """One message of a datagram: a captured event (1) or a well-framed undecodable one (0)."""
    if draw(st.booleans()):
        return CAPTURED[draw(st.sampled_from(VALID_EVENTS))], 1
    kind = draw(st.sampled_from([netlink.XfrmMsg.ACQUIRE, netlink.XfrmMsg.EXPIRE,
                                 netlink.XfrmMsg.POLEXPIRE, netlink.XfrmMsg.MAPPING]))
    return netlink.nlmsg(kind, 0, draw(st.binary(max_size=40))), 0


@settings(SETTINGS, max_examples=100)
@given(st.lists(_datagram_items(), min_size=1, max_size=5))
@example([(netlink.nlmsg(netlink.XfrmMsg.ACQUIRE, 0, b""), 0),
          (CAPTURED["kernel_events:polexpire_hard"], 1)])  # found: the second event was lost
def test_a_bad_event_costs_only_itself(items: list[tuple[bytes, int]]) -> None:
    """The event reader delivers every decodable event of a datagram even when another
    message in it is undecodable (each is logged and skipped on its own)."""
    kernel = XfrmKernel()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    ours.setblocking(False)
    kernel._ev = ours
    try:
        theirs.send(b"".join(data + bytes(-len(data) % 4) for data, _ok in items))
        events = kernel._drain()
    finally:
        ours.close()
        theirs.close()
    assert len(events) == sum(ok for _data, ok in items)
    assert all(isinstance(ev, EVENTS) for ev in events)


NEWSA_REPLY = CAPTURED["kernel_events:newsa_reply_allocspi"]


@st.composite
def _allocspi_answers(draw: st.DrawFn) -> bytes:
    """The kernel's NEWSA answer to ALLOCSPI (its seq patched in by the test), mutated or not."""
    return _mutations(draw, NEWSA_REPLY) if draw(st.integers(0, 4)) else NEWSA_REPLY


@settings(SETTINGS, max_examples=150)
@given(_allocspi_answers())
@example(NEWSA_REPLY[:4] + NEWSA_REPLY[4:-200])  # found: NetlinkDecodeError out of get_spi
def test_kernel_answers_give_a_result_or_kernel_error(answer: bytes) -> None:
    """Whatever the kernel answers to a request, the backend returns a result or raises
    KernelError, the layer's one error type (a clean ACK follows each answer, so a reply the
    backend skips ends the request instead of waiting for the 5 s timeout)."""
    kernel = XfrmKernel(events=False)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    kernel._req = ours
    seq = (kernel._seq + 1) & 0xFFFFFFFF
    data = bytearray(answer)
    if len(data) >= 12:
        struct.pack_into("=I", data, 8, seq)
    ack = netlink.nlmsg(netlink.NLMSG_ERROR, 0, bytes(4) + netlink.nlmsg(0, 0, b"", seq), seq)
    try:
        theirs.send(bytes(data))
        theirs.send(ack)
        spi = kernel.get_spi(GetSPI(address("10.0.0.1"), address("10.0.0.2")))
    except KernelError as exc:
        assert str(exc)
        event("KernelError")
    else:
        assert 0 <= spi < 2**32
        event("SPI")
    finally:
        ours.close()
        theirs.close()


def test_an_unreadable_sa_list_expires_nothing() -> None:
    """After lost events the backend lists the kernel's SAs; if an entry of the list cannot be
    read it reports nothing as expired (rather than every SA it could not see)."""
    kernel = XfrmKernel(events=False)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    kernel._req = ours
    key = (address("10.0.0.2"), 0x1234, 3)
    kernel.sas[key] = address("10.0.0.1")
    seq = (kernel._seq + 1) & 0xFFFFFFFF
    try:
        theirs.send(netlink.nlmsg(netlink.XfrmMsg.NEWSA, netlink.NLM_F_MULTI, bytes(20), seq)
                    + netlink.nlmsg(netlink.NLMSG_DONE, netlink.NLM_F_MULTI, bytes(4), seq))
        assert kernel._resync() == []
    finally:
        ours.close()
        theirs.close()
    assert key in kernel.sas

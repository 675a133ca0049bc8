"""Read ISAKMP datagrams out of classic pcap captures (peer fixtures, isakmpd -L files).

The reader takes the usual link types (Ethernet, loop/null as isakmpd and
ike.daemon.pcap write, raw IP, Linux cooked) and yields the UDP datagrams with
the NAT-T non-ESP marker removed (keepalives and ESP-in-UDP are skipped), so
captures can be replayed into the codec.  Writing captures is ike.daemon.pcap.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
_UDP = struct.Struct(">HHHH")
NON_ESP_MARKER = bytes(4)
NAT_T_PORT = 4500

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class PcapError(Exception):
    """A capture file this reader cannot follow (bad magic, truncated record)."""


@dataclass(frozen=True, slots=True)
class Datagram:
    """One UDP datagram from a capture, with the non-ESP marker already removed."""

    time: float
    src: IPAddress
    sport: int
    dst: IPAddress
    dport: int
    payload: bytes


def _ip_payload(frame: bytes, off: int, time: float) -> Datagram | None:
    try:
        return _ip_payload_unchecked(frame, off, time)
    except (IndexError, struct.error, ValueError):
        return None  # a truncated (snaplen) or non-IP frame carries no whole datagram


def _ip_payload_unchecked(frame: bytes, off: int, time: float) -> Datagram | None:
    if off >= len(frame):
        return None
    version = frame[off] >> 4
    src: IPAddress
    dst: IPAddress
    if version == 4:
        ihl = (frame[off] & 0x0F) * 4
        if frame[off + 9] != 17:
            return None
        src = ipaddress.IPv4Address(frame[off + 12 : off + 16])
        dst = ipaddress.IPv4Address(frame[off + 16 : off + 20])
        off += ihl
    elif version == 6:
        if frame[off + 6] != 17:
            return None
        src = ipaddress.IPv6Address(frame[off + 8 : off + 24])
        dst = ipaddress.IPv6Address(frame[off + 24 : off + 40])
        off += 40
    else:
        return None
    sport, dport, ulen, _ = _UDP.unpack_from(frame, off)
    payload = frame[off + 8 : off + ulen]
    if NAT_T_PORT in (sport, dport):
        if payload == b"\xff" or payload[:4] != NON_ESP_MARKER:
            return None  # NAT-T keepalive or ESP in UDP
        payload = payload[4:]
    return Datagram(time, src, sport, dst, dport, payload)


def read_datagrams(stream: BinaryIO) -> Iterator[Datagram]:
    """Yield the UDP datagrams of a classic pcap stream (non-UDP packets are skipped)."""
    head = stream.read(24)
    if len(head) < 24:
        raise PcapError("not a pcap file: shorter than its global header")
    magic = int.from_bytes(head[:4], "little")
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        order = "<"
    elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
        order = ">"
    else:
        raise PcapError(f"not a pcap file: magic {magic:#010x}")
    scale = 1e-9 if magic in (0xA1B23C4D, 0x4D3CB2A1) else 1e-6
    linktype = struct.unpack(order + "I", head[20:24])[0] & 0x0FFFFFFF
    rec = struct.Struct(order + "IIII")
    while True:
        rh = stream.read(16)
        if not rh:
            return
        if len(rh) < 16:
            raise PcapError("truncated record header")
        sec, frac, incl, _ = rec.unpack(rh)
        frame = stream.read(incl)
        if len(frame) < incl:
            raise PcapError("truncated record")
        if linktype == LINKTYPE_ETHERNET:
            ethertype = int.from_bytes(frame[12:14], "big")
            off = 14
            if ethertype == 0x8100:
                ethertype = int.from_bytes(frame[16:18], "big")
                off = 18
            if ethertype not in (0x0800, 0x86DD):
                continue
        elif linktype in (LINKTYPE_LOOP, LINKTYPE_NULL):
            off = 4
        elif linktype == LINKTYPE_LINUX_SLL:
            off = 16
        elif linktype == LINKTYPE_RAW:
            off = 0
        else:
            raise PcapError(f"link type {linktype} is not supported")
        dgram = _ip_payload(frame, off, sec + frac * scale)
        if dgram is not None:
            yield dgram

"""Classic pcap files of ISAKMP datagrams: write them as isakmpd's ``-L`` does, read captures.

The writer follows isakmpd's packet capture (log.c): link type DLT_LOOP, a
4-byte address family, a synthetic IPv4 or IPv6 header (the IP id counts the
packets) and a UDP header; for port 4500 the 4-byte non-ESP marker goes in
front of the ISAKMP message.  tshark reads these files directly.  The reader
takes the usual link types (Ethernet, loop/null, raw IP, Linux cooked) and
yields the UDP datagrams, so peer captures can be replayed into the codec.
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
#: OpenBSD's address family numbers as DLT_LOOP carries them (network order).
_AF_INET = 2
_AF_INET6 = 24
_PCAP_HDR = struct.Struct("<IHHiIII")
_REC_HDR = struct.Struct("<IIII")
_IP4 = struct.Struct(">BBHHHBBH4s4s")
_IP6 = struct.Struct(">IHBB16s16s")
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


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_packet(src: IPAddress, sport: int, dst: IPAddress, dport: int, payload: bytes,
               ident: int = 0) -> bytes:
    """An IPv4 or IPv6 packet carrying ``payload`` in UDP, checksums filled in."""
    ulen = 8 + len(payload)
    if src.version == 4:
        pseudo = src.packed + dst.packed + struct.pack(">BBH", 0, 17, ulen)
    else:
        pseudo = src.packed + dst.packed + struct.pack(">IxxxB", ulen, 17)
    csum = _checksum(pseudo + _UDP.pack(sport, dport, ulen, 0) + payload) or 0xFFFF
    udp = _UDP.pack(sport, dport, ulen, csum) + payload
    if src.version == 4:
        head = _IP4.pack(0x45, 0, 20 + ulen, ident & 0xFFFF, 0, 64, 17, 0, src.packed, dst.packed)
        head = head[:10] + struct.pack(">H", _checksum(head)) + head[12:]
        return head + udp
    return _IP6.pack(6 << 28, ulen, 17, 64, src.packed, dst.packed) + udp


class PcapWriter:
    """Append ISAKMP datagrams to a DLT_LOOP pcap stream, as isakmpd -L does."""

    def __init__(self, stream: BinaryIO, snaplen: int = 65536) -> None:
        self._stream = stream
        self._count = 0
        stream.write(_PCAP_HDR.pack(0xA1B2C3D4, 2, 4, 0, 0, snaplen, LINKTYPE_LOOP))

    def write(self, message: bytes, src: str, dst: str, sport: int = 500, dport: int = 500,
              time: float = 0.0) -> None:
        """Write one message from ``src:sport`` to ``dst:dport`` (marker added for 4500)."""
        s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
        if NAT_T_PORT in (sport, dport):
            message = NON_ESP_MARKER + message
        self._count += 1
        af = _AF_INET if s.version == 4 else _AF_INET6
        frame = struct.pack(">I", af) + udp_packet(s, sport, d, dport, message, self._count)
        sec = int(time)
        self._stream.write(
            _REC_HDR.pack(sec, int((time - sec) * 1e6), len(frame), len(frame)) + frame
        )


def _ip_payload(frame: bytes, off: int, time: float) -> Datagram | None:
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

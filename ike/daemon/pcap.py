"""Cleartext IKE packet capture (``-L``, ``-l file``, FIFO ``p on``), as isakmpd's ``log.c``.

A pcap file with link type DLT_LOOP: each record is a 4-byte address family (network order), a
synthetic IPv4 or IPv6 header (the IP id counts packets), a UDP header, and the ISAKMP message
with the encryption flag cleared and the payloads in clear.  For port 4500 the 4-byte non-ESP
marker is inserted.  tcpdump and tshark read the result.
"""

from __future__ import annotations

import ipaddress
import os
import struct
import time
from typing import BinaryIO

LINKTYPE_LOOP = 108
SNAPLEN = 65536
AF_INET_LOOP = 2
AF_INET6_LOOP = 24  # OpenBSD's AF_INET6, which readers of DLT_LOOP know
ISAKMP_FLAGS_OFFSET = 19
ISAKMP_FLAG_ENC = 0x01
NAT_T_PORT = 4500

Endpoint = tuple[str, int]


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def cleartext_view(message: bytes) -> bytes:
    """The message as the capture shows it: ENC flag cleared, length field matching the data."""
    if len(message) < 28:
        return message
    data = bytearray(message)
    data[ISAKMP_FLAGS_OFFSET] &= ~ISAKMP_FLAG_ENC & 0xFF
    struct.pack_into("!I", data, 24, len(data))
    return bytes(data)


def frame(src: Endpoint, dst: Endpoint, payload: bytes, ip_id: int) -> bytes:
    """The DLT_LOOP frame (AF, IP, UDP, payload) of one UDP datagram."""
    s = ipaddress.ip_address(src[0])
    d = ipaddress.ip_address(dst[0])
    if dst[1] == NAT_T_PORT or src[1] == NAT_T_PORT:
        payload = bytes(4) + payload
    udp_len = 8 + len(payload)
    if s.version == 4 and d.version == 4:
        pseudo = s.packed + d.packed + struct.pack("!BBH", 0, 17, udp_len)
    else:
        s6 = s if s.version == 6 else ipaddress.IPv6Address(f"::ffff:{s}")
        d6 = d if d.version == 6 else ipaddress.IPv6Address(f"::ffff:{d}")
        s, d = s6, d6
        pseudo = s.packed + d.packed + struct.pack("!IxxxB", udp_len, 17)
    udp = struct.pack("!HHHH", src[1], dst[1], udp_len, 0) + payload
    csum = _checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    if s.version == 4:
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, ip_id & 0xFFFF, 0, 64, 17, 0, s.packed, d.packed
        )
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        return struct.pack("!I", AF_INET_LOOP) + ip + udp
    ip6 = struct.pack("!IHBB16s16s", 0x60000000, udp_len, 17, 64, s.packed, d.packed)
    return struct.pack("!I", AF_INET6_LOOP) + ip6 + udp


class PcapWriter:
    """Appends captured IKE messages to a pcap file."""

    def __init__(self, stream: BinaryIO, path: str = "") -> None:
        self.stream = stream
        self.path = path
        self.packets = 0
        stream.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_LOOP))
        stream.flush()

    @classmethod
    def open(cls, path: str) -> PcapWriter:
        """Create (truncate) *path* with mode 0600 and write the file header."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        return cls(os.fdopen(fd, "wb"), path)

    def record(
        self,
        src: Endpoint,
        dst: Endpoint,
        message: bytes,
        now: float | None = None,
        cleartext: bool = True,
    ) -> None:
        """Write one message sent from *src* to *dst*.

        With *cleartext* the payloads are already decrypted and the ENC flag is cleared; without
        it the message is written as it went on the wire (ENC flag kept, body encrypted).
        """
        now = time.time() if now is None else now
        self.packets += 1
        body = cleartext_view(message) if cleartext else message
        data = frame(src, dst, body, self.packets)[:SNAPLEN]
        sec = int(now)
        usec = int((now - sec) * 1e6)
        self.stream.write(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)
        self.stream.flush()

    def close(self) -> None:
        """Close the file."""
        self.stream.close()

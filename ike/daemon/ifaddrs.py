"""The local addresses to listen on (isakmpd binds every local address, filtered by Listen-on).

Linux has no getifaddrs in Python's standard library; an RTM_GETADDR netlink dump needs no
files, so it works in the chroot too.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

NETLINK_ROUTE = 0
RTM_NEWADDR = 20
RTM_GETADDR = 22
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_DONE = 3
NLMSG_ERROR = 2
IFA_ADDRESS = 1
IFA_LOCAL = 2
RT_SCOPE_LINK = 253


@dataclass(frozen=True)
class LocalAddress:
    """One address of one interface."""

    address: str
    interface: str
    family: int
    link_local: bool


def _align(n: int) -> int:
    return (n + 3) & ~3


def local_addresses() -> list[LocalAddress]:
    """Every address configured on this host's interfaces (this network namespace)."""
    names = {index: name for index, name in socket.if_nameindex()}
    out: list[LocalAddress] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE) as nl:
        nl.bind((0, 0))
        header = struct.pack("=IHHII", 16 + 8, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
        nl.send(header + struct.pack("=BBBBI", socket.AF_UNSPEC, 0, 0, 0, 0))
        done = False
        while not done:
            found, done = parse_dump(nl.recv(65536), names)
            out.extend(found)
    return out


def parse_dump(data: bytes, names: dict[int, str]) -> tuple[list[LocalAddress], bool]:
    """The addresses in one datagram of an RTM_GETADDR dump, and whether the dump ended (its
    NLMSG_DONE or an error, or bytes that make no sense: a short or broken message ends the
    dump rather than raising, so a start-up never dies on what the kernel sent)."""
    out: list[LocalAddress] = []
    offset = 0
    while offset + 16 <= len(data):
        length, kind, _flags, _seq, _pid = struct.unpack_from("=IHHII", data, offset)
        if length < 16 or offset + length > len(data) or kind in (NLMSG_DONE, NLMSG_ERROR):
            return out, True
        if kind == RTM_NEWADDR and length >= 24:
            family, _plen, _flags2, scope, index = struct.unpack_from("=BBBBI", data, offset + 16)
            attrs: dict[int, bytes] = {}
            pos = offset + 24
            while pos + 4 <= offset + length:
                alen, atype = struct.unpack_from("=HH", data, pos)
                if alen < 4 or pos + alen > offset + length:
                    break
                attrs[atype] = data[pos + 4 : pos + alen]
                pos += _align(alen)
            raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
            size = {socket.AF_INET: 4, socket.AF_INET6: 16}.get(family)
            if raw is not None and len(raw) == size:
                out.append(LocalAddress(str(ipaddress.ip_address(raw)),
                                        names.get(index, str(index)), family,
                                        scope == RT_SCOPE_LINK))
        offset += _align(length)
    return out, False


def listen_addresses(listen_on: list[str], inet4: bool = True, inet6: bool = True) -> list[str]:
    """The addresses to bind: all usable local ones, or those named by ``Listen-on`` (addresses
    or interface names).  IPv6 link-local addresses are skipped (they need a scope)."""
    wanted = {item.strip() for item in listen_on if item.strip()}
    found: list[str] = []
    for a in local_addresses():
        if a.link_local or (a.family == socket.AF_INET and not inet4):
            continue
        if a.family == socket.AF_INET6 and not inet6:
            continue
        if wanted and a.address not in wanted and a.interface not in wanted:
            continue
        if a.address not in found:
            found.append(a.address)
    return found

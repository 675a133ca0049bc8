"""Build and read IPsec DOI identification data (RFC 2407 4.6.2.1).

``build_id`` turns a Python value into an ``Identification`` payload;
``parse_id`` reads one back, checking the data length the ID type demands
(INVALID_ID_INFORMATION otherwise); ``format_id`` gives the text used in logs
and policy.  Values by type:

- IPV4_ADDR / IPV6_ADDR: an ``ipaddress`` address
- IPV4_ADDR_SUBNET / IPV6_ADDR_SUBNET: an ``ipaddress`` network (address + mask)
- IPV4_RANGE / IPV6_RANGE: a (first, last) pair of addresses
- FQDN / USER_FQDN: ``str``
- DER_ASN1_DN / DER_ASN1_GN / KEY_ID and unknown types: ``bytes``
"""

from __future__ import annotations

import ipaddress
from typing import TypeAlias

from ike.doi.constants import IdType
from ike.wire.constants import NotifyType
from ike.wire.errors import WireError
from ike.wire.payloads import Identification

Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
IdValue: TypeAlias = Address | Network | tuple[Address, Address] | str | bytes

_ADDR_TYPES = {IdType.IPV4_ADDR: 4, IdType.IPV6_ADDR: 16}
_SUBNET_TYPES = {IdType.IPV4_ADDR_SUBNET: 4, IdType.IPV6_ADDR_SUBNET: 16}
_RANGE_TYPES = {IdType.IPV4_RANGE: 4, IdType.IPV6_RANGE: 16}
_TEXT_TYPES = (IdType.FQDN, IdType.USER_FQDN)


def _bad(id_type: int, what: str) -> WireError:
    return WireError(NotifyType.INVALID_ID_INFORMATION, f"ID {IdType(id_type).name}: {what}")


def _addr(raw: bytes) -> Address:
    return ipaddress.IPv4Address(raw) if len(raw) == 4 else ipaddress.IPv6Address(raw)


def id_data(id_type: int, value: IdValue) -> bytes:
    """The identification data bytes of ``value`` for ``id_type``."""
    if id_type in _ADDR_TYPES:
        if not isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
            raise _bad(id_type, f"needs an address, not {value!r}")
        data = value.packed
        size = _ADDR_TYPES[IdType(id_type)]
    elif id_type in _SUBNET_TYPES:
        if not isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
            raise _bad(id_type, f"needs a network, not {value!r}")
        data = value.network_address.packed + value.netmask.packed
        size = 2 * _SUBNET_TYPES[IdType(id_type)]
    elif id_type in _RANGE_TYPES:
        if not isinstance(value, tuple):
            raise _bad(id_type, f"needs a (first, last) pair, not {value!r}")
        data = value[0].packed + value[1].packed
        size = 2 * _RANGE_TYPES[IdType(id_type)]
    elif id_type in _TEXT_TYPES:
        if not isinstance(value, str):
            raise _bad(id_type, f"needs a string, not {value!r}")
        return value.encode("utf-8")
    else:
        if not isinstance(value, bytes):
            raise _bad(id_type, f"needs bytes, not {value!r}")
        return value
    if len(data) != size:
        raise _bad(id_type, f"address family does not match ({len(data)} bytes)")
    return data


def build_id(id_type: int, value: IdValue, protocol: int = 0, port: int = 0) -> Identification:
    """An ID payload for ``value``; ``protocol``/``port`` as RFC 2407 4.6.2 (0 = any)."""
    return Identification(IdType(id_type), id_data(id_type, value), protocol, port)


def id_for_address(addr: str | Address, protocol: int = 0, port: int = 0) -> Identification:
    """IPV4_ADDR or IPV6_ADDR, whichever fits ``addr``."""
    a = ipaddress.ip_address(addr)
    kind = IdType.IPV4_ADDR if a.version == 4 else IdType.IPV6_ADDR
    return build_id(kind, a, protocol, port)


def id_for_network(net: str | Network, protocol: int = 0, port: int = 0) -> Identification:
    """IPV4_ADDR_SUBNET or IPV6_ADDR_SUBNET for ``net`` (host bits are cleared)."""
    n = ipaddress.ip_network(net, strict=False)
    kind = IdType.IPV4_ADDR_SUBNET if n.version == 4 else IdType.IPV6_ADDR_SUBNET
    return build_id(kind, n, protocol, port)


def parse_id(payload: Identification) -> IdValue:
    """The value carried by ``payload``; a length that does not fit its type raises.

    Raises WireError(INVALID_ID_INFORMATION) for a wrong address length, a
    non-contiguous netmask, a range whose ends are out of order, or an FQDN that
    is not UTF-8.
    """
    kind, data = payload.id_type, payload.data
    if kind in _ADDR_TYPES:
        if len(data) != _ADDR_TYPES[kind]:
            raise _bad(kind, f"{len(data)} bytes of address")
        return _addr(data)
    if kind in _SUBNET_TYPES:
        size = _SUBNET_TYPES[kind]
        if len(data) != 2 * size:
            raise _bad(kind, f"{len(data)} bytes of address and mask")
        bits = 8 * size
        mask = int.from_bytes(data[size:], "big")
        prefix = mask.bit_count()
        if mask != ((1 << bits) - 1) ^ ((1 << (bits - prefix)) - 1):
            raise _bad(kind, f"netmask {_addr(data[size:])} is not contiguous")
        return ipaddress.ip_network((_addr(data[:size]), prefix), strict=False)
    if kind in _RANGE_TYPES:
        size = _RANGE_TYPES[kind]
        if len(data) != 2 * size:
            raise _bad(kind, f"{len(data)} bytes of range")
        first, last = _addr(data[:size]), _addr(data[size:])
        if int(first) > int(last):
            raise _bad(kind, f"range {first}-{last} runs backwards")
        return (first, last)
    if kind in _TEXT_TYPES:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _bad(kind, "name is not UTF-8") from exc
    return data


def format_id(payload: Identification) -> str:
    """Text for logs and policy: ``10.0.0.1``, ``10.0.0.0/24``, ``a-b``, names, else hex."""
    value = parse_id(payload)
    if isinstance(value, tuple):
        return f"{value[0]}-{value[1]}"
    if isinstance(value, bytes):
        return value.hex()
    return str(value)

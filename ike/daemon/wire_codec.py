"""JSON encoding of kernel commands and events for the privilege-separation channel.

The unprivileged child sends kernel commands to the privileged parent; pickle would let a
compromised child run code in the parent, so only the dataclasses and enums of
:mod:`ike.kernel.interface` listed here can be rebuilt, field by field, and anything else is
refused with :class:`CodecError`.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
from typing import Any

from ike.kernel import interface as k

_CLASSES: dict[str, type] = {
    c.__name__: c
    for c in (
        k.GetSPI,
        k.AddSA,
        k.DeleteSA,
        k.QuerySA,
        k.AddFlow,
        k.DeleteFlow,
        k.Flush,
        k.TrafficSelector,
        k.Lifetime,
        k.NatTEncap,
        k.SAStats,
        k.Acquire,
        k.Expire,
        k.PolicyExpire,
        k.NatMapping,
    )
}
_ENUMS: dict[str, type[enum.IntEnum]] = {e.__name__: e for e in (k.Direction, k.EncapType)}
MAX_DEPTH = 8
"""Deeper than any command or event nests (AddSA > TrafficSelector > network is 3): a forged
message nested thousands deep is refused instead of overflowing the parent's stack."""


class CodecError(ValueError):
    """A message that does not describe an allowed kernel command or event."""


def encode(obj: object) -> Any:
    """A JSON-able form of *obj* (dataclasses, enums, addresses, networks, bytes, scalars)."""
    if isinstance(obj, enum.IntEnum):
        name = type(obj).__name__
        return {"__e": name, "v": int(obj)} if name in _ENUMS else int(obj)
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, bytes):
        return {"__b": obj.hex()}
    if isinstance(obj, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return {"__a": str(obj)}
    if isinstance(obj, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return {"__n": str(obj)}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        name = type(obj).__name__
        if name not in _CLASSES:
            raise CodecError(f"cannot encode {name}")
        out: dict[str, Any] = {"__t": name}
        for f in dataclasses.fields(obj):
            out[f.name] = encode(getattr(obj, f.name))
        return out
    raise CodecError(f"cannot encode {type(obj).__name__}")


def decode(data: Any, depth: int = 0) -> Any:
    """Rebuild what :func:`encode` produced; raise CodecError for anything else."""
    if depth > MAX_DEPTH:
        raise CodecError(f"nested deeper than {MAX_DEPTH}")
    if data is None or isinstance(data, bool | int | str):
        return data
    if not isinstance(data, dict):
        raise CodecError(f"unexpected {type(data).__name__}")
    try:
        if "__b" in data:
            return bytes.fromhex(str(data["__b"]))
        if "__a" in data:
            return ipaddress.ip_address(str(data["__a"]))
        if "__n" in data:
            return ipaddress.ip_network(str(data["__n"]))
        if "__e" in data:
            enum_type = _ENUMS.get(str(data["__e"]))
            if enum_type is None:
                raise CodecError(f"unknown enum {data['__e']!r}")
            return enum_type(int(data["v"]))
        cls = _CLASSES.get(str(data.get("__t")))
        if cls is None:
            raise CodecError(f"unknown type {data.get('__t')!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {key: decode(value, depth + 1) for key, value in data.items() if key != "__t"}
        extra = set(kwargs) - names
        if extra:
            raise CodecError(f"{cls.__name__}: unknown fields {sorted(extra)}")
        return cls(**kwargs)
    except CodecError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # a field of a wrong type
        raise CodecError(f"malformed: {exc}") from None

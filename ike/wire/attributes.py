"""Data attributes in TV (basic) and TLV (variable) form (RFC 2408 3.3).

An ``Attribute`` whose value is an ``int`` is the TV form (AF bit set, 16-bit
value); a ``bytes`` value is the TLV form.  The form is kept as decoded so that
encode(decode(x)) == x even for a variable attribute short enough to be basic.
The attribute type's meaning depends on where it sits (Phase 1 transform:
``IkeAttr``; IPsec transform: ``IpsecAttr``; mode-config: ``CfgAttr``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import starmap

from ike.wire.buffer import check_length, malformed

_ATTR = struct.Struct(">HH")
_AF = 0x8000
#: For runs of up to 16 four-byte attributes: the AF bit of each, as one integer (a run is all
#: TV, and so well formed, when its bits under the mask are all set).
TV_MASKS = {n: int.from_bytes(b"\x80\x00\x00\x00" * (n // 4), "big") for n in range(4, 68, 4)}


@dataclass(slots=True)
class Attribute:
    """One data attribute: ``type`` without the AF bit; ``value`` int (TV) or bytes (TLV)."""

    type: int
    value: int | bytes

    @classmethod
    def make(cls, type: int, value: int) -> Attribute:
        """An attribute carrying integer ``value``: TV when it fits 16 bits, else TLV.

        This is what isakmpd's ``attribute_set_decimal`` does, so life durations
        above 65535 become 4-byte (or longer) TLVs.
        """
        if 0 <= value <= 0xFFFF:
            return cls(type, value)
        if value < 0:
            raise malformed("attribute", f"value {value} of type {type} is negative")
        size = max(4, (value.bit_length() + 7) // 8)
        return cls(type, value.to_bytes(size, "big"))

    @property
    def is_basic(self) -> bool:
        """True for the TV (AF=1) form."""
        return isinstance(self.value, int)

    def as_int(self) -> int:
        """The value as an unsigned integer, whatever the form (TLV big-endian)."""
        if isinstance(self.value, int):
            return self.value
        return int.from_bytes(self.value, "big")

    def encode(self) -> bytes:
        """The attribute's wire bytes."""
        if not 0 <= self.type < _AF:
            raise malformed("attribute", f"type {self.type} outside 0..32767")
        if isinstance(self.value, int):
            if not 0 <= self.value <= 0xFFFF:
                raise malformed("attribute", f"TV value {self.value} outside 0..65535")
            return _ATTR.pack(self.type | _AF, self.value)
        check_length(len(self.value), f"attribute {self.type}")
        return _ATTR.pack(self.type, len(self.value)) + self.value


def decode_attributes(view: memoryview, where: str) -> list[Attribute]:
    """Decode a run of attributes that must fill ``view`` exactly."""
    end = len(view)
    mask = TV_MASKS.get(end)
    if mask is not None and (run := int.from_bytes(view)) & mask == mask:
        # Fast path: transforms are usually all TV attributes, 4 bytes each (every AF bit set,
        # tested at once on the run as one integer, and cleared at once too, so that the
        # attributes are built by starmap without a Python loop).
        return list(starmap(Attribute, _ATTR.iter_unpack((run ^ mask).to_bytes(end))))
    attrs: list[Attribute] = []
    pos = 0
    unpack = _ATTR.unpack_from
    while pos < end:
        if pos + 4 > end:
            raise malformed(where, f"{end - pos} stray bytes after the last attribute")
        atype, val = unpack(view, pos)
        pos += 4
        if atype & _AF:
            attrs.append(Attribute(atype & ~_AF, val))
        else:
            if pos + val > end:
                raise malformed(where, f"attribute {atype} length {val} overruns its container")
            attrs.append(Attribute(atype, bytes(view[pos : pos + val])))
            pos += val
    return attrs


def _tv_mask(size: int) -> int:
    """The AF bits of a run of ``size // 4`` TV attributes, as one integer."""
    mask = TV_MASKS.get(size)
    return mask if mask is not None else int.from_bytes(b"\x80\x00\x00\x00" * (size // 4), "big")


def encode_attributes(attrs: Iterable[Attribute]) -> bytes:
    """The wire bytes of ``attrs`` in order."""
    run = attrs if isinstance(attrs, list) else list(attrs)
    pack = _ATTR.pack
    try:
        # Fast path, the mirror of decode_attributes': transforms are usually all TV.  struct
        # refuses what is not a 16-bit value (a TLV's bytes too) and a type of 0x8000 or more
        # (type + AF overflows); a negative type shows as a clear AF bit, tested on the whole
        # run at once.
        out = b"".join([pack(a.type + _AF, a.value) for a in run])
    except struct.error:
        out = b""
    if out and int.from_bytes(out, "big") & (mask := _tv_mask(len(out))) == mask:
        return out
    return b"".join([a.encode() for a in run])


def int_pairs(attrs: Iterable[Attribute]) -> tuple[tuple[int, int], ...]:
    """Each attribute as (type, value as an unsigned integer), in order: ``as_int`` for a whole
    run without a method call per attribute."""
    return tuple([
        (a.type, v if isinstance(v := a.value, int) else int.from_bytes(v, "big")) for a in attrs
    ])


def attribute_map(attrs: Iterable[Attribute]) -> dict[int, Attribute]:
    """The attributes by type (the first of each type wins, as isakmpd reads them)."""
    out: dict[int, Attribute] = {}
    for a in attrs:
        out.setdefault(a.type, a)
    return out

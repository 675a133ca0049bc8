"""Bounds-checked reads over a memoryview: every short read is a WireError.

The decoders unpack with precompiled ``struct.Struct`` objects straight from
memoryviews; these helpers are the one place that turns "not enough bytes"
into the PAYLOAD_MALFORMED answer RFC 2408 5.1 asks for.
"""

from __future__ import annotations

import struct

from ike.wire.constants import NotifyType
from ike.wire.errors import WireError

#: Generic payload header: next payload, reserved, length (RFC 2408 3.2).
GENERIC = struct.Struct(">BBH")


def malformed(where: str, what: str) -> WireError:
    """The PAYLOAD_MALFORMED error for ``what`` found in ``where``."""
    return WireError(NotifyType.PAYLOAD_MALFORMED, f"{where}: {what}")


def need(view: memoryview, size: int, where: str) -> None:
    """Raise PAYLOAD_MALFORMED unless ``view`` holds at least ``size`` bytes.

    The hot decoders test the length inline and call this only to raise (a call per payload
    on the good path is not free)."""
    if len(view) < size:
        raise malformed(where, f"{len(view)} bytes, need at least {size}")


def check_length(total: int, where: str, limit: int = 0xFFFF) -> None:
    """Raise a WireError when an encoded length would not fit its 16-bit field."""
    if total > limit:
        raise malformed(where, f"{total} bytes do not fit a 16-bit length field")

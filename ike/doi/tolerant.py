"""The IntEnum base shared by the wire and DOI constants: unknown values do not raise.

It lives here (not in ike.wire) so that ike.doi.constants can be imported on its
own without pulling in the whole codec.
"""

from __future__ import annotations

import enum
from typing import Any, Self


class TolerantIntEnum(enum.IntEnum):
    """An IntEnum whose unknown values become pseudo-members instead of errors."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        member = int.__new__(cls, value)
        member._name_ = f"UNKNOWN_{value}"
        member._value_ = value
        return member

    @classmethod
    def of(cls, value: int) -> Self:
        """``cls(value)`` without the Enum call machinery: the decoders' hot path."""
        member = cls._value2member_map_.get(value)
        if member is None:
            return cls(value)
        return member  # type: ignore[return-value]

    @classmethod
    def from_name(cls, name: str) -> Self:
        """Look a member up by its RFC/isakmpd name (``3DES_CBC`` means ``TRIPLEDES_CBC``).

        Raises KeyError for a name that is not a member.
        """
        key = name.strip().upper().replace("-", "_")
        if key.startswith("3"):
            key = "TRIPLE" + key[1:]
        return cls[key]

    @property
    def known(self) -> bool:
        """True for a value this module has a name for."""
        return self._value_ in type(self)._value2member_map_

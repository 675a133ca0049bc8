"""One injected random source for cookies, nonces, IVs and DH secrets.

The daemon draws every random byte through a :class:`RandomSource`, so a test
can pass ``RandomSource.seeded(n)`` and replay a whole exchange byte for byte
(isakmpd once had ``-r seed`` for the same purpose).
"""

from __future__ import annotations

import hashlib
import os


class RandomSource:
    """Random bytes from the OS, or from a deterministic seeded generator.

    The seeded mode is SHA-512 in counter mode over the seed: reproducible
    and well mixed, but for tests only (the seed is the whole secret).
    """

    __slots__ = ("_buf", "_counter", "_seed")

    def __init__(self) -> None:
        self._seed: bytes | None = None
        self._counter = 0
        self._buf = b""

    @classmethod
    def seeded(cls, seed: int) -> RandomSource:
        """A deterministic source: the same seed gives the same byte stream."""
        src = cls()
        src._seed = b"isakmpd-py seeded random:" + str(int(seed)).encode()
        return src

    @property
    def deterministic(self) -> bool:
        """True for a seeded source."""
        return self._seed is not None

    def bytes(self, n: int) -> bytes:
        """Return ``n`` random bytes."""
        if n < 0:
            raise ValueError("negative byte count")
        if self._seed is None:
            return os.urandom(n)
        while len(self._buf) < n:
            block = hashlib.sha512(self._seed + self._counter.to_bytes(8, "big")).digest()
            self._counter += 1
            self._buf += block
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def randbits(self, k: int) -> int:
        """A uniformly random integer of at most ``k`` bits."""
        if k <= 0:
            return 0
        v = int.from_bytes(self.bytes((k + 7) // 8), "big")
        return v >> ((-k) % 8)

    def randrange(self, low: int, high: int) -> int:
        """A uniformly random integer in ``[low, high)`` (rejection sampling)."""
        span = high - low
        if span <= 0:
            raise ValueError("empty range")
        k = span.bit_length()
        while True:
            v = self.randbits(k)
            if v < span:
                return low + v

    def uint32(self) -> int:
        """A random 32-bit value (message IDs, SPIs)."""
        return int.from_bytes(self.bytes(4), "big")

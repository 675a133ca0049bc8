"""Short Weierstrass curve arithmetic for the one IKE group ``cryptography`` lacks.

Brainpool P-224 r1 (IKE group 27, RFC 6932; curve of RFC 5639 section 3.2).
Jacobian coordinates with a fixed-length double-and-add-always ladder so the
work does not depend on the bits of the scalar.  Slow (milliseconds) but only
used for that group.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BRAINPOOL_P224R1", "Curve", "ECError"]

Point = tuple[int, int]
_Jac = tuple[int, int, int]


class ECError(ValueError):
    """An encoded point that is not on the curve or has out-of-range coordinates."""


@dataclass(frozen=True, slots=True)
class Curve:
    """y^2 = x^3 + a*x + b over GF(p), base point (gx, gy) of prime order n."""

    name: str
    p: int
    a: int
    b: int
    gx: int
    gy: int
    n: int

    @property
    def field_bytes(self) -> int:
        """Bytes of one coordinate."""
        return (self.p.bit_length() + 7) // 8

    def on_curve(self, x: int, y: int) -> bool:
        """True when (x, y) satisfies the curve equation with both coordinates in range."""
        p = self.p
        if not (0 <= x < p and 0 <= y < p):
            return False
        return (y * y - (x * x * x + self.a * x + self.b)) % p == 0

    def encode(self, x: int, y: int) -> bytes:
        """x | y, each padded to the field size (RFC 5903 / RFC 6932 KE format)."""
        fb = self.field_bytes
        return x.to_bytes(fb, "big") + y.to_bytes(fb, "big")

    def decode(self, data: bytes) -> Point:
        """Parse x | y and check the point lies on the curve."""
        fb = self.field_bytes
        if len(data) != 2 * fb:
            raise ECError(f"{self.name}: point of {len(data)} bytes, need {2 * fb}")
        x = int.from_bytes(data[:fb], "big")
        y = int.from_bytes(data[fb:], "big")
        if not self.on_curve(x, y):
            raise ECError(f"{self.name}: public value is not a point on the curve")
        return x, y

    # -- Jacobian arithmetic (infinity has Z == 0)

    def _double(self, pt: _Jac) -> _Jac:
        x, y, z = pt
        if z == 0 or y == 0:
            return (1, 1, 0)
        p = self.p
        yy = y * y % p
        s = 4 * x * yy % p
        zz = z * z % p
        m = (3 * x * x + self.a * zz * zz) % p
        x3 = (m * m - 2 * s) % p
        y3 = (m * (s - x3) - 8 * yy * yy) % p
        z3 = 2 * y * z % p
        return (x3, y3, z3)

    def _add(self, p1: _Jac, p2: _Jac) -> _Jac:
        if p1[2] == 0:
            return p2
        if p2[2] == 0:
            return p1
        p = self.p
        x1, y1, z1 = p1
        x2, y2, z2 = p2
        z1z1 = z1 * z1 % p
        z2z2 = z2 * z2 % p
        u1 = x1 * z2z2 % p
        u2 = x2 * z1z1 % p
        s1 = y1 * z2 * z2z2 % p
        s2 = y2 * z1 * z1z1 % p
        if u1 == u2:
            return self._double(p1) if s1 == s2 else (1, 1, 0)
        h = (u2 - u1) % p
        r = (s2 - s1) % p
        hh = h * h % p
        hhh = h * hh % p
        v = u1 * hh % p
        x3 = (r * r - hhh - 2 * v) % p
        y3 = (r * (v - x3) - s1 * hhh) % p
        z3 = h * z1 * z2 % p
        return (x3, y3, z3)

    def _affine(self, pt: _Jac) -> Point | None:
        x, y, z = pt
        if z == 0:
            return None
        p = self.p
        zi = pow(z, -1, p)
        zi2 = zi * zi % p
        return (x * zi2 % p, y * zi2 * zi % p)

    def multiply(self, k: int, point: Point) -> Point | None:
        """k * point, or None for the point at infinity."""
        acc: _Jac = (1, 1, 0)
        base: _Jac = (point[0], point[1], 1)
        for i in range(self.n.bit_length() - 1, -1, -1):
            acc = self._double(acc)
            added = self._add(acc, base)
            acc = added if (k >> i) & 1 else acc
        return self._affine(acc)

    def multiply_base(self, k: int) -> Point:
        """k * G for 1 <= k < n."""
        pt = self.multiply(k, (self.gx, self.gy))
        if pt is None:
            raise ECError(f"{self.name}: scalar is a multiple of the group order")
        return pt


BRAINPOOL_P224R1 = Curve(
    "brainpoolP224r1",
    p=0xD7C134AA264366862A18302575D1D787B09F075797DA89F57EC8C0FF,
    a=0x68A5E62CA9CE6C1C299803A6C1530B514E182AD8B0042A59CAD29F43,
    b=0x2580F63CCFE44138870713B1A92369E33E2135D266DBB372386C400B,
    gx=0x0D9029AD2C7E5CF4340823B2A87DC68C9E4CE3174C1E6EFDEE12C07D,
    gy=0x58AA56F772C0726F24C6B89E4ECDAC24354B9E99CAA3F6D3761402CD,
    n=0xD7C134AA264366862A18302575D0FB98D116BC4B6DDEBCA3A5A7939F,
)

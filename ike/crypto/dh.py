"""Diffie-Hellman groups of IKEv1: MODP 1, 2, 5, 14-18; ECP 19-21, 25, 26; Brainpool 27-30.

MODP primes (RFC 2409 section 6, RFC 3526) are all
``p = 2^n - 2^(n-64) - 1 + 2^64 * (floor(2^(n-130) * pi) + k)`` with generator 2;
they are computed from that formula once per group (tests check them against
the RFC text, primality and the safe-prime property).  ECP public values are
``x | y`` and the shared secret is ``x`` (RFC 5903, RFC 6932).

Every private value is drawn from the injected :class:`RandomSource`, so a
seeded source reproduces an exchange byte for byte.  The modular
exponentiations run in OpenSSL through ``cryptography`` (several times faster
than ``pow()``) for the MODP groups OpenSSL knows by name (5, 14-18, RFC 3526).
For the others (1 and 2, RFC 2409) ``cryptography`` runs OpenSSL's full
parameter check -- primality tests of p and (p-1)/2, 35-40 ms -- each time a
key is built from numbers, i.e. three times per exchange; those two groups use
``pow()`` with a blinded exponent instead (about 2.5 ms for MODP-1024).  Only
Brainpool 224 (no ``cryptography`` curve) uses the pure-Python arithmetic of
:mod:`ike.crypto.ecmath`.
"""

from __future__ import annotations

import secrets
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cache
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.utils import CryptographyDeprecationWarning

from ike.crypto import ecmath
from ike.crypto.rand import RandomSource

with warnings.catch_warnings():
    # cryptography 50 marks finite-field DH as deprecated on attribute access;
    # IKEv1 needs it, so take the classes once, quietly.
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from cryptography.hazmat.primitives.asymmetric import dh as _ffdh

    _DHParameterNumbers: Any = getattr(_ffdh, "DHParameterNumbers", None)
    _DHPublicNumbers: Any = getattr(_ffdh, "DHPublicNumbers", None)
    _DHPrivateNumbers: Any = getattr(_ffdh, "DHPrivateNumbers", None)

__all__ = ["DHError", "ECPGroup", "Group", "MODPGroup", "PrivateValue", "group", "supported"]


class DHError(ValueError):
    """A bad peer public value, or an unsupported group."""


# (group id) -> (bits, k, private exponent bits) for the pi-derived MODP primes
_MODP: dict[int, tuple[int, int, int]] = {
    1: (768, 149686, 256),
    2: (1024, 129093, 256),
    5: (1536, 741804, 256),
    14: (2048, 124476, 256),
    15: (3072, 1690314, 320),
    16: (4096, 240904, 384),
    17: (6144, 929484, 448),
    18: (8192, 4743158, 512),
}

# MODP groups OpenSSL (3.0 and later) recognises as named safe-prime groups, for which it skips
# the primality tests of DH_check; the RFC 2409 groups 1 and 2 are not among them.
_OPENSSL_NAMED = frozenset({5, 14, 15, 16, 17, 18})

# bits of the random multiple of p-1 added to a private exponent on the pow() path
_BLIND_BITS = 64


def _pi_bits(nbits: int) -> int:
    """floor(pi * 2^nbits), by Machin's formula in integer arithmetic."""
    guard = 64
    one = 1 << (nbits + guard)

    def arctan_inv(x: int) -> int:
        total = term = one // x
        x2 = x * x
        n = 1
        sign = -1
        while term:
            term //= x2
            total += sign * (term // (2 * n + 1))
            sign = -sign
            n += 1
        return total

    pi = 4 * (4 * arctan_inv(5) - arctan_inv(239))
    return pi >> guard


@cache
def modp_prime(group_id: int) -> int:
    """The prime of MODP group ``group_id`` (RFC 2409 section 6 / RFC 3526)."""
    bits, k, _ = _MODP[group_id]
    return (1 << bits) - (1 << (bits - 64)) - 1 + ((_pi_bits(bits - 130) + k) << 64)


@dataclass(slots=True)
class PrivateValue:
    """Our DH private value; ``key`` is the backend object when there is one."""

    group_id: int
    secret: int
    key: Any = None

    def __repr__(self) -> str:  # never show the secret
        return f"PrivateValue(group={self.group_id})"


class Group(ABC):
    """One DH group: generate a key pair, derive the shared secret."""

    id: int
    name: str
    public_len: int     # bytes in a KE payload
    shared_len: int     # bytes of g^xy

    @abstractmethod
    def generate(self, rand: RandomSource) -> tuple[PrivateValue, bytes]:
        """A private value from ``rand`` and our public value as sent in KE."""
        ...

    @abstractmethod
    def check_public(self, peer_public: bytes) -> None:
        """Raise DHError unless ``peer_public`` is a valid public value of this group."""
        ...

    @abstractmethod
    def shared_secret(self, private: PrivateValue, peer_public: bytes) -> bytes:
        """g^xy (MODP, padded to the prime length) or x of the shared point (ECP)."""
        ...

    def __repr__(self) -> str:
        return f"<DH group {self.id} {self.name}>"


class MODPGroup(Group):
    """A MODP group, generator 2, short private exponents (RFC 3526 section 8)."""

    def __init__(self, group_id: int) -> None:
        bits, _, xbits = _MODP[group_id]
        self.id = group_id
        self.name = f"MODP_{bits}"
        self.p = modp_prime(group_id)
        self.g = 2
        self.xbits = xbits
        self.public_len = self.shared_len = bits // 8
        self._pn: Any = None
        self._gpub: Any = None
        self._last_peer: tuple[bytes, int] | None = None
        if group_id not in _OPENSSL_NAMED:
            return  # pow(): see the module docstring
        try:
            pn = _DHParameterNumbers(self.p, self.g)
            self._gpub = _DHPublicNumbers(self.g, pn).public_key()
            self._pn = pn
            # one probe so that an OpenSSL refusing this size falls back to pow()
            probe = _DHPrivateNumbers(3, _DHPublicNumbers(8, pn)).private_key()
            if probe.exchange(self._gpub)[-1:] != b"\x08":
                raise DHError("DH backend self-test failed")
        except (TypeError, ValueError, UnsupportedAlgorithm):
            self._pn = self._gpub = None

    def _pow(self, base: int, x: int) -> int:
        """base^x mod p with the exponent blinded by a fresh random multiple of p-1.

        base^(p-1) = 1 for every base in [2, p-2] (Fermat), so the result is base^x, while the
        exponent bits that Python's sliding-window pow() walks differ on every call.  The blind
        comes from the OS (it changes no output, so a seeded exchange still reproduces).
        """
        return pow(base, x + secrets.randbits(_BLIND_BITS) * (self.p - 1), self.p)

    def generate(self, rand: RandomSource) -> tuple[PrivateValue, bytes]:
        """Draw x of ``xbits`` bits (top bit set) and compute g^x."""
        x = rand.randbits(self.xbits) | (1 << (self.xbits - 1))
        if self._pn is not None:
            # cryptography wants y with x; compute g^x with a throw-away key, then keep the real one
            tmp = _DHPrivateNumbers(x, _DHPublicNumbers(self.g, self._pn)).private_key()
            public = bytes(tmp.exchange(self._gpub)).rjust(self.public_len, b"\x00")
            key = _DHPrivateNumbers(x, _DHPublicNumbers(int.from_bytes(public),
                                                        self._pn)).private_key()
            return PrivateValue(self.id, x, key), public
        y = self._pow(self.g, x)
        return PrivateValue(self.id, x, None), y.to_bytes(self.public_len, "big")

    def _peer_int(self, peer_public: bytes) -> int:
        # the value check_public just read is the one shared_secret reads next: kept (by the
        # identity of the bytes object) so that a 2048-bit value is converted and compared once
        last = self._last_peer
        if last is not None and last[0] is peer_public:
            return last[1]
        if len(peer_public) != self.public_len:
            raise DHError(
                f"{self.name}: public value of {len(peer_public)} bytes, need {self.public_len}"
            )
        y = int.from_bytes(peer_public, "big")
        if not 1 < y < self.p - 1:
            raise DHError(f"{self.name}: public value out of range (1 < y < p-1)")
        if type(peer_public) is bytes:  # immutable: the same object is the same value
            self._last_peer = (peer_public, y)
        return y

    def check_public(self, peer_public: bytes) -> None:
        """Length and range check (1 < y < p-1), as isakmpd and RFC 2631 ask."""
        self._peer_int(peer_public)

    def shared_secret(self, private: PrivateValue, peer_public: bytes) -> bytes:
        """g^xy padded to the prime length."""
        if private.group_id != self.id:
            raise DHError(f"{self.name}: private value belongs to group {private.group_id}")
        y = self._peer_int(peer_public)
        if private.key is not None and self._pn is not None:
            peer = _DHPublicNumbers(y, self._pn).public_key()
            z = private.key.exchange(peer)
            return bytes(z).rjust(self.shared_len, b"\x00")
        return self._pow(y, private.secret).to_bytes(self.shared_len, "big")


class ECPGroup(Group):
    """An elliptic curve group over GF(p): public x | y, shared secret x."""

    def __init__(self, group_id: int, name: str, curve: ec.EllipticCurve | None,
                 params: ecmath.Curve | None, order: int, field_bytes: int) -> None:
        self.id = group_id
        self.name = name
        self.curve = curve
        self.params = params
        self.order = order
        self.field_bytes = field_bytes
        self.public_len = 2 * field_bytes
        self.shared_len = field_bytes

    def generate(self, rand: RandomSource) -> tuple[PrivateValue, bytes]:
        """Draw d in [1, n-1] and compute d*G."""
        d = rand.randrange(1, self.order)
        if self.curve is not None:
            key = ec.derive_private_key(d, self.curve)
            nums = key.public_key().public_numbers()
            fb = self.field_bytes
            return PrivateValue(self.id, d, key), nums.x.to_bytes(fb, "big") + nums.y.to_bytes(
                fb, "big")
        assert self.params is not None
        x, y = self.params.multiply_base(d)
        return PrivateValue(self.id, d), self.params.encode(x, y)

    def _peer_key(self, peer_public: bytes) -> Any:
        if len(peer_public) != self.public_len:
            raise DHError(
                f"{self.name}: public value of {len(peer_public)} bytes, need {self.public_len}"
            )
        if self.curve is not None:
            try:
                return ec.EllipticCurvePublicKey.from_encoded_point(
                    self.curve, b"\x04" + peer_public)
            except ValueError as e:
                raise DHError(f"{self.name}: public value is not a point on the curve") from e
        assert self.params is not None
        try:
            return self.params.decode(peer_public)
        except ecmath.ECError as e:
            raise DHError(f"{self.name}: {e}") from e

    def check_public(self, peer_public: bytes) -> None:
        """Length, coordinate range and on-curve check."""
        self._peer_key(peer_public)

    def shared_secret(self, private: PrivateValue, peer_public: bytes) -> bytes:
        """The x coordinate of d * peer point (RFC 5903 section 7)."""
        if private.group_id != self.id:
            raise DHError(f"{self.name}: private value belongs to group {private.group_id}")
        peer = self._peer_key(peer_public)
        if self.curve is not None:
            z = private.key.exchange(ec.ECDH(), peer)
            return bytes(z).rjust(self.shared_len, b"\x00")
        assert self.params is not None
        pt = self.params.multiply(private.secret, peer)
        if pt is None:
            raise DHError(f"{self.name}: shared point is the point at infinity")
        return pt[0].to_bytes(self.field_bytes, "big")


_ECP: dict[int, tuple[str, Any, int]] = {
    19: ("ECP_256", ec.SECP256R1, 32),
    20: ("ECP_384", ec.SECP384R1, 48),
    21: ("ECP_521", ec.SECP521R1, 66),
    25: ("ECP_192", ec.SECP192R1, 24),
    26: ("ECP_224", ec.SECP224R1, 28),
    27: ("BP_224", None, 28),
    28: ("BP_256", ec.BrainpoolP256R1, 32),
    29: ("BP_384", ec.BrainpoolP384R1, 48),
    30: ("BP_512", ec.BrainpoolP512R1, 64),
}


@cache
def group(group_id: int) -> Group:
    """The DH group with GROUP_DESCRIPTION ``group_id``; DHError if unsupported."""
    gid = int(group_id)
    if gid in _MODP:
        return MODPGroup(gid)
    if gid in _ECP:
        name, curve_cls, fb = _ECP[gid]
        if curve_cls is None:
            params = ecmath.BRAINPOOL_P224R1
            return ECPGroup(gid, name, None, params, params.n, fb)
        curve = curve_cls()
        return ECPGroup(gid, name, curve, None, int(curve.group_order), fb)
    raise DHError(f"unsupported Diffie-Hellman group {gid}")


def supported() -> tuple[int, ...]:
    """All supported GROUP_DESCRIPTION values."""
    return tuple(sorted((*_MODP, *_ECP)))

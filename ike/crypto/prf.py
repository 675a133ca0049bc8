"""Hashes and HMAC PRFs of IKEv1 (RFC 2409 appendix A HASH_ALGORITHM ids).

isakmpd only offers the HMAC PRF built from the negotiated hash, so
``prf(hash, key, data)`` is HMAC-<hash>.  Hashes can be named by their IKE
HASH_ALGORITHM id (1 MD5, 2 SHA, 4 SHA2_256, 5 SHA2_384, 6 SHA2_512), by the
isakmpd constant name, or by the hashlib name.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

try:  # what hmac.digest calls, without its Python wrapper (the PRF runs ~13 times a handshake)
    from _hashlib import hmac_digest as _hmac_digest
except ImportError:  # pragma: no cover - a Python built without OpenSSL
    _hmac_digest = None  # type: ignore[assignment]

__all__ = [
    "HASHES", "NAMES", "Hash", "HashName", "PRFError", "get_hash", "hash_data", "hashlib_name",
    "hmac_digest", "prf",
]


class PRFError(ValueError):
    """An unknown or unsupported hash / PRF."""


@dataclass(frozen=True, slots=True, eq=False)
class Hash:
    """One hash algorithm as IKEv1 negotiates it (one instance per algorithm, in HASHES: they
    compare and hash by identity, in C, so that a Hash is a cheap key of the tables below)."""

    name: str            # hashlib name, e.g. "sha1"
    ike_id: int          # HASH_ALGORITHM value of RFC 2409 appendix A
    ike_name: str        # constant name used by isakmpd / RFC 2409
    digest_size: int
    block_size: int
    new: Callable[..., Any]

    def digest(self, data: bytes) -> bytes:
        """The plain hash of ``data`` (Phase 1 IV, Phase 2 IV, VIDs)."""
        return bytes(self.new(data).digest())

    def prf(self, key: bytes, data: bytes) -> bytes:
        """HMAC of ``data`` under ``key`` with this hash."""
        return hmac_digest(key, data, self.name)


HASHES: tuple[Hash, ...] = (
    Hash("md5", 1, "MD5", 16, 64, hashlib.md5),
    Hash("sha1", 2, "SHA", 20, 64, hashlib.sha1),
    Hash("sha256", 4, "SHA2_256", 32, 64, hashlib.sha256),
    Hash("sha384", 5, "SHA2_384", 48, 128, hashlib.sha384),
    Hash("sha512", 6, "SHA2_512", 64, 128, hashlib.sha512),
)

_BY_KEY: dict[object, Hash] = {}
for _h in HASHES:
    _BY_KEY[_h.ike_id] = _h
    for _alias in (_h.name, _h.ike_name, _h.ike_name.replace("_", "-"), _h.name.upper()):
        _BY_KEY[_alias] = _h
        _BY_KEY[_alias.lower()] = _h
_BY_KEY["SHA1"] = _BY_KEY["sha1"]
_BY_KEY["sha2-256"] = _BY_KEY["sha256"]
_BY_KEY["sha2-384"] = _BY_KEY["sha384"]
_BY_KEY["sha2-512"] = _BY_KEY["sha512"]
for _h in HASHES:
    _BY_KEY[_h] = _h
#: The hashlib name for every key get_hash knows (a Hash, an IKE id, a name): what the HMAC
#: callers need, in one dict lookup instead of a get_hash call.
NAMES: dict[object, str] = {key: h.name for key, h in _BY_KEY.items()}

HashName = Hash | int | str


def get_hash(which: HashName) -> Hash:
    """Look a hash up by IKE id, isakmpd name or hashlib name; PRFError if unknown."""
    h = _BY_KEY.get(which)  # Hashes, ids (ints or IntEnums) and the usual names, in one lookup
    if h is not None:
        return h
    key: object = int(which) if isinstance(which, int) else which
    h = _BY_KEY.get(key)
    if h is None and isinstance(which, str):
        h = _BY_KEY.get(which.lower())
    if h is None:
        raise PRFError(f"unsupported hash algorithm {which!r}")
    return h


def hashlib_name(which: HashName) -> str:
    """The hashlib name of a hash (for hmac_digest): one dict lookup for the usual keys,
    get_hash (and its PRFError) for the rest."""
    return NAMES.get(which) or get_hash(which).name


def prf(hash_name: HashName, key: bytes, data: bytes) -> bytes:
    """The IKEv1 PRF: HMAC with the negotiated hash."""
    return hmac_digest(key, data, hashlib_name(hash_name))


def _hmac_with_fallback(key: bytes, data: bytes, name: str) -> bytes:
    """hmac.digest(key, data, name), straight to OpenSSL when it has the digest."""
    if _hmac_digest is not None:
        try:
            return _hmac_digest(key, data, name)
        except ValueError:  # a digest OpenSSL refuses (FIPS): hmac's pure-Python fallback
            pass
    return hmac.digest(key, data, name)


def _openssl_hmac(name: str) -> bool:
    """Whether OpenSSL computes HMAC with digest ``name`` (FIPS mode refuses MD5)."""
    try:
        _hmac_digest(b"key", b"data", name)
    except ValueError:
        return False
    return True


def _openssl_has_every_hmac() -> bool:
    """Whether OpenSSL computes the HMAC of every IKE hash."""
    return _hmac_digest is not None and all(_openssl_hmac(h.name) for h in HASHES)


#: HMAC of ``data`` under ``key`` with hashlib digest ``name``: OpenSSL's function itself when it
#: has every IKE hash (no Python frame for the ~13 PRFs of a handshake), else a wrapper that
#: falls back to hmac's pure-Python HMAC for the digests OpenSSL refuses.
hmac_digest: Callable[[bytes, bytes, str], bytes] = (
    _hmac_digest if _openssl_has_every_hmac() else _hmac_with_fallback)


def hash_data(hash_name: HashName, data: bytes) -> bytes:
    """The plain hash of ``data``."""
    return get_hash(hash_name).digest(data)

"""RSA signatures as IKEv1 uses them (RFC 2409 section 5.1, isakmpd ``rsa_sig``).

The signed data is the raw HASH_I / HASH_R, padded with PKCS#1 v1.5 block
type 1 and **no DigestInfo** (OpenSSL's ``RSA_private_encrypt`` /
``RSA_public_decrypt`` with ``RSA_PKCS1_PADDING``; strongSwan calls it
``RSA_EMSA_PKCS1_NULL``).  ``cryptography`` cannot sign without a DigestInfo,
so signing is done here with the CRT private exponents; verification uses
OpenSSL's ``recover_data_from_signature``.
"""

from __future__ import annotations

import hmac

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

__all__ = ["RSAError", "sign", "verify"]


class RSAError(ValueError):
    """Data too long for the key, or a signature that does not verify."""


def _emsa_pkcs1_type1(data: bytes, k: int) -> bytes:
    """00 01 FF..FF 00 | data, at least 8 bytes of FF (RFC 8017 section 9.2 step 3-5)."""
    if len(data) > k - 11:
        raise RSAError(f"{len(data)} bytes too long for a {k * 8}-bit RSA key")
    return b"\x00\x01" + b"\xff" * (k - 3 - len(data)) + b"\x00" + data


def sign(key: RSAPrivateKey, data: bytes) -> bytes:
    """Sign the raw hash ``data`` (no DigestInfo); returns ``k`` bytes."""
    nums = key.private_numbers()
    pub = nums.public_numbers
    k = (pub.n.bit_length() + 7) // 8
    m = int.from_bytes(_emsa_pkcs1_type1(data, k), "big")
    # CRT: s = m^d mod n from the two half-size exponentiations
    s1 = pow(m, nums.dmp1, nums.p)
    s2 = pow(m, nums.dmq1, nums.q)
    h = (nums.iqmp * (s1 - s2)) % nums.p
    s = s2 + h * nums.q
    if pow(s, pub.e, pub.n) != m:  # fault check before the signature leaves
        raise RSAError("RSA signature self-check failed")
    return s.to_bytes(k, "big")


def recover(key: RSAPublicKey, signature: bytes) -> bytes:
    """The data inside a type-1 padded signature; RSAError if the padding is wrong."""
    k = (key.key_size + 7) // 8
    if len(signature) != k:
        raise RSAError(f"signature of {len(signature)} bytes for a {key.key_size}-bit key")
    try:
        return key.recover_data_from_signature(signature, padding.PKCS1v15(), None)
    except (InvalidSignature, ValueError) as e:
        raise RSAError("RSA signature does not verify") from e


def verify(key: RSAPublicKey, data: bytes, signature: bytes) -> bool:
    """True when ``signature`` carries exactly the raw hash ``data``."""
    try:
        got = recover(key, signature)
    except RSAError:
        return False
    return hmac.compare_digest(got, data)

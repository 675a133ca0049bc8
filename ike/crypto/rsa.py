"""RSA signatures as IKEv1 uses them (RFC 2409 section 5.1, isakmpd ``rsa_sig``).

The signed data is the raw HASH_I / HASH_R, padded with PKCS#1 v1.5 block
type 1 and **no DigestInfo** (OpenSSL's ``RSA_private_encrypt`` /
``RSA_public_decrypt`` with ``RSA_PKCS1_PADDING``; strongSwan calls it
``RSA_EMSA_PKCS1_NULL``).  ``cryptography`` cannot sign without a DigestInfo,
so signing goes to the system libcrypto's ``EVP_PKEY_sign`` (no message
digest set: raw type-1 padding) through ctypes, about 20 times faster than
Python integers; when that library is missing the CRT exponentiations run in
Python.  Verification uses ``cryptography``'s ``recover_data_from_signature``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hmac
from functools import cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

__all__ = ["RSAError", "recover", "sign", "verify"]

_RSA_PKCS1_PADDING = 1
_MAX_CACHED_KEYS = 16


class RSAError(ValueError):
    """Data too long for the key, or a signature that does not verify."""


def _emsa_pkcs1_type1(data: bytes, k: int) -> bytes:
    """00 01 FF..FF 00 | data, at least 8 bytes of FF (RFC 8017 section 9.2 step 3-5)."""
    if len(data) > k - 11:
        raise RSAError(f"{len(data)} bytes too long for a {k * 8}-bit RSA key")
    return b"\x00\x01" + b"\xff" * (k - 3 - len(data)) + b"\x00" + data


@cache
def _libcrypto() -> Any:
    """The system libcrypto (OpenSSL 3) with the few signatures we call, or None."""
    try:
        lib: Any = ctypes.CDLL(ctypes.util.find_library("crypto") or "libcrypto.so.3")
        vp, size_p = ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)
        lib.d2i_AutoPrivateKey.restype = vp
        lib.d2i_AutoPrivateKey.argtypes = [vp, ctypes.POINTER(ctypes.c_char_p), ctypes.c_long]
        lib.EVP_PKEY_CTX_new.restype = vp
        lib.EVP_PKEY_CTX_new.argtypes = [vp, vp]
        lib.EVP_PKEY_sign_init.argtypes = [vp]
        lib.EVP_PKEY_CTX_set_rsa_padding.argtypes = [vp, ctypes.c_int]
        lib.EVP_PKEY_sign.argtypes = [vp, ctypes.c_char_p, size_p, ctypes.c_char_p,
                                      ctypes.c_size_t]
        lib.EVP_PKEY_CTX_free.argtypes = [vp]
        lib.EVP_PKEY_free.argtypes = [vp]
    except (OSError, AttributeError):
        return None
    return lib


_pkeys: dict[RSAPrivateKey, int] = {}


def _evp_pkey(lib: Any, key: RSAPrivateKey) -> int | None:
    """The libcrypto EVP_PKEY of ``key``, loaded once from its DER form."""
    pkey = _pkeys.get(key)
    if pkey is None:
        der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        ptr = ctypes.c_char_p(der)
        pkey = lib.d2i_AutoPrivateKey(None, ctypes.byref(ptr), len(der))
        if not pkey:
            return None
        if len(_pkeys) >= _MAX_CACHED_KEYS:
            old_key = next(iter(_pkeys))
            lib.EVP_PKEY_free(_pkeys.pop(old_key))
        _pkeys[key] = pkey
    return int(pkey)


def _sign_openssl(key: RSAPrivateKey, data: bytes, k: int) -> bytes | None:
    lib = _libcrypto()
    if lib is None:
        return None
    pkey = _evp_pkey(lib, key)
    if pkey is None:
        return None
    ctx = lib.EVP_PKEY_CTX_new(pkey, None)
    if not ctx:
        return None
    try:
        out = ctypes.create_string_buffer(k)
        n = ctypes.c_size_t(k)
        if (lib.EVP_PKEY_sign_init(ctx) != 1
                or lib.EVP_PKEY_CTX_set_rsa_padding(ctx, _RSA_PKCS1_PADDING) != 1
                or lib.EVP_PKEY_sign(ctx, out, ctypes.byref(n), data, len(data)) != 1
                or n.value != k):
            return None
        return out.raw
    finally:
        lib.EVP_PKEY_CTX_free(ctx)


def _sign_python(key: RSAPrivateKey, data: bytes, k: int) -> bytes:
    nums = key.private_numbers()
    pub = nums.public_numbers
    m = int.from_bytes(_emsa_pkcs1_type1(data, k), "big")
    # CRT: s = m^d mod n from the two half-size exponentiations
    s1 = pow(m, nums.dmp1, nums.p)
    s2 = pow(m, nums.dmq1, nums.q)
    h = (nums.iqmp * (s1 - s2)) % nums.p
    s = s2 + h * nums.q
    if pow(s, pub.e, pub.n) != m:  # fault check before the signature leaves
        raise RSAError("RSA signature self-check failed")
    return s.to_bytes(k, "big")


def sign(key: RSAPrivateKey, data: bytes, *, use_openssl: bool = True) -> bytes:
    """Sign the raw hash ``data`` (no DigestInfo); returns ``k`` bytes.

    ``use_openssl=False`` forces the pure-Python path (tests compare both).
    """
    k = (key.key_size + 7) // 8
    _emsa_pkcs1_type1(data, k)  # length check, same error on both paths
    if use_openssl:
        sig = _sign_openssl(key, data, k)
        if sig is not None:
            return sig
    return _sign_python(key, data, k)


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

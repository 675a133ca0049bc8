"""An ESP decryptor written from RFC 4303/3602/4106/2451, independent of the kernel's crypto:
it checks that the key blobs we hand the kernel (salt appended, RFC 4868 truncation) mean what
the RFCs say, using captured packets."""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class EspCheckError(ValueError):
    """The packet does not authenticate or decrypt with the given keys."""


def _unpad(plain: bytes) -> tuple[bytes, int]:
    """(payload, next header) from an ESP trailer, checking the RFC 4303 padding bytes."""
    pad_len, next_header = plain[-2], plain[-1]
    pad = plain[-2 - pad_len:-2]
    if pad != bytes(range(1, pad_len + 1)):
        raise EspCheckError("bad ESP padding")
    return plain[:-2 - pad_len], next_header


def decrypt_cbc_hmac(ip_packet: bytes, enc_key: bytes, auth_key: bytes, cipher: str,
                     digest: str, icv_len: int) -> tuple[bytes, int]:
    """RFC 3602 / 2451 CBC with HMAC-SHA1-96 (RFC 2404) or HMAC-SHA2-256-128 (RFC 4868)."""
    esp = ip_packet[(ip_packet[0] & 0xF) * 4:]
    block = 16 if cipher == "aes" else 8
    body, icv = esp[:-icv_len], esp[-icv_len:]
    want = hmac.new(auth_key, body, getattr(hashlib, digest)).digest()[:icv_len]
    if not hmac.compare_digest(want, icv):
        raise EspCheckError("ICV mismatch")
    iv, ct = body[8:8 + block], body[8 + block:]
    algo = algorithms.AES(enc_key) if cipher == "aes" else TripleDES(enc_key)
    dec = Cipher(algo, modes.CBC(iv)).decryptor()
    return _unpad(dec.update(ct) + dec.finalize())


def decrypt_gcm(ip_packet: bytes, key_and_salt: bytes) -> tuple[bytes, int]:
    """RFC 4106 with a 16-byte ICV: nonce = 4-byte salt (the blob's last 4 bytes) || 8-byte IV."""
    esp = ip_packet[(ip_packet[0] & 0xF) * 4:]
    key, salt = key_and_salt[:-4], key_and_salt[-4:]
    aad, iv, ct = esp[:8], esp[8:16], esp[16:]
    try:
        plain = AESGCM(key).decrypt(salt + iv, ct, aad)
    except Exception as e:  # cryptography raises InvalidTag
        raise EspCheckError("GCM tag mismatch") from e
    return _unpad(plain)

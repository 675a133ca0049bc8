"""RSA signatures as IKEv1 uses them: type-1 padding over the raw hash, no DigestInfo."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa as crsa

from ike.crypto import rsa


@pytest.fixture(scope="module")
def key() -> crsa.RSAPrivateKey:
    return crsa.generate_private_key(public_exponent=65537, key_size=1024)


def test_sign_verify_raw_hash(key: crsa.RSAPrivateKey) -> None:
    h = bytes(range(20))
    sig = rsa.sign(key, h)
    assert len(sig) == 128
    assert rsa.verify(key.public_key(), h, sig)
    assert not rsa.verify(key.public_key(), h[:-1] + b"\xff", sig)
    assert not rsa.verify(key.public_key(), h, sig[:-1])
    # the signature carries 00 01 FF.. 00 | hash with no DigestInfo
    m = pow(int.from_bytes(sig, "big"), key.public_key().public_numbers().e,
            key.public_key().public_numbers().n).to_bytes(128, "big")
    assert m == b"\x00\x01" + b"\xff" * (128 - 23) + b"\x00" + h
    assert rsa.recover(key.public_key(), sig) == h


def test_deterministic_like_openssl(key: crsa.RSAPrivateKey) -> None:
    # PKCS#1 v1.5 is deterministic: with a DigestInfo prefix our raw signature
    # must equal the one OpenSSL makes for the same digest.
    import hashlib

    msg = b"isakmpd"
    digest_info = bytes.fromhex("3021300906052b0e03021a05000414") + hashlib.sha1(msg).digest()
    assert rsa.sign(key, digest_info) == key.sign(msg, padding.PKCS1v15(), hashes.SHA1())


def test_too_long_for_key(key: crsa.RSAPrivateKey) -> None:
    with pytest.raises(rsa.RSAError, match="too long"):
        rsa.sign(key, bytes(120))
    with pytest.raises(rsa.RSAError, match="too long"):
        rsa.sign(key, bytes(118), use_openssl=False)
    assert len(rsa.sign(key, bytes(117))) == 128  # k - 11 is the limit


@pytest.mark.parametrize("size", [20, 32, 48, 64])
def test_openssl_and_python_paths_agree(key: crsa.RSAPrivateKey, size: int) -> None:
    h = bytes(range(size))
    assert rsa.sign(key, h) == rsa.sign(key, h, use_openssl=False)


def test_many_keys_stay_correct() -> None:
    # more keys than the libcrypto key cache holds: evicted keys load again
    keys = [crsa.generate_private_key(public_exponent=65537, key_size=1024) for _ in range(18)]
    for k in keys + keys[:3]:
        assert rsa.verify(k.public_key(), b"h" * 20, rsa.sign(k, b"h" * 20))

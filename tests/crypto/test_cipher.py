"""Phase 1 ciphers, padding and the isakmpd CBC IV chain."""

from __future__ import annotations

import pytest

from ike.crypto.cipher import (
    AES_CBC,
    BLOWFISH_CBC,
    CAST_CBC,
    CBC,
    TRIPLEDES_CBC,
    CipherError,
    Keystate,
    cipher_spec,
    negotiated_key_length,
    pad,
)


def test_isakmpd_regress_blowfish_known_answer() -> None:
    # Source: OpenBSD regress/sbin/isakmpd/crypto/cryptotest.c (the Blowfish-CBC
    # known-answer test, the classic Eric Young / SSLeay Blowfish CBC vector).
    key = bytes.fromhex("0123456789ABCDEFF0E1D2C3B4A59687")
    iv = bytes.fromhex("FEDCBA9876543210")
    data = b"7654321 Now is the time for \0\0\0\0"
    assert len(data) == 32
    want = "6B77B4D63006DEE605B156E27403979358DEB9E7154616D959F1652BD5FF92CC"
    c = CBC(BLOWFISH_CBC, key)
    assert c.encrypt(iv, data).hex().upper() == want
    assert c.decrypt(iv, bytes.fromhex(want)) == data


@pytest.mark.parametrize("enc", [TRIPLEDES_CBC, BLOWFISH_CBC, CAST_CBC, AES_CBC])
def test_isakmpd_regress_roundtrip(enc: int) -> None:
    # cryptotest.c: key = 0..keymax-1, IV = 0..blocksize-1, data = 0..255
    spec = cipher_spec(enc)
    c = CBC(enc, bytes(range(spec.key_max)))
    iv = bytes(range(spec.block_size))
    data = bytes(range(256))
    ct = c.encrypt(iv, data)
    assert ct != data and len(ct) == 256
    assert c.decrypt(iv, ct) == data


def test_aes_cbc_sp800_38a_f21() -> None:
    # NIST SP 800-38A F.2.1 CBC-AES128.Encrypt, first block
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    iv = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    pt = bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")
    assert CBC(AES_CBC, key).encrypt(iv, pt).hex() == "7649abac8119b246cee98e9b12e9197d"


def test_key_lengths_as_isakmpd() -> None:
    # no KEY_LENGTH attribute: the cipher's maximum (crypto.c keymax)
    assert negotiated_key_length(TRIPLEDES_CBC) == 24
    assert negotiated_key_length(BLOWFISH_CBC) == 56
    assert negotiated_key_length(CAST_CBC) == 16
    assert negotiated_key_length(AES_CBC) == 32
    assert negotiated_key_length(AES_CBC, 128) == 16
    assert negotiated_key_length(BLOWFISH_CBC, 128) == 16
    # the generated conf sections offer 128 bits for Blowfish and AES
    assert cipher_spec(BLOWFISH_CBC).default_key_bits == 128
    assert cipher_spec(AES_CBC).default_key_bits == 128
    with pytest.raises(CipherError, match="multiple of 8"):
        negotiated_key_length(AES_CBC, 129)
    with pytest.raises(CipherError, match="outside"):
        negotiated_key_length(AES_CBC, 64)
    with pytest.raises(CipherError, match="unsupported"):
        negotiated_key_length(2)
    with pytest.raises(CipherError, match="unsupported"):
        negotiated_key_length(1)  # DES, gone from isakmpd


def test_bad_input_is_a_cipher_error() -> None:
    c = CBC(AES_CBC, bytes(16))
    with pytest.raises(CipherError, match="whole number"):
        c.decrypt(bytes(16), bytes(17))
    with pytest.raises(CipherError, match="whole number"):
        c.decrypt(bytes(16), b"")
    with pytest.raises(CipherError, match="IV"):
        c.encrypt(bytes(8), bytes(16))
    with pytest.raises(CipherError, match="not allowed"):
        CBC(AES_CBC, bytes(20))
    with pytest.raises(CipherError, match="not allowed"):
        CBC(TRIPLEDES_CBC, bytes(16))


def test_padding_zero_to_block() -> None:
    assert pad(b"abc", 8) == b"abc" + bytes(5)
    assert pad(bytes(16), 16) == bytes(16)
    assert len(pad(b"x" * 17, 16)) == 32


def test_keystate_chains_last_block_after_update() -> None:
    cbc = CBC(AES_CBC, bytes(range(16)))
    iv0 = bytes(16)
    a = Keystate(cbc, iv0)
    b = Keystate(cbc, iv0)
    ct1 = a.encrypt(b"message 1")
    assert a.iv == iv0  # not adopted before update_iv (message not yet sent)
    a.update_iv()
    assert a.iv == ct1[-16:]
    assert b.decrypt(ct1)[:9] == b"message 1"
    b.update_iv()
    # the reply goes back under the same chain
    ct2 = b.encrypt(b"message 2, a bit longer than one block")
    b.update_iv()
    assert a.decrypt(ct2).rstrip(b"\0") == b"message 2, a bit longer than one block"
    a.update_iv()
    assert a.iv == b.iv == ct2[-16:]
    # a rejected message does not move the chain when update_iv is not called
    c = a.clone()
    c.decrypt(bytes(32))
    assert c.iv == a.iv

"""RFC 2409 key derivation: structure checks (the strongSwan-captured vector is in
test_strongswan_vector.py)."""

from __future__ import annotations

import hashlib
import hmac

from ike.crypto import keymat


def _prf(k: bytes, d: bytes) -> bytes:
    return hmac.new(k, d, hashlib.sha1).digest()


def test_appendix_b_expansion() -> None:
    e = bytes(range(20))
    assert keymat.expand_key("sha1", e, 16) == e[:16]
    assert keymat.expand_key("sha1", e, 20) == e
    k1 = _prf(e, b"\x00")
    k2 = _prf(e, k1)
    assert keymat.expand_key("sha1", e, 32) == (k1 + k2)[:32]
    assert keymat.expand_key(2, e, 56) == (k1 + k2 + _prf(e, k2))[:56]


def test_qm_keymat_expansion_and_split() -> None:
    d = b"D" * 20
    ni, nr, spi_in, spi_out = b"i" * 16, b"r" * 16, b"\x11\x22\x33\x44", b"\x55\x66\x77\x88"
    seed = b"\x03" + spi_in + ni + nr
    k1 = _prf(d, seed)
    k2 = _prf(d, k1 + seed)
    assert keymat.qm_keymat("sha1", d, 3, spi_in, ni, nr, 36) == (k1 + k2)[:36]
    ck = keymat.qm_sa_keys("sha1", d, 3, spi_in, spi_out, ni, nr, 16, 20)
    assert ck.inbound.enc_key == k1[:16] and ck.inbound.auth_key == (k1 + k2)[16:36]
    assert ck.outbound.spi == spi_out and ck.outbound.enc_key != ck.inbound.enc_key
    # PFS puts g(qm)^xy in front of the seed
    g = b"G" * 128
    assert keymat.qm_keymat("sha1", d, 3, spi_in, ni, nr, 20, g) == _prf(d, g + seed)
    assert "enc=16 bytes" in repr(ck.inbound) and k1.hex() not in repr(ck.inbound)


def test_hashes_and_ivs() -> None:
    s, a = b"S" * 20, b"A" * 20
    assert keymat.hash_i(2, s, b"gi", b"gr", b"ci", b"cr", b"sa", b"id") == _prf(
        s, b"gigrcicrsaid")
    assert keymat.hash_r(2, s, b"gi", b"gr", b"ci", b"cr", b"sa", b"id") == _prf(
        s, b"grgicrcisaid")
    mid = 0x01020304
    assert keymat.qm_hash1(2, a, mid, b"rest") == _prf(a, b"\x01\x02\x03\x04rest")
    assert keymat.qm_hash2(2, a, mid, b"ni", b"rest") == _prf(a, b"\x01\x02\x03\x04nirest")
    assert keymat.qm_hash3(2, a, mid, b"ni", b"nr") == _prf(a, b"\x00\x01\x02\x03\x04ninr")
    assert keymat.info_hash(2, a, b"\x01\x02\x03\x04", b"N") == _prf(a, b"\x01\x02\x03\x04N")
    assert keymat.phase1_iv(2, b"x", b"y", 16) == hashlib.sha1(b"xy").digest()[:16]
    assert keymat.phase2_iv(2, b"I" * 16, mid, 16) == hashlib.sha1(
        b"I" * 16 + b"\x01\x02\x03\x04").digest()[:16]


def test_skeyid_family() -> None:
    ni, nr, gxy, ci, cr = b"n" * 16, b"m" * 16, b"z" * 256, b"c" * 8, b"d" * 8
    assert keymat.skeyid_psk(2, b"psk", ni, nr) == _prf(b"psk", ni + nr)
    assert keymat.skeyid_sig(2, ni, nr, gxy) == _prf(ni + nr, gxy)
    assert keymat.skeyid_pke(2, ni, nr, ci, cr) == _prf(hashlib.sha1(ni + nr).digest(), ci + cr)
    sk = b"k" * 20
    d, a, e = keymat.skeyid_dae(2, sk, gxy, ci, cr)
    assert d == _prf(sk, gxy + ci + cr + b"\0")
    assert a == _prf(sk, d + gxy + ci + cr + b"\1")
    assert e == _prf(sk, a + gxy + ci + cr + b"\2")
    p1 = keymat.Phase1Keys.derive(2, sk, gxy, ci, cr, b"gi", b"gr", 32, 16)
    assert p1.enc_key == keymat.expand_key(2, e, 32) and len(p1.iv) == 16
    assert e.hex() not in repr(p1)

"""PRF / HMAC vectors of isakmpd's regress suite (regress/sbin/isakmpd/hmac and prf).

Source: OpenBSD regress/sbin/isakmpd/hmac/hmactest.c and prf/prftest.c, which
take them from RFC 2202 (HMAC-MD5 / HMAC-SHA1 test cases 1, 2 and 7); the
SHA2 cases are RFC 4231 test case 2.
"""

from __future__ import annotations

import pytest

from ike.crypto.prf import HASHES, PRFError, get_hash, hash_data, prf

ISAKMPD_VECTORS = [
    ("md5", b"\x0b" * 16, b"Hi There", "9294727a3638bb1c13f48ef8158bfc9d"),
    ("md5", b"Jefe", b"what do ya want for nothing?", "750c783e6ab0b503eaa86e310a5db738"),
    ("sha1", b"\x0b" * 20, b"Hi There", "b617318655057264e28bc0b6fb378c8ef146be00"),
    ("sha1", b"Jefe", b"what do ya want for nothing?",
     "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
    # prftest.c: a key longer than the HMAC block size
    ("sha1", b"Bloody long key, this one, eben longer than the blocksize of ordinary keyed "
             b"HMAC functions", b"what do ya want for nothing?",
     "52ca5fbcd7d4821bc6bf8b6e95e131109dff901b"),
]

# RFC 4231 test case 2 (key "Jefe")
RFC4231_TC2 = {
    "sha256": "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    "sha384": "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e"
              "8e2240ca5e69e2c78b3239ecfab21649",
    "sha512": "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
              "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
}


@pytest.mark.parametrize(("h", "key", "data", "want"), ISAKMPD_VECTORS)
def test_isakmpd_regress_hmac(h: str, key: bytes, data: bytes, want: str) -> None:
    assert prf(h, key, data).hex() == want
    assert get_hash(h).prf(key, data).hex() == want


@pytest.mark.parametrize(("h", "want"), sorted(RFC4231_TC2.items()))
def test_rfc4231_sha2(h: str, want: str) -> None:
    assert prf(h, b"Jefe", b"what do ya want for nothing?").hex() == want


def test_lookup_by_ike_id_and_names() -> None:
    assert [h.ike_id for h in HASHES] == [1, 2, 4, 5, 6]
    assert get_hash(2) is get_hash("SHA") is get_hash("sha1") is get_hash("SHA1")
    assert get_hash(4) is get_hash("SHA2_256") is get_hash("sha2-256")
    assert get_hash("MD5").digest_size == 16
    assert hash_data(1, b"abc").hex() == "900150983cd24fb0d6963f7d28e17f72"


@pytest.mark.parametrize("bad", [0, 3, 7, "tiger", "whirlpool"])
def test_unknown_hash_is_a_prf_error(bad: int | str) -> None:
    with pytest.raises(PRFError, match="unsupported hash"):
        prf(bad, b"k", b"d")

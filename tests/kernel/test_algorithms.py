"""The IKEv1 -> XFRM algorithm table against the RFC key sizes and the key rules."""

from __future__ import annotations

import pytest

from ike.doi.constants import AhTransformId
from ike.doi.constants import AuthAlgorithm as Auth
from ike.doi.constants import EspTransformId as Esp
from ike.kernel import algorithms as alg


@pytest.mark.parametrize(("transform", "key_length", "nbytes"), [
    (Esp.TRIPLEDES, None, 24),
    (Esp.AES, None, 16), (Esp.AES, 192, 24), (Esp.AES, 256, 32),
    (Esp.AES_CTR, 128, 20), (Esp.AES_CTR, 256, 36),          # RFC 3686 nonce
    (Esp.AES_GCM_16, None, 20), (Esp.AES_GCM_8, 256, 36),    # RFC 4106 salt
    (Esp.AES_CCM_12, 128, 19),                                    # RFC 4309 salt
    (Esp.AES_GMAC, 192, 28),                            # RFC 4543 salt
    (Esp.NULL, None, 0), (Esp.CAST, None, 16), (Esp.BLOWFISH, 448, 56),
])
def test_enc_key_bytes_include_salt(transform: int, key_length: int | None, nbytes: int) -> None:
    assert alg.esp_enc_key_bytes(transform, key_length) == nbytes


def test_bad_key_length_and_unknown_ids() -> None:
    with pytest.raises(alg.AlgorithmError, match="key length 100 not allowed for AES"):
        alg.esp_enc_key_bytes(Esp.AES, 100)
    with pytest.raises(alg.AlgorithmError):
        alg.enc_alg(99)
    with pytest.raises(alg.AlgorithmError):
        alg.auth_alg(99)


def test_sha2_truncation_rfc4868_and_names() -> None:
    assert [alg.auth_alg(a).trunc_bits for a in (Auth.HMAC_SHA2_256, Auth.HMAC_SHA2_384,
                                                 Auth.HMAC_SHA2_512)] == [128, 192, 256]
    assert alg.auth_alg(Auth.HMAC_SHA).trunc_bits == 96
    assert alg.auth_key_bytes(Auth.HMAC_SHA2_256) == 32 and alg.auth_key_bytes(None) == 0
    gcm = alg.enc_alg(Esp.AES_GCM_16)
    assert gcm.aead and gcm.xfrm_name == "rfc4106(gcm(aes))" and gcm.icv_bits == 128
    assert [alg.enc_alg(t).icv_bits for t in (Esp.AES_GCM_8, Esp.AES_GCM_12)] == [64, 96]
    assert alg.enc_alg(Esp.AES).xfrm_name == "cbc(aes)"
    assert alg.AH_AUTH[AhTransformId.SHA2_256] == Auth.HMAC_SHA2_256

"""IPsec DOI (RFC 2407) transforms and attributes -> Linux XFRM algorithms, as data.

Key rules (reference/kernel.md section 3): the encryption part of KEYMAT goes to the kernel as
one blob *including* the salt/nonce for CTR (4 bytes), GCM and GMAC (4) and CCM (3), and its
``alg_key_len`` counts those bits too; SHA-2 HMACs are truncated per RFC 4868 (128/192/256 bits)
and are therefore always sent with an explicit truncation (XFRMA_ALG_AUTH_TRUNC), never with
the kernel's default (96 bits for hmac(sha256)).
"""

from __future__ import annotations

from dataclasses import dataclass

from ike.doi.constants import AhTransformId, AuthAlgorithm, EspTransformId, IpcompTransformId


@dataclass(frozen=True)
class EncAlg:
    """One ESP cipher: kernel name, whether it is an AEAD, key sizes (bits, without salt)."""

    xfrm_name: str
    aead: bool
    default_bits: int
    allowed_bits: tuple[int, ...]
    salt_bytes: int = 0
    icv_bits: int = 0


@dataclass(frozen=True)
class AuthAlg:
    """One integrity algorithm: kernel name, key bytes, ICV truncation in bits."""

    xfrm_name: str
    key_bytes: int
    trunc_bits: int


_AES = (128, 192, 256)
ENC_ALGS: dict[int, EncAlg] = {
    EspTransformId.DES: EncAlg("cbc(des)", False, 64, (64,)),
    EspTransformId.TRIPLEDES: EncAlg("cbc(des3_ede)", False, 192, (192,)),
    EspTransformId.CAST: EncAlg("cbc(cast5)", False, 128, tuple(range(40, 129, 8))),
    EspTransformId.BLOWFISH: EncAlg("cbc(blowfish)", False, 128, tuple(range(40, 449, 8))),
    EspTransformId.NULL: EncAlg("ecb(cipher_null)", False, 0, (0,)),
    EspTransformId.AES: EncAlg("cbc(aes)", False, 128, _AES),
    EspTransformId.AES_CTR: EncAlg("rfc3686(ctr(aes))", False, 128, _AES, salt_bytes=4),
    EspTransformId.AES_CCM_8: EncAlg("rfc4309(ccm(aes))", True, 128, _AES, 3, 64),
    EspTransformId.AES_CCM_12: EncAlg("rfc4309(ccm(aes))", True, 128, _AES, 3, 96),
    EspTransformId.AES_CCM_16: EncAlg("rfc4309(ccm(aes))", True, 128, _AES, 3, 128),
    EspTransformId.AES_GCM_8: EncAlg("rfc4106(gcm(aes))", True, 128, _AES, 4, 64),
    EspTransformId.AES_GCM_12: EncAlg("rfc4106(gcm(aes))", True, 128, _AES, 4, 96),
    EspTransformId.AES_GCM_16: EncAlg("rfc4106(gcm(aes))", True, 128, _AES, 4, 128),
    EspTransformId.CAMELLIA: EncAlg("cbc(camellia)", False, 128, _AES),
    EspTransformId.AES_GMAC: EncAlg("rfc4543(gcm(aes))", True, 128, _AES, 4, 128),
}

AUTH_ALGS: dict[int, AuthAlg] = {
    AuthAlgorithm.HMAC_MD5: AuthAlg("hmac(md5)", 16, 96),
    AuthAlgorithm.HMAC_SHA: AuthAlg("hmac(sha1)", 20, 96),
    AuthAlgorithm.HMAC_SHA2_256: AuthAlg("hmac(sha256)", 32, 128),
    AuthAlgorithm.HMAC_SHA2_384: AuthAlg("hmac(sha384)", 48, 192),
    AuthAlgorithm.HMAC_SHA2_512: AuthAlg("hmac(sha512)", 64, 256),
    AuthAlgorithm.HMAC_RIPEMD: AuthAlg("hmac(rmd160)", 20, 96),
    AuthAlgorithm.AES_XCBC_MAC: AuthAlg("xcbc(aes)", 16, 96),
}

#: AH transform -> the Authentication Algorithm it implies.
AH_AUTH: dict[int, int] = {
    AhTransformId.MD5: AuthAlgorithm.HMAC_MD5,
    AhTransformId.SHA: AuthAlgorithm.HMAC_SHA,
    AhTransformId.SHA2_256: AuthAlgorithm.HMAC_SHA2_256,
    AhTransformId.SHA2_384: AuthAlgorithm.HMAC_SHA2_384,
    AhTransformId.SHA2_512: AuthAlgorithm.HMAC_SHA2_512,
    AhTransformId.RIPEMD: AuthAlgorithm.HMAC_RIPEMD,
    AhTransformId.AES_XCBC_MAC: AuthAlgorithm.AES_XCBC_MAC,
}

COMP_ALGS: dict[int, str] = {
    IpcompTransformId.DEFLATE: "deflate",
    IpcompTransformId.LZS: "lzs",
}


class AlgorithmError(ValueError):
    """A transform, attribute or key does not map onto the kernel's algorithms."""


def enc_alg(transform_id: int) -> EncAlg:
    """The kernel cipher for an ESP transform."""
    try:
        return ENC_ALGS[transform_id]
    except KeyError:
        raise AlgorithmError(f"ESP transform {transform_id} has no kernel cipher") from None


def auth_alg(auth: int) -> AuthAlg:
    """The kernel integrity algorithm for an Authentication Algorithm attribute value."""
    try:
        return AUTH_ALGS[auth]
    except KeyError:
        raise AlgorithmError(f"authentication algorithm {auth} has no kernel algorithm") from None


def esp_enc_key_bytes(transform_id: int, key_length: int | None = None) -> int:
    """Bytes of KEYMAT the ESP cipher takes, salt or nonce included (isakmpd's
    ``ipsec_esp_enckeylength``); ``key_length`` is the Key Length attribute in bits."""
    alg = enc_alg(transform_id)
    bits = alg.default_bits if key_length is None else key_length
    if bits not in alg.allowed_bits:
        raise AlgorithmError(
            f"key length {bits} not allowed for {EspTransformId(transform_id).name}"
            f" (allowed: {', '.join(map(str, alg.allowed_bits))})"
        )
    return bits // 8 + alg.salt_bytes


def auth_key_bytes(auth: int | None) -> int:
    """Bytes of KEYMAT the integrity algorithm takes (0 when there is none)."""
    return 0 if auth is None else auth_alg(auth).key_bytes

"""IKEv1 key derivation and authentication hashes (RFC 2409 sections 5, 5.5, 5.7, app. B).

Notation follows RFC 2409: ``Ni_b``/``Nr_b`` are nonce payload bodies,
``g^xy`` the DH shared secret, ``CKY-I``/``CKY-R`` the cookies, ``SAi_b`` the
whole initiator SA payload body, ``IDii_b``/``IDir_b`` the ID payload bodies.
The hash argument is anything :func:`ike.crypto.prf.get_hash` accepts (the HMAC functions name
it through ``prf.prf`` or ``prf.hashlib_name``: one dict lookup for the usual keys).
"""

from __future__ import annotations

from typing import NamedTuple

from ike.crypto.prf import Hash, HashName, get_hash, hashlib_name, hmac_digest, prf

__all__ = [
    "ChildKeys",
    "Phase1Keys",
    "SAKeys",
    "expand_key",
    "hash_i",
    "hash_r",
    "info_hash",
    "message_id_bytes",
    "natd_hash",
    "phase1_iv",
    "phase2_iv",
    "qm_hash1",
    "qm_hash2",
    "qm_hash3",
    "qm_keymat",
    "qm_sa_keys",
    "skeyid_dae",
    "skeyid_pke",
    "skeyid_psk",
    "skeyid_sig",
]


def message_id_bytes(message_id: int | bytes) -> bytes:
    """The 4-byte network-order M-ID as it appears in the ISAKMP header."""
    if isinstance(message_id, bytes):
        if len(message_id) != 4:
            raise ValueError("message ID must be 4 bytes")
        return message_id
    return (message_id & 0xFFFFFFFF).to_bytes(4, "big")


# ---------------------------------------------------------------- Phase 1


def skeyid_psk(h: HashName, psk: bytes, ni_b: bytes, nr_b: bytes) -> bytes:
    """SKEYID for pre-shared keys: prf(pre-shared-key, Ni_b | Nr_b)."""
    return prf(h, psk, ni_b + nr_b)


def skeyid_sig(h: HashName, ni_b: bytes, nr_b: bytes, gxy: bytes) -> bytes:
    """SKEYID for signatures: prf(Ni_b | Nr_b, g^xy)."""
    return prf(h, ni_b + nr_b, gxy)


def skeyid_pke(h: HashName, ni_b: bytes, nr_b: bytes, cky_i: bytes, cky_r: bytes) -> bytes:
    """SKEYID for public key encryption: prf(hash(Ni_b | Nr_b), CKY-I | CKY-R)."""
    hh = get_hash(h)
    return hmac_digest(hh.digest(ni_b + nr_b), cky_i + cky_r, hh.name)


def skeyid_dae(
    h: HashName, skeyid: bytes, gxy: bytes, cky_i: bytes, cky_r: bytes
) -> tuple[bytes, bytes, bytes]:
    """(SKEYID_d, SKEYID_a, SKEYID_e) of RFC 2409 section 5."""
    name = hashlib_name(h)
    tail = gxy + cky_i + cky_r
    d = hmac_digest(skeyid, tail + b"\x00", name)
    a = hmac_digest(skeyid, d + tail + b"\x01", name)
    e = hmac_digest(skeyid, a + tail + b"\x02", name)
    return d, a, e


def expand_key(h: HashName, skeyid_e: bytes, length: int) -> bytes:
    """The Phase 1 cipher key of ``length`` bytes (RFC 2409 appendix B).

    When SKEYID_e is long enough its leading bytes are the key; otherwise
    Ka = K1 | K2 | ... with K1 = prf(SKEYID_e, 0) and Kn = prf(SKEYID_e, Kn-1).
    """
    if len(skeyid_e) >= length:
        return skeyid_e[:length]
    name = hashlib_name(h)
    k = hmac_digest(skeyid_e, b"\x00", name)
    out = k
    while len(out) < length:
        k = hmac_digest(skeyid_e, k, name)
        out += k
    return out[:length]


def phase1_iv(h: HashName, gxi: bytes, gxr: bytes, block_size: int) -> bytes:
    """The first Phase 1 IV: hash(g^xi | g^xr) truncated to the cipher block size."""
    return get_hash(h).digest(gxi + gxr)[:block_size]


def phase2_iv(
    h: HashName, last_phase1_iv: bytes, message_id: int | bytes, block_size: int
) -> bytes:
    """Quick Mode / Informational IV: hash(last Phase 1 CBC block | M-ID), truncated.

    ``last_phase1_iv`` is the ISAKMP SA's current IV (isakmpd: the keystate's
    ``riv``), i.e. the last cipher block of the last Phase 1 message.
    """
    return get_hash(h).digest(last_phase1_iv + message_id_bytes(message_id))[:block_size]


def hash_i(
    h: HashName, skeyid: bytes, gxi: bytes, gxr: bytes, cky_i: bytes, cky_r: bytes,
    sai_b: bytes, idii_b: bytes,
) -> bytes:
    """HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)."""
    return prf(h, skeyid, gxi + gxr + cky_i + cky_r + sai_b + idii_b)


def hash_r(
    h: HashName, skeyid: bytes, gxi: bytes, gxr: bytes, cky_i: bytes, cky_r: bytes,
    sai_b: bytes, idir_b: bytes,
) -> bytes:
    """HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)."""
    return prf(h, skeyid, gxr + gxi + cky_r + cky_i + sai_b + idir_b)


def natd_hash(h: HashName, cky_i: bytes, cky_r: bytes, address: bytes, port: int) -> bytes:
    """NAT-D payload data: HASH(CKY-I | CKY-R | IP | Port) (RFC 3947 section 3.2).

    ``address`` is the packed 4- or 16-byte IP address; the hash is the
    negotiated hash itself, not the PRF.
    """
    return get_hash(h).digest(cky_i + cky_r + address + port.to_bytes(2, "big"))


class Phase1Keys(NamedTuple):
    """Everything Phase 1 derives: the SKEYID family, the cipher key and first IV.

    The key records are NamedTuples: immutable like frozen dataclasses, built without a
    Python __init__ that sets each field through object.__setattr__ (once per handshake for
    this one, per Quick Mode for SAKeys and ChildKeys)."""

    skeyid: bytes
    skeyid_d: bytes
    skeyid_a: bytes
    skeyid_e: bytes
    enc_key: bytes
    iv: bytes

    @classmethod
    def derive(
        cls, h: HashName, skeyid: bytes, gxy: bytes, cky_i: bytes, cky_r: bytes,
        gxi: bytes, gxr: bytes, key_length: int, block_size: int,
    ) -> Phase1Keys:
        """Derive SKEYID_d/_a/_e, Ka (``key_length`` bytes) and the first IV from SKEYID."""
        hh = get_hash(h)
        d, a, e = skeyid_dae(hh, skeyid, gxy, cky_i, cky_r)
        return cls(skeyid, d, a, e, expand_key(hh, e, key_length),
                   phase1_iv(hh, gxi, gxr, block_size))

    def __repr__(self) -> str:  # never show secrets in logs
        return f"Phase1Keys(enc_key={len(self.enc_key)} bytes, iv={len(self.iv)} bytes)"


# ---------------------------------------------------------------- Phase 2 / Informational


def qm_hash1(h: HashName, skeyid_a: bytes, message_id: int | bytes, rest: bytes) -> bytes:
    """QM HASH(1) = prf(SKEYID_a, M-ID | SA | Ni [| KE] [| IDci | IDcr]).

    ``rest`` is the message body after the HASH payload, payload headers included.
    """
    return prf(h, skeyid_a, message_id_bytes(message_id) + rest)


def qm_hash2(
    h: HashName, skeyid_a: bytes, message_id: int | bytes, ni_b: bytes, rest: bytes
) -> bytes:
    """QM HASH(2) = prf(SKEYID_a, M-ID | Ni_b | SA | Nr [| KE] [| IDci | IDcr])."""
    return prf(h, skeyid_a, message_id_bytes(message_id) + ni_b + rest)


def qm_hash3(
    h: HashName, skeyid_a: bytes, message_id: int | bytes, ni_b: bytes, nr_b: bytes
) -> bytes:
    """QM HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b)."""
    return prf(h, skeyid_a, b"\x00" + message_id_bytes(message_id) + ni_b + nr_b)


def info_hash(h: HashName, skeyid_a: bytes, message_id: int | bytes, rest: bytes) -> bytes:
    """Informational HASH(1) = prf(SKEYID_a, M-ID | N/D) (RFC 2409 section 5.7)."""
    return prf(h, skeyid_a, message_id_bytes(message_id) + rest)


def qm_keymat(
    h: HashName, skeyid_d: bytes, protocol: int, spi: bytes, ni_b: bytes, nr_b: bytes,
    length: int, gqmxy: bytes = b"",
) -> bytes:
    """KEYMAT for one SA (RFC 2409 section 5.5), expanded to ``length`` bytes.

    K1 = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b),
    Kn = prf(SKEYID_d, Kn-1 | [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b);
    KEYMAT = K1 | K2 | ...  ``gqmxy`` is empty without PFS.
    """
    name = hashlib_name(h)
    seed = gqmxy + bytes((protocol,)) + spi + ni_b + nr_b
    k = hmac_digest(skeyid_d, seed, name)
    out = k
    while len(out) < length:
        k = hmac_digest(skeyid_d, k + seed, name)
        out += k
    return out[:length]


class SAKeys(NamedTuple):
    """The keys of one IPsec SA: cipher key first, then the integrity key."""

    spi: bytes
    enc_key: bytes
    auth_key: bytes

    def __repr__(self) -> str:  # never show secrets in logs
        return (f"SAKeys(spi={self.spi.hex()}, enc={len(self.enc_key)} bytes, "
                f"auth={len(self.auth_key)} bytes)")


class ChildKeys(NamedTuple):
    """Both directions of one protocol of a Quick Mode SA bundle."""

    protocol: int
    inbound: SAKeys
    outbound: SAKeys


def qm_sa_keys(
    h: HashName, skeyid_d: bytes, protocol: int, spi_in: bytes, spi_out: bytes,
    ni_b: bytes, nr_b: bytes, enc_len: int, auth_len: int, gqmxy: bytes = b"",
) -> ChildKeys:
    """Split KEYMAT per direction for one protocol (ESP 3, AH 2, IPCOMP 4).

    ``spi_in`` is the SPI we chose (the peer sends to it), ``spi_out`` the one
    the peer chose.  Each SA's KEYMAT uses its own SPI; Ni_b | Nr_b keep the
    initiator-then-responder order in both directions.  The cipher key comes
    first in KEYMAT, then the authentication key (RFC 2407 / isakmpd).
    """
    hh: Hash = get_hash(h)
    total = enc_len + auth_len
    km_in = qm_keymat(hh, skeyid_d, protocol, spi_in, ni_b, nr_b, total, gqmxy)
    km_out = qm_keymat(hh, skeyid_d, protocol, spi_out, ni_b, nr_b, total, gqmxy)
    return ChildKeys(
        protocol,
        SAKeys(spi_in, km_in[:enc_len], km_in[enc_len:]),
        SAKeys(spi_out, km_out[:enc_len], km_out[enc_len:]),
    )

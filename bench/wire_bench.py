"""wire_bench.py - codec and key-derivation speed, each beside its floor in the same run.

    .venv/bin/python bench/wire_bench.py [SECONDS_PER_FIGURE]   (default 0.5)

Prints ``name: value`` lines:

* ``mm1_codec_msgs_per_s``: Message.decode + encode of a real Main Mode
  message 1 (strongSwan's, from tests/crypto/vectors), beside
  ``mm1_walk_msgs_per_s``, a bare struct walk over the same payload chain
  (the least any Python decoder must do).
* ``qm_codec_msgs_per_s``: Message.decode of an encrypted Quick Mode message
  plus decode_payloads/encode_payloads of its decrypted body (HASH SA Nonce
  KE ID ID), beside ``qm_walk_msgs_per_s``.
* ``p1p2_derivation_ms``: the responder's cryptography for Main Mode PSK
  (MODP-2048) + Quick Mode without PFS through ike.crypto: DH key pair and
  g^xy, SKEYID family, Ka, IVs, HASH_I check, HASH_R, CBC of MM 5/6 and
  QM 1/2/3, QM HASH(1)(2)(3), KEYMAT for both SAs; beside
  ``p1p2_floor_ms``, the same primitive calls (cryptography DH and AES,
  hmac/hashlib) made directly with no ike.crypto code around them.
* single operations: ``dh14_generate_ms``/``dh14_shared_ms`` beside
  ``dh14_openssl_generate_ms``/``dh14_openssl_exchange_ms`` and the
  ``dh14_pow_*`` alternative, ``ecp19_*``, and ``rsa2048_sign_raw_ms`` (no
  DigestInfo: libcrypto's EVP_PKEY_sign through ctypes) and
  ``rsa2048_sign_python_ms`` (the CRT fallback) beside
  ``rsa2048_sign_openssl_ms`` (cryptography's sign, with a DigestInfo).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric import rsa as crsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.utils import CryptographyDeprecationWarning

from ike.crypto import dh, keymat, rsa
from ike.crypto.cipher import AES_CBC, CBC, Keystate
from ike.crypto.rand import RandomSource
from ike.wire import KeyExchange, Message, Nonce, Payload, decode_payloads, encode_payloads

with warnings.catch_warnings():
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from cryptography.hazmat.primitives.asymmetric import dh as ffdh

    PN, PUBN, PRIVN = ffdh.DHParameterNumbers, ffdh.DHPublicNumbers, ffdh.DHPrivateNumbers

FIXTURE = Path(__file__).resolve().parent.parent / "tests/crypto/vectors/strongswan_mm_psk.json"


def per_second(fn: Callable[[], object], secs: float) -> float:
    """Calls per second of ``fn`` over about ``secs`` seconds."""
    n, t0 = 0, time.perf_counter()
    while True:
        for _ in range(20):
            fn()
        n += 20
        dt = time.perf_counter() - t0
        if dt >= secs:
            return n / dt


def ms(fn: Callable[[], object], secs: float) -> float:
    """Milliseconds per call of ``fn``."""
    return 1000.0 / per_second(fn, secs)


def walk(first: int, body: bytes) -> int:
    """Bare generic-header walk (the anchor for the codec figures)."""
    pos, nxt, n = 0, first, 0
    unpack = struct.Struct(">BBH").unpack_from
    while nxt:
        nxt, _, length = unpack(body, pos)
        pos += length
        n += 1
    return n


def main() -> None:
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
    fx = json.loads(FIXTURE.read_text())
    msgs = [bytes.fromhex(m["data"]) for m in fx["messages"]]
    out: dict[str, float] = {}

    # ---------------------------------------------------------- codec
    mm1 = msgs[0]
    out["mm1_codec_msgs_per_s"] = per_second(lambda: Message.decode(mm1).encode(), secs)
    out["mm1_walk_msgs_per_s"] = per_second(lambda: walk(mm1[16], mm1[28:]), secs)

    # decrypt QM 1 once with the keys of the capture (see test_strongswan_vector.py)
    qm_plain = _qm1_plaintext(fx, msgs)
    qm = msgs[6]
    first = qm[16]

    def qm_codec() -> None:
        Message.decode(qm)
        encode_payloads(decode_payloads(first, qm_plain))

    out["qm_codec_msgs_per_s"] = per_second(qm_codec, secs)
    out["qm_walk_msgs_per_s"] = per_second(lambda: walk(first, qm_plain), secs)

    # ---------------------------------------------------------- derivation
    p1p2, floor = _derivations(msgs)
    out["p1p2_derivation_ms"] = ms(p1p2, secs)
    out["p1p2_floor_ms"] = ms(floor, secs)

    # ---------------------------------------------------------- single operations
    g14 = dh.group(14)
    assert isinstance(g14, dh.MODPGroup)
    rnd = RandomSource()
    priv, _ = g14.generate(rnd)
    _, peer_pub = g14.generate(rnd)
    out["dh14_generate_ms"] = ms(lambda: g14.generate(rnd), secs)
    out["dh14_shared_ms"] = ms(lambda: g14.shared_secret(priv, peer_pub), secs)
    pn = PN(g14.p, 2)
    params = pn.parameters()
    okey = params.generate_private_key()
    opeer = PUBN(int.from_bytes(peer_pub, "big"), pn).public_key()
    out["dh14_openssl_generate_ms"] = ms(
        lambda: params.generate_private_key().public_key().public_numbers(), secs)
    out["dh14_openssl_exchange_ms"] = ms(lambda: okey.exchange(opeer), secs)
    x = priv.secret
    out["dh14_pow_generate_ms"] = ms(lambda: pow(2, x, g14.p), secs)

    g19 = dh.group(19)
    p19, _ = g19.generate(rnd)
    _, peer19 = g19.generate(rnd)
    out["ecp19_generate_ms"] = ms(lambda: g19.generate(rnd), secs)
    out["ecp19_shared_ms"] = ms(lambda: g19.shared_secret(p19, peer19), secs)
    k19 = ec.generate_private_key(ec.SECP256R1())
    pk19 = ec.generate_private_key(ec.SECP256R1()).public_key()
    out["ecp19_openssl_exchange_ms"] = ms(lambda: k19.exchange(ec.ECDH(), pk19), secs)

    key = crsa.generate_private_key(public_exponent=65537, key_size=2048)
    h = bytes(20)
    sig = rsa.sign(key, h)
    out["rsa2048_sign_raw_ms"] = ms(lambda: rsa.sign(key, h), secs)
    out["rsa2048_sign_python_ms"] = ms(lambda: rsa.sign(key, h, use_openssl=False), secs)
    out["rsa2048_sign_openssl_ms"] = ms(
        lambda: key.sign(h, padding.PKCS1v15(), hashes.SHA1()), secs)
    out["rsa2048_verify_raw_ms"] = ms(lambda: rsa.verify(key.public_key(), h, sig), secs)

    for name, value in out.items():
        print(f"{name}: {value:.4g}")


def _qm1_plaintext(fx: dict[str, object], msgs: list[bytes]) -> bytes:
    """The decrypted body of the captured QM 1 (keys recomputed as in the crypto tests)."""
    ini = fx["initiator"]
    assert isinstance(ini, dict)
    gxy = bytes.fromhex(ini["shared Diffie Hellman secret"][0])
    p3 = decode_payloads(msgs[2][16], msgs[2][28:])
    p4 = decode_payloads(msgs[3][16], msgs[3][28:])
    ni, nr = _data(p3, Nonce), _data(p4, Nonce)
    gxi, gxr = _data(p3, KeyExchange), _data(p4, KeyExchange)
    cky_i, cky_r = msgs[3][:8], msgs[3][8:16]
    skeyid = keymat.skeyid_psk("sha1", str(fx["psk"]).encode(), ni, nr)
    k = keymat.Phase1Keys.derive("sha1", skeyid, gxy, cky_i, cky_r, gxi, gxr, 32, 16)
    ks = Keystate(CBC(AES_CBC, k.enc_key), k.iv)
    for m in msgs[4:6]:
        ks.decrypt(m[28:])
        ks.update_iv()
    mid = struct.unpack(">I", msgs[6][20:24])[0]
    ks.init_iv(keymat.phase2_iv("sha1", ks.iv, mid, 16))
    return ks.decrypt(msgs[6][28:])


def _data(payloads: list[Payload], kind: type[KeyExchange | Nonce]) -> bytes:
    """The data of the first KE or Nonce payload."""
    for p in payloads:
        if isinstance(p, kind):
            return p.data
    raise LookupError(kind.__name__)


def _derivations(msgs: list[bytes]) -> tuple[Callable[[], None], Callable[[], None]]:
    """(ike.crypto responder path, the same primitive calls made directly)."""
    rnd = RandomSource()
    g14 = dh.group(14)
    _, gxi = g14.generate(rnd)
    psk = b"kc2-test-psk-0123456789"
    ni, nr = rnd.bytes(16), rnd.bytes(16)
    cky_i, cky_r = rnd.bytes(8), rnd.bytes(8)
    sai_b, idii_b, idir_b = msgs[0][32:100], b"\x01\x11\x01\xf4\x0a\x5d\x00\x01", bytes(8)
    mm5_plain = bytes(80)
    qm_rest = bytes(304)
    mid = 0x12345678
    spi_i, spi_r = rnd.bytes(4), rnd.bytes(4)
    ni2, nr2 = rnd.bytes(16), rnd.bytes(16)

    def ours() -> None:
        priv, gxr = g14.generate(rnd)
        gxy = g14.shared_secret(priv, gxi)
        skeyid = keymat.skeyid_psk("sha1", psk, ni, nr)
        k = keymat.Phase1Keys.derive("sha1", skeyid, gxy, cky_i, cky_r, gxi, gxr, 16, 16)
        ks = Keystate(CBC(AES_CBC, k.enc_key), k.iv)
        ks.decrypt(ks.encrypt(mm5_plain))  # MM 5 in
        ks.update_iv()
        keymat.hash_i("sha1", skeyid, gxi, gxr, cky_i, cky_r, sai_b, idii_b)
        keymat.hash_r("sha1", skeyid, gxi, gxr, cky_i, cky_r, sai_b, idir_b)
        ks.encrypt(mm5_plain)  # MM 6 out
        ks.update_iv()
        q = ks.clone()
        q.init_iv(keymat.phase2_iv("sha1", ks.iv, mid, 16))
        q.decrypt(q.encrypt(qm_rest))  # QM 1 in
        keymat.qm_hash1("sha1", k.skeyid_a, mid, qm_rest)
        keymat.qm_hash2("sha1", k.skeyid_a, mid, ni2, qm_rest)
        q.encrypt(qm_rest)  # QM 2 out
        q.decrypt(q.encrypt(bytes(32)))  # QM 3 in
        keymat.qm_hash3("sha1", k.skeyid_a, mid, ni2, nr2)
        keymat.qm_sa_keys("sha1", k.skeyid_d, 3, spi_r, spi_i, ni2, nr2, 16, 20)

    pn = PN(dh.modp_prime(14), 2)
    gpub = PUBN(2, pn).public_key()
    peer = int.from_bytes(gxi, "big")
    sha1 = hashlib.sha1

    def prf(key: bytes, data: bytes) -> bytes:
        return hmac.digest(key, data, "sha1")

    def cbc(key: bytes, iv: bytes, data: bytes, enc: bool) -> bytes:
        c = Cipher(algorithms.AES(key), modes.CBC(iv))
        ctx = c.encryptor() if enc else c.decryptor()
        return ctx.update(data) + ctx.finalize()

    def floor() -> None:
        x = rnd.randbits(256) | (1 << 255)
        tmp = PRIVN(x, PUBN(2, pn)).private_key()
        y = int.from_bytes(tmp.exchange(gpub), "big")
        key = PRIVN(x, PUBN(y, pn)).private_key()
        gxy = key.exchange(PUBN(peer, pn).public_key())
        gxr = y.to_bytes(256, "big")
        skeyid = prf(psk, ni + nr)
        tail = gxy + cky_i + cky_r
        d = prf(skeyid, tail + b"\0")
        a = prf(skeyid, d + tail + b"\1")
        e = prf(skeyid, a + tail + b"\2")
        ka = prf(e, b"\0")[:16]
        iv = sha1(gxi + gxr).digest()[:16]
        c5 = cbc(ka, iv, mm5_plain, True)
        cbc(ka, iv, c5, False)
        prf(skeyid, gxi + gxr + cky_i + cky_r + sai_b + idii_b)
        prf(skeyid, gxr + gxi + cky_r + cky_i + sai_b + idir_b)
        c6 = cbc(ka, c5[-16:], mm5_plain, True)
        iv2 = sha1(c6[-16:] + mid.to_bytes(4, "big")).digest()[:16]
        c7 = cbc(ka, iv2, qm_rest, True)
        cbc(ka, iv2, c7, False)
        m = mid.to_bytes(4, "big")
        prf(a, m + qm_rest)
        prf(a, m + ni2 + qm_rest)
        c8 = cbc(ka, c7[-16:], qm_rest, True)
        c9 = cbc(ka, c8[-16:], bytes(32), True)
        cbc(ka, c8[-16:], c9, False)
        prf(a, b"\0" + m + ni2 + nr2)
        for spi in (spi_r, spi_i):
            seed = b"\x03" + spi + ni2 + nr2
            k1 = prf(d, seed)
            prf(d, k1 + seed)

    return ours, floor


if __name__ == "__main__":
    main()

"""pki_bench.py - the cost of authenticating a peer by certificate, beside its floor.

    .venv/bin/python bench/pki_bench.py [SECONDS_PER_FIGURE]   (default 0.5)

Prints ``name: value`` lines:

* ``auth_depth1_ms`` / ``auth_depth3_ms``: pki.authenticate_peer on a CERT payload whose chain
  has 1 or 3 CAs above the leaf, with a CRL per CA (chain building by cryptography's verifier,
  CRL, key usage and ID checks, principals and KeyNote chain assertions);
* ``floor_depth1_ms`` / ``floor_depth3_ms``: in the same run, only the signature checks the
  chain needs (verify_directly_issued_by per link, CRL signature per CA): no Python pki code
  can take less;
* ``store_load_ms``: Store.load over a directory tree with those CAs, certificates and CRLs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from pki import CertEncoding, Identity, IdType, Store, StoreConfig, authenticate_peer  # noqa: E402

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
PEER = Identity(IdType.IPV4_ADDR, bytes([192, 0, 2, 10]))


def per_call_ms(fn: Callable[[], object], seconds: float) -> float:
    fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return (time.perf_counter() - start) / n * 1000


Issuer = tuple[x509.Certificate, rsa.RSAPrivateKey]


def issue(cn: str, key: rsa.RSAPrivateKey, issuer: Issuer | None, ca: bool) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=365))
    )
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        san = x509.IPAddress(ipaddress.ip_address("192.0.2.10"))
        b = b.add_extension(x509.SubjectAlternativeName([san]), critical=False)
    return b.sign(issuer[1] if issuer else key, hashes.SHA256())


def crl_of(ca: x509.Certificate, key: rsa.RSAPrivateKey) -> x509.CertificateRevocationList:
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(NOW - dt.timedelta(days=1))
        .next_update(NOW + dt.timedelta(days=7))
        .sign(key, hashes.SHA256())
    )


def setup(depth: int, base: Path) -> tuple[Store, list[tuple[int, bytes]], Callable[[], None]]:
    keys = [
        rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(depth + 1)
    ]
    cas = [issue("CA 0", keys[0], None, True)]
    for i in range(1, depth):
        cas.append(issue(f"CA {i}", keys[i], (cas[-1], keys[i - 1]), True))
    leaf = issue("peer", keys[depth], (cas[-1], keys[depth - 1]), False)
    crls = [crl_of(c, k) for c, k in zip(cas, keys, strict=False)]
    for sub in ("ca", "certs", "crls"):
        (base / sub).mkdir(parents=True)
    (base / "ca" / "root.crt").write_bytes(cas[0].public_bytes(serialization.Encoding.PEM))
    for i, crl in enumerate(crls):
        (base / "crls" / f"{i}.crl").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    cfg = StoreConfig(
        ca_directory=str(base / "ca"),
        cert_directory=str(base / "certs"),
        crl_directory=str(base / "crls"),
    )
    payloads = [(int(CertEncoding.X509_SIG), c.public_bytes(serialization.Encoding.DER))
                for c in (leaf, *cas[1:])]  # fmt: skip
    chain = [leaf, *reversed(cas)]

    def floor() -> None:
        for child, parent in itertools.pairwise(chain):
            child.verify_directly_issued_by(parent)
        for ca, crl in zip(cas, crls, strict=False):
            key = ca.public_key()
            assert isinstance(key, rsa.RSAPublicKey) and crl.is_signature_valid(key)

    return Store.load(cfg), payloads, floor


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
    with tempfile.TemporaryDirectory() as tmp:
        for depth in (1, 3):
            store, payloads, floor = setup(depth, Path(tmp) / f"d{depth}")
            ms = per_call_ms(
                lambda s=store, p=payloads: authenticate_peer(s, PEER, p, now=NOW), seconds
            )
            print(f"auth_depth{depth}_ms: {ms:.3f}")
            print(f"floor_depth{depth}_ms: {per_call_ms(floor, seconds):.3f}")
        cfg = store.config
        print(f"store_load_ms: {per_call_ms(lambda: Store.load(cfg), seconds):.3f}")


if __name__ == "__main__":
    main()

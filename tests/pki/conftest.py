"""Test PKI material made at test time with cryptography (fast: a few shared 2048-bit keys)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from pki import Store, StoreConfig

NOW = dt.datetime(2026, 6, 1, 12, 0, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)

_KEYS: list[rsa.RSAPrivateKey] = []


def key(n: int) -> rsa.RSAPrivateKey:
    """The n-th shared test key (generated once per process)."""
    while len(_KEYS) <= n:
        _KEYS.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _KEYS[n]


def name(cn: str, org: str = "Example") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


@dataclass
class Issued:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


_serial = [0x1000]


def make_cert(
    subject: x509.Name,
    subject_key: rsa.RSAPrivateKey,
    issuer: Issued | None,
    *,
    ca: bool = False,
    san: Sequence[x509.GeneralName] = (),
    not_before: dt.datetime = NOW - 30 * DAY,
    not_after: dt.datetime = NOW + 365 * DAY,
    key_usage: x509.KeyUsage | None = None,
    serial: int | None = None,
) -> Issued:
    """A certificate signed by issuer (self-signed when issuer is None)."""
    if serial is None:
        _serial[0] += 1
        serial = _serial[0]
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(subject_key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        b = b.add_extension(
            key_usage
            or x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=False,
        )
    elif key_usage is not None:
        b = b.add_extension(key_usage, critical=False)
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
    signer = issuer.key if issuer else subject_key
    return Issued(b.sign(signer, hashes.SHA256()), subject_key)


def ip_san(addr: str) -> x509.GeneralName:
    return x509.IPAddress(ipaddress.ip_address(addr))


def make_crl(
    issuer: Issued,
    revoked: Sequence[int] = (),
    *,
    last: dt.datetime = NOW - DAY,
    next_update: dt.datetime = NOW + 7 * DAY,
    signer: rsa.RSAPrivateKey | None = None,
) -> x509.CertificateRevocationList:
    b = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(last)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(1), critical=False)
    )
    for s in revoked:
        b = b.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(s).revocation_date(last).build()
        )
    return b.sign(signer or issuer.key, hashes.SHA256())


@dataclass
class Dirs:
    """An /etc/isakmpd-like tree under tmp_path, with helpers to fill it."""

    root: Path
    accept_self_signed: bool = False
    config: StoreConfig = field(init=False)

    def __post_init__(self) -> None:
        for sub in ("ca", "certs", "crls", "private", "pubkeys", "keynote"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.config = StoreConfig(
            ca_directory=str(self.root / "ca"),
            cert_directory=str(self.root / "certs"),
            crl_directory=str(self.root / "crls"),
            private_key=str(self.root / "private" / "local.key"),
            private_key_directory=str(self.root / "private"),
            pubkey_directory=str(self.root / "pubkeys"),
            credential_directory=str(self.root / "keynote"),
            accept_self_signed=self.accept_self_signed,
        )

    def put(self, sub: str, fname: str, data: bytes, mode: int = 0o644) -> Path:
        path = self.root / sub / fname
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chmod(path, mode)
        return path

    def ca(self, issued: Issued, fname: str = "ca.crt") -> Path:
        return self.put("ca", fname, issued.pem)

    def crl(self, crl: x509.CertificateRevocationList, fname: str = "ca.crl") -> Path:
        return self.put("crls", fname, crl.public_bytes(serialization.Encoding.PEM))

    def private_key(
        self, k: rsa.RSAPrivateKey, fname: str = "local.key", mode: int = 0o600
    ) -> Path:
        pem = k.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        return self.put("private", fname, pem, mode)

    def store(self) -> Store:
        return Store.load(self.config)


@pytest.fixture
def dirs(tmp_path: Path) -> Dirs:
    return Dirs(tmp_path)


@pytest.fixture(scope="session")
def root_ca() -> Issued:
    return make_cert(name("Example Root CA"), key(0), None, ca=True)


class Kit:
    """The helpers above, handed to tests as a fixture (conftest modules are not importable)."""

    NOW = NOW
    DAY = DAY
    Issued = Issued
    Dirs = Dirs
    key = staticmethod(key)
    name = staticmethod(name)
    cert = staticmethod(make_cert)
    crl = staticmethod(make_crl)
    ip_san = staticmethod(ip_san)


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    return Kit

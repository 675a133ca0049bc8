"""A throw-away test CA and peer certificates, made at test time (reference/interop.md 5.5).

RSA-2048 CA (basicConstraints CA:TRUE critical, keyCertSign|cRLSign); per side an RSA-2048
certificate signed with SHA-256, CN and subjectAltName DNS:<side>.ki.test plus the side's IP
addresses, EKU serverAuth+clientAuth; PEM files for charon and our daemon, PKCS#12 for NSS.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .model import Pki

P12_PASSWORD = "ki-test"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "XX"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "isakmpd-py interop"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_pki(directory: Path, sides: dict[str, Sequence[str]]) -> dict[str, Pki]:
    """Write ca.pem and, for each side name (e.g. "a") with its IP addresses, <side>.pem,
    <side>.key and <side>.p12 into ``directory``; the :class:`Pki` of each side."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    later = now + datetime.timedelta(days=2)
    ca_key = _key()
    ca_name = _name("ki test CA")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(later)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False),
                         critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out = {}
    for side, addrs in sides.items():
        key = _key()
        fqdn = f"{side}.ki.test"
        san: list[x509.GeneralName] = [x509.DNSName(fqdn)]
        san += [x509.IPAddress(ipaddress.ip_address(a)) for a in addrs]
        cert = (x509.CertificateBuilder().subject_name(_name(fqdn)).issuer_name(ca_name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now).not_valid_after(later)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                               critical=True)
                .add_extension(x509.SubjectAlternativeName(san), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        cert_path, key_path, p12_path = (directory / f"{side}.pem", directory / f"{side}.key",
                                         directory / f"{side}.p12")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.TraditionalOpenSSL,
                                               serialization.NoEncryption()))
        key_path.chmod(0o600)
        p12_path.write_bytes(pkcs12.serialize_key_and_certificates(
            b"ki-own", key, cert, None,
            serialization.BestAvailableEncryption(P12_PASSWORD.encode())))
        out[side] = Pki(ca_path, cert_path, key_path, p12_path, P12_PASSWORD, fqdn)
    return out

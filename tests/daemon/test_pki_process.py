"""RSA signature authentication with X.509 certificates between two daemons: the child (in its
chroot when root) gets keys and verified peer keys from the privileged parent."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

ACCEPT_ALL = 'Authorizer: "POLICY"\nComment: accept every peer the PKI authenticated\n'


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kd"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])  # fmt: skip


def _cert(subject: str, key: rsa.RSAPrivateKey, issuer: str, issuer_key: rsa.RSAPrivateKey,
          ca: bool, san: str | None = None) -> x509.Certificate:  # fmt: skip
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]),
                                        critical=False)  # fmt: skip
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


def _rsa_conf(text: str, me: str, peer: str, pki: Path) -> str:
    text = re.sub(r"(?m)^Authentication=.*\n", f"ID=\t\t\t{me}-id\nRemote-ID=\t\t{peer}-id\n",
                  text)  # fmt: skip
    text = text.replace("AES-128-SHA-GRP14", "AES-128-SHA-GRP14-RSA_SIG")
    return text + (
        f"\n[{me}-id]\nID-type=\t\tFQDN\nName=\t\t\t{me}.example\n"
        f"\n[{peer}-id]\nID-type=\t\tFQDN\nName=\t\t\t{peer}.example\n"
        f"\n[X509-Certificates]\nCA-directory=\t\t{pki}/ca/\nCert-directory=\t\t{pki}/certs/\n"
        f"CRL-directory=\t\t{pki}/crls/\nPrivate-key=\t\t{pki}/private/local.key\n"
        f"Private-key-directory=\t{pki}/private/\n"
    )


def test_rsa_signatures_through_the_monitor(
    make_pair: Callable[..., Any], wait: Callable[..., bool]
) -> None:
    pair = make_pair(east_args=("-D", "5=50"))  # Sysdep: the monitor's debug lines
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = _cert("kd test CA", ca_key, "kd test CA", ca_key, ca=True)
    for proc, me, peer in ((pair.east, "east", "west"), (pair.west, "west", "east")):
        pki = proc.dir / "pki"
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = _cert(f"{me}.example", key, "kd test CA", ca_key, ca=False, san=f"{me}.example")
        _pem(pki / "ca" / "ca.crt", ca.public_bytes(serialization.Encoding.PEM))
        _pem(pki / "certs" / f"{me}.crt", cert.public_bytes(serialization.Encoding.PEM))
        (pki / "crls").mkdir()
        _pem(pki / "private" / "local.key", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()), 0o600)  # fmt: skip
        conf = proc.dir / "isakmpd.conf"
        conf.write_text(_rsa_conf(conf.read_text(), me, peer, pki))
        (proc.dir / "isakmpd.policy").write_text(ACCEPT_ALL)
    pair.negotiate()
    for proc in (pair.east, pair.west):
        assert "(Phase 2)" in proc.sas()
    # the parent read the key and verified the peer: inside the chroot the child could not
    log = pair.east.log()
    assert "monitor: child asks for local of east.example" in log, log  # key + certificates
    assert "monitor: child asks for peer_key of" in log
    assert "pki through the monitor" not in log + pair.west.log()

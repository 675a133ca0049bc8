"""isakmpd.8 "Setting up an IKE public key infrastructure", run with the openssl command line.

A CA, two peers (one certificate with an IPv4 subjectAltName, one with an FQDN), a revoked
third certificate and a CRL are made exactly as the man page says; the two peers' stores then
authenticate each other: certificate choice by CERTREQ, chain and CRL checks, the Phase 1 ID,
KeyNote principals equal to what openssl prints, and an IKEv1 RSA signature (ike.crypto.rsa, as
the engine combines them) made with one store's private key and checked with the other's result.
The man page's 1024-bit CA key is raised to 2048 bits: cryptography's verifier refuses smaller
RSA keys.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ike.crypto import rsa as ike_rsa
from pki import (
    CertEncoding,
    Identity,
    IdType,
    PKIError,
    Reason,
    Store,
    StoreConfig,
    authenticate_peer,
)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl(1)")

# The sections of OpenBSD's /etc/ssl/x509v3.cnf the man page uses.
X509V3_CNF = """\
CERTPATHLEN = 1
CERTUSAGE = digitalSignature,keyCertSign,cRLSign
EXTCERTUSAGE = serverAuth,clientAuth
CERTIP = 0.0.0.0
CERTFQDN = nohost.nodomain

[x509v3_CA]
basicConstraints = critical,CA:true,pathlen:$ENV::CERTPATHLEN
keyUsage = $ENV::CERTUSAGE

[x509v3_IPAddr]
subjectAltName = IP:$ENV::CERTIP
extendedKeyUsage = $ENV::EXTCERTUSAGE

[x509v3_FQDN]
subjectAltName = DNS:$ENV::CERTFQDN
extendedKeyUsage = $ENV::EXTCERTUSAGE
"""

# A minimal openssl-ca(1) setup, for `-revoke` and `-gencrl` ("see openssl(1) ... crl").
CA_CNF = """\
[ca]
default_ca = ca_default

[ca_default]
dir = .
database = index.txt
crlnumber = crlnumber
default_md = sha256
default_crl_days = 30
"""

A_ID = Identity(IdType.IPV4_ADDR, bytes([10, 0, 0, 1]))
B_ID = Identity(IdType.FQDN, b"somehost.somedomain")


def openssl(cwd: Path, *args: str, **env: str) -> str:
    done = subprocess.run(
        ["openssl", *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"openssl {' '.join(args)}: {done.stderr}"
    return done.stdout


def peer_tree(root: Path, name: str) -> StoreConfig:
    base = root / name
    for sub in ("ca", "certs", "crls", "private", "pubkeys", "keynote"):
        (base / sub).mkdir(parents=True)
    return StoreConfig(
        ca_directory=str(base / "ca"),
        cert_directory=str(base / "certs"),
        crl_directory=str(base / "crls"),
        private_key=str(base / "private" / "local.key"),
        private_key_directory=str(base / "private"),
        pubkey_directory=str(base / "pubkeys"),
        credential_directory=str(base / "keynote"),
    )


def make_peer(ca_dir: Path, cfg: StoreConfig, cn: str, ext: str, **env: str) -> Path:
    """Steps 2 and 3: a key and CSR for the peer, signed by the CA with a subjectAltName."""
    key = Path(cfg.private_key)
    openssl(ca_dir, "genrsa", "-out", str(key), "2048")
    key.chmod(0o600)
    csr = ca_dir / f"{cn}.csr"
    openssl(
        ca_dir,
        "req",
        "-new",
        "-key",
        str(key),
        "-out",
        str(csr),
        "-subj",
        f"/C=SE/O=Example/CN={cn}",
    )
    crt = ca_dir / f"{cn}.crt"
    openssl(
        ca_dir, "x509", "-req", "-days", "365", "-in", str(csr), "-CA", "ca.crt",
        "-CAkey", "private/ca.key", "-CAcreateserial", "-extfile", "x509v3.cnf",
        "-extensions", ext, "-out", str(crt), **env,
    )  # fmt: skip
    shutil.copy(crt, Path(cfg.cert_directory) / crt.name)
    shutil.copy(ca_dir / "ca.crt", Path(cfg.ca_directory) / "ca.crt")
    return crt


@pytest.fixture(scope="module")
def manpage(tmp_path_factory):
    root = tmp_path_factory.mktemp("manpage")
    ca_dir = root / "ssl"
    (ca_dir / "private").mkdir(parents=True)
    (ca_dir / "x509v3.cnf").write_text(X509V3_CNF)
    # Step 1: our own CA.
    openssl(ca_dir, "genrsa", "-out", "private/ca.key", "2048")
    openssl(ca_dir, "req", "-new", "-key", "private/ca.key", "-out", "private/ca.csr",
            "-subj", "/C=SE/O=Example/CN=Example CA")  # fmt: skip
    openssl(
        ca_dir, "x509", "-req", "-days", "365", "-in", "private/ca.csr", "-signkey",
        "private/ca.key", "-extfile", "x509v3.cnf", "-extensions", "x509v3_CA", "-out", "ca.crt",
    )  # fmt: skip
    a, b, c = (peer_tree(root, n) for n in ("a", "b", "c"))
    a_crt = make_peer(ca_dir, a, "10.0.0.1", "x509v3_IPAddr", CERTIP="10.0.0.1")
    b_crt = make_peer(
        ca_dir, b, "somehost.somedomain", "x509v3_FQDN", CERTFQDN="somehost.somedomain"
    )
    c_crt = make_peer(ca_dir, c, "10.0.0.3", "x509v3_IPAddr", CERTIP="10.0.0.3")
    # Revocation: a CRL naming the third certificate, installed in every crls/ directory.
    (ca_dir / "ca.cnf").write_text(CA_CNF)
    (ca_dir / "index.txt").write_text("")
    (ca_dir / "crlnumber").write_text("01\n")
    ca_args = ("-config", "ca.cnf", "-keyfile", "private/ca.key", "-cert", "ca.crt")
    openssl(ca_dir, "ca", *ca_args, "-revoke", str(c_crt))
    openssl(ca_dir, "ca", *ca_args, "-gencrl", "-out", "ca.crl")
    for cfg in (a, b, c):
        shutil.copy(ca_dir / "ca.crl", Path(cfg.crl_directory) / "ca.crl")
    return {"a": a, "b": b, "c": c, "a_crt": a_crt, "b_crt": b_crt, "c_crt": c_crt}


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def exchange_auth(mine: Store, local: Identity, theirs: Store, *, claimed: Identity | None = None):
    """What two engines do with RSA signatures: send CERT + SIG, check them on the other side."""
    key = mine.private_key(local)
    own = mine.own_certificate(local, theirs.certreq_authorities(), key)
    assert own is not None
    hash_i = hashlib.sha1(b"HASH_I input").digest()
    sig = ike_rsa.sign(key, hash_i)
    payloads = [(CertEncoding.X509_SIG, der) for der in own.payloads()]
    peer = authenticate_peer(theirs, claimed or local, payloads, now=now())
    assert ike_rsa.verify(peer.public_key, hash_i, sig)
    return peer


def subject_compat(crt: Path) -> str:
    out = openssl(crt.parent, "x509", "-in", str(crt), "-noout", "-subject", "-nameopt", "compat")
    return out.strip().removeprefix("subject=")


def rsa_hex_openssl(cfg: StoreConfig) -> str:
    der = subprocess.run(
        ["openssl", "rsa", "-in", cfg.private_key, "-RSAPublicKey_out", "-outform", "DER"],
        capture_output=True,
        check=True,
    ).stdout
    return "rsa-hex:" + der.hex()


def test_ipv4_peer_authenticates_to_fqdn_peer(manpage):
    a, b = Store.load(manpage["a"]), Store.load(manpage["b"])
    assert a.problems == [] and b.problems == []
    peer = exchange_auth(a, A_ID, b)
    assert peer.principals == (
        rsa_hex_openssl(manpage["a"]),
        "DN:" + subject_compat(manpage["a_crt"]),
    )
    assert peer.principals[1] == "DN:/C=SE/O=Example/CN=10.0.0.1"
    assert len(peer.chain) == 2 and len(peer.assertions) == 2


def test_fqdn_peer_authenticates_to_ipv4_peer(manpage):
    a, b = Store.load(manpage["a"]), Store.load(manpage["b"])
    peer = exchange_auth(b, B_ID, a)
    assert peer.principals == (
        rsa_hex_openssl(manpage["b"]),
        "DN:" + subject_compat(manpage["b_crt"]),
    )


def test_revoked_certificate_refused(manpage):
    a, c = Store.load(manpage["a"]), Store.load(manpage["c"])
    with pytest.raises(PKIError) as info:
        exchange_auth(c, Identity(IdType.IPV4_ADDR, bytes([10, 0, 0, 3])), a)
    assert info.value.reason is Reason.REVOKED
    assert "ca.crl" in str(info.value) and f"serial {info.value.serial}" in str(info.value)


@pytest.mark.parametrize(
    "claimed",
    [Identity(IdType.IPV4_ADDR, bytes([10, 0, 0, 2])), Identity(IdType.FQDN, b"10.0.0.1")],
)
def test_certificate_for_another_id_refused(manpage, claimed):
    a, b = Store.load(manpage["a"]), Store.load(manpage["b"])
    with pytest.raises(PKIError) as info:
        exchange_auth(a, A_ID, b, claimed=claimed)
    assert info.value.reason is Reason.ID_MISMATCH


def test_dn_string_is_x509_name_oneline(kit, tmp_path):
    """DN: principals spell the subject exactly as X509_NAME_oneline (openssl -nameopt compat).

    OpenSSL 3 writes a '/' or '+' inside a value as "\\/"; LibreSSL, which isakmpd uses, does
    not, and neither do we: that case is checked apart.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509 import Name, NameAttribute
    from cryptography.x509.oid import NameOID, ObjectIdentifier

    from pki import name_string

    subject = Name(
        [
            NameAttribute(NameOID.COUNTRY_NAME, "SE"),
            NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Skåne"),
            NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, 'IKE IPsec, "lab"'),
            NameAttribute(NameOID.DOMAIN_COMPONENT, "example"),
            NameAttribute(ObjectIdentifier("1.3.6.1.4.1.99999.1"), "private"),
            NameAttribute(NameOID.COMMON_NAME, "gw = 1"),
            NameAttribute(NameOID.EMAIL_ADDRESS, "ike@example.org"),
        ]
    )
    cert = kit.cert(subject, kit.key(3), None)
    path = tmp_path / "odd.crt"
    path.write_bytes(cert.cert.public_bytes(serialization.Encoding.PEM))
    assert name_string(cert.cert.subject) == subject_compat(path)
    slash = Name([NameAttribute(NameOID.COMMON_NAME, "a/b+c")])
    assert name_string(slash) == "/CN=a/b+c"

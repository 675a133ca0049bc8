"""The certificate, CRL and key directories isakmpd reads (isakmpd.8 FILES, isakmpd.conf(5)).

A Store loads CA-directory, Cert-directory and CRL-directory once (and again on reload(), the
daemon's SIGHUP); private keys, raw public keys and KeyNote credentials are read when asked for,
as isakmpd does, so a new file is seen without a reload.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import ipaddress
import logging
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pki.errors import PKIError, Reason
from pki.ids import (
    Identity,
    IdType,
    check_identity,
    dn_equal,
    id_file_name,
    ipv6_text,
    name_string,
    pubkey_relpath,
)

log = logging.getLogger("pki")

T = TypeVar("T")

X509_SECTION = "X509-Certificates"


class ConfLike(Protocol):
    """The part of ike.conf.Conf the store reads (pki imports nothing from ike)."""

    def get_str(self, section: str, tag: str, default: str | None = None) -> str | None: ...


@dataclass(frozen=True)
class StoreConfig:
    """Where the PKI files are; defaults are isakmpd's (reference isakmpd.md 3.2, 3.3)."""

    ca_directory: str = "/etc/isakmpd/ca/"
    cert_directory: str = "/etc/isakmpd/certs/"
    crl_directory: str = "/etc/isakmpd/crls/"
    private_key: str = "/etc/isakmpd/private/local.key"
    private_key_directory: str = "/etc/isakmpd/private/"
    pubkey_directory: str = "/etc/isakmpd/pubkeys/"
    credential_directory: str = "/etc/isakmpd/keynote/"
    accept_self_signed: bool = False

    @classmethod
    def from_conf(cls, conf: ConfLike) -> StoreConfig:
        """Read [X509-Certificates], [General]:Pubkey-directory and [KeyNote] from isakmpd.conf."""
        d = cls()

        def get(section: str, tag: str, default: str) -> str:
            value = conf.get_str(section, tag)
            return value if value else default

        return cls(
            ca_directory=get(X509_SECTION, "CA-directory", d.ca_directory),
            cert_directory=get(X509_SECTION, "Cert-directory", d.cert_directory),
            crl_directory=get(X509_SECTION, "CRL-directory", d.crl_directory),
            private_key=get(X509_SECTION, "Private-key", d.private_key),
            private_key_directory=get(
                X509_SECTION, "Private-key-directory", d.private_key_directory
            ),
            pubkey_directory=get("General", "Pubkey-directory", d.pubkey_directory),
            credential_directory=get("KeyNote", "Credential-directory", d.credential_directory),
            accept_self_signed=conf.get_str(X509_SECTION, "Accept-self-signed") is not None,
        )


@dataclass(frozen=True)
class StoredCert:
    """A certificate and the file it came from."""

    cert: x509.Certificate
    path: str


@dataclass(frozen=True)
class StoredCRL:
    """A CRL and the file it came from (named in revocation messages)."""

    crl: x509.CertificateRevocationList
    path: str

    @functools.cached_property
    def issuer_der(self) -> bytes:
        """The issuer's DER name, encoded once: every certificate checked is compared with it."""
        return self.crl.issuer.public_bytes()


@dataclass(frozen=True)
class OwnCertificate:
    """Our certificate for a local ID, with the intermediates a peer may need (no trust anchor)."""

    cert: x509.Certificate
    path: str
    intermediates: tuple[x509.Certificate, ...] = ()

    def payloads(self) -> list[bytes]:
        """DER bodies for CERT payloads (encoding X509_SIG): ours first, then intermediates."""
        return [
            c.public_bytes(serialization.Encoding.DER) for c in (self.cert, *self.intermediates)
        ]


def read_secret(path: str) -> bytes:
    """Read a key file, refusing one that group or others may access, as isakmpd does.

    The owner must be root or us and no group/other permission bit may be set
    (check_file_secrecy_fd).
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise PKIError(
            Reason.UNREADABLE, f"{path}: cannot open: {exc.strerror}", path=path
        ) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PKIError(Reason.UNREADABLE, f"{path}: not a regular file", path=path)
        if st.st_uid not in (0, os.getuid()):
            raise PKIError(
                Reason.INSECURE_FILE,
                f"{path}: owned by uid {st.st_uid}, must be owned by root or uid {os.getuid()}",
                path=path,
            )
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise PKIError(
                Reason.INSECURE_FILE,
                f"{path}: must not be accessible by group or others "
                f"(mode {stat.S_IMODE(st.st_mode):04o}, use chmod 600)",
                path=path,
            )
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


# What cryptography raises on malformed input (InvalidVersion is not a ValueError).
_PARSE_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion)


def _pem_or_der(
    data: bytes, path: str, what: str, pem: Callable[[bytes], T], der: Callable[[bytes], T]
) -> T:
    """Load PEM when the data has a PEM header, else DER; any failure names the file."""
    try:
        return pem(data) if b"-----BEGIN" in data else der(data)
    except _PARSE_ERRORS as exc:
        raise PKIError(
            Reason.UNREADABLE, f"{path}: not a PEM or DER {what} ({exc})", path=path
        ) from exc


def _parsed(cert: x509.Certificate) -> x509.Certificate:
    """Make cryptography parse the fields it reads lazily, so bad ones fail here and not later."""
    _ = cert.version, cert.not_valid_before_utc, cert.not_valid_after_utc
    cert.subject.public_bytes()
    cert.issuer.public_bytes()
    list(cert.extensions)
    cert.public_key()
    return cert


def load_der_certificate(data: bytes, where: str) -> x509.Certificate:
    """A DER certificate from a CERT payload, fully parsed; PKIError names where it came from."""
    try:
        return _parsed(x509.load_der_x509_certificate(data))
    except _PARSE_ERRORS as exc:
        raise PKIError(Reason.UNREADABLE, f"{where}: bad X.509 certificate: {exc}") from exc


def parse_certificates(data: bytes, path: str) -> list[x509.Certificate]:
    """Every certificate in a PEM file (a bundle is fine) or the one in a DER file."""
    return _pem_or_der(
        data,
        path,
        "certificate",
        lambda d: [_parsed(c) for c in x509.load_pem_x509_certificates(d)],
        lambda d: [_parsed(x509.load_der_x509_certificate(d))],
    )


def parse_crl(data: bytes, path: str) -> x509.CertificateRevocationList:
    """A CRL in PEM or DER."""

    def parsed(crl: x509.CertificateRevocationList) -> x509.CertificateRevocationList:
        _ = crl.issuer.public_bytes(), crl.last_update_utc, crl.next_update_utc
        _ = list(crl.extensions), [r.serial_number for r in crl]
        return crl

    return _pem_or_der(
        data,
        path,
        "CRL",
        lambda d: parsed(x509.load_pem_x509_crl(d)),
        lambda d: parsed(x509.load_der_x509_crl(d)),
    )


def parse_rsa_private_key(data: bytes, path: str) -> rsa.RSAPrivateKey:
    """An unencrypted RSA private key in PEM (PKCS#1 or PKCS#8) or DER."""
    key = _pem_or_der(
        data,
        path,
        "unencrypted private key",
        lambda d: serialization.load_pem_private_key(d, password=None),
        lambda d: serialization.load_der_private_key(d, password=None),
    )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PKIError(Reason.UNSUPPORTED, f"{path}: not an RSA key (RSA_SIG needs RSA)", path=path)
    return key


def parse_rsa_public_key(data: bytes, path: str) -> rsa.RSAPublicKey:
    """A raw public key: PEM "PUBLIC KEY" or "RSA PUBLIC KEY" (both read by isakmpd), or DER."""
    key = _pem_or_der(
        data,
        path,
        "public key",
        serialization.load_pem_public_key,
        serialization.load_der_public_key,
    )
    if not isinstance(key, rsa.RSAPublicKey):
        raise PKIError(Reason.UNSUPPORTED, f"{path}: not an RSA public key", path=path)
    return key


def _parse_keynote_private_key(data: bytes, path: str) -> rsa.RSAPrivateKey:
    """A Credential-directory private_key file (pki.credentials loads keynote: imported late)."""
    from pki.credentials import parse_keynote_private_key

    return parse_keynote_private_key(data.decode("ascii", "replace"), path)


def _directory_files(directory: str, problems: list[str]) -> Iterator[tuple[str, bytes]]:
    """(path, contents) of the regular files in a directory, reporting what cannot be read."""
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return
    except OSError as exc:
        problems.append(f"{directory}: cannot list directory: {exc.strerror}")
        log.warning("%s", problems[-1])
        return
    for name in names:
        path = os.path.join(directory, name)
        try:
            if not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                yield path, f.read()
        except OSError as exc:
            problems.append(f"{path}: cannot read: {exc.strerror}")
            log.warning("%s", problems[-1])


def _public_key_bytes(key: rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether issuer's name and key made cert's signature."""
    if not dn_equal(cert.issuer.public_bytes(), issuer.subject.public_bytes()):
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


@dataclass
class Store:
    """The loaded PKI material; build with Store.load(config)."""

    config: StoreConfig
    cas: list[StoredCert] = field(default_factory=list)
    certs: list[StoredCert] = field(default_factory=list)
    crls: list[StoredCRL] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # path -> (SHA-256 of the file, the key parsed from it): see _parse_private_key
    _private_keys: dict[str, tuple[bytes, rsa.RSAPrivateKey]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def load(cls, config: StoreConfig) -> Store:
        """Read the directories; unreadable files are logged, listed in .problems, skipped."""
        store = cls(config)
        store.reload()
        return store

    def reload(self) -> list[str]:
        """Re-read CA-directory, Cert-directory and CRL-directory (SIGHUP); returns problems."""
        problems: list[str] = []
        cas = self._load_certs(self.config.ca_directory, problems)
        certs = self._load_certs(self.config.cert_directory, problems)
        crls: list[StoredCRL] = []
        for path, data in _directory_files(self.config.crl_directory, problems):
            try:
                crls.append(StoredCRL(parse_crl(data, path), path))
            except PKIError as exc:
                problems.append(str(exc))
                log.warning("%s", exc)
        self.cas, self.certs, self.crls, self.problems = cas, certs, crls, problems
        log.debug(
            "pki: loaded %d CA certificates, %d certificates, %d CRLs",
            len(cas),
            len(certs),
            len(crls),
        )
        return problems

    @staticmethod
    def _load_certs(directory: str, problems: list[str]) -> list[StoredCert]:
        out: list[StoredCert] = []
        for path, data in _directory_files(directory, problems):
            try:
                out.extend(StoredCert(c, path) for c in parse_certificates(data, path))
            except PKIError as exc:
                problems.append(str(exc))
                log.warning("%s", exc)
        return out

    # --- CERTREQ ------------------------------------------------------------------------------

    def certreq_authorities(self) -> list[bytes]:
        """DER subject names of our CAs, one per CERTREQ payload (type X509_SIG).

        Empty when CA-directory is empty; isakmpd then sends no CERTREQ.
        """
        seen: list[bytes] = []
        for sc in self.cas:
            der = sc.cert.subject.public_bytes()
            if der not in seen:
                seen.append(der)
        return seen

    def issuer_path(self, cert: x509.Certificate) -> list[x509.Certificate]:
        """The issuers above cert found in the store, nearest first, ending at a CA if one is."""
        path: list[x509.Certificate] = []
        current = cert
        pool = [sc.cert for sc in self.certs] + [sc.cert for sc in self.cas]
        while len(path) < 8:
            if dn_equal(current.issuer.public_bytes(), current.subject.public_bytes()):
                break
            nxt = next((c for c in pool if c not in path and issued_by(current, c)), None)
            if nxt is None:
                break
            path.append(nxt)
            current = nxt
        return path

    def own_certificate(
        self,
        local: Identity,
        requested_cas: Sequence[bytes] = (),
        private_key: rsa.RSAPrivateKey | None = None,
    ) -> OwnCertificate | None:
        """Choose our certificate for a local ID from Cert-directory.

        The certificate must carry the ID (as isakmpd's x509_cert_obtain), should hold the public
        half of private_key when given, and is preferred when its issuer path reaches one of the
        CA names the peer asked for in CERTREQ (empty means any CA).
        """
        best: tuple[int, OwnCertificate] | None = None
        want_key = _public_key_bytes(private_key.public_key()) if private_key else None
        wanted = [r for r in requested_cas if r]  # an empty CA name asks for any CA
        anchors = {ca.cert.subject.public_bytes() for ca in self.cas}
        for sc in self.certs:
            try:
                check_identity(sc.cert, local.id_type, local.data)
            except PKIError:
                continue
            pub = sc.cert.public_key()
            if not isinstance(pub, rsa.RSAPublicKey):
                continue
            if want_key is not None and _public_key_bytes(pub) != want_key:
                continue
            path = self.issuer_path(sc.cert)
            names = [sc.cert.issuer.public_bytes()] + [c.subject.public_bytes() for c in path]
            ca_ok = not wanted or any(dn_equal(r, n) for r in wanted for n in names)
            intermediates = tuple(c for c in path if c.subject.public_bytes() not in anchors)
            choice = OwnCertificate(sc.cert, sc.path, intermediates)
            score = 1 if ca_ok else 0
            if best is None or score > best[0]:
                best = (score, choice)
        if best is not None and best[0] == 0:
            log.info(
                "pki: no certificate for %s is issued by a CA the peer requested; sending %s",
                local,
                name_string(best[1].cert.subject),
            )
        return best[1] if best else None

    def stored_peer_certificates(self, peer: Identity) -> list[x509.Certificate]:
        """Certificates in Cert-directory carrying the peer's ID (kept permanently, isakmpd.8)."""
        out = []
        for sc in self.certs:
            try:
                check_identity(sc.cert, peer.id_type, peer.data)
            except PKIError:
                continue
            out.append(sc.cert)
        return out

    # --- keys -----------------------------------------------------------------------------------

    def private_key(self, local: Identity | None = None) -> rsa.RSAPrivateKey:
        """Our RSA key for a local ID, in isakmpd's order.

        1. Credential-directory/<id>/private_key (a KeyNote private-rsa key),
        2. Private-key-directory/<id>,
        3. Private-key.
        Each key file must be private to its owner (read_secret).
        """
        name = id_file_name(local.id_type, local.data) if local else None
        if name is not None:
            kn_path = os.path.join(self.config.credential_directory, name, "private_key")
            if os.path.exists(kn_path):
                return self._parse_private_key(kn_path, _parse_keynote_private_key)
            path = os.path.join(self.config.private_key_directory, name)
            if os.path.isfile(path):
                return self._parse_private_key(path, parse_rsa_private_key)
        path = self.config.private_key
        if not os.path.exists(path):
            raise PKIError(
                Reason.NO_PRIVATE_KEY,
                f"no private key for {local if local else 'this host'}: {path} does not exist",
                path=path,
            )
        return self._parse_private_key(path, parse_rsa_private_key)

    def _parse_private_key(
        self, path: str, parse: Callable[[bytes, str], rsa.RSAPrivateKey]
    ) -> rsa.RSAPrivateKey:
        """Read a key file (read_secret checks its secrecy every time) and parse it, or reuse
        the key parsed from the same bytes before.

        Loading an RSA key makes cryptography check it (tens of milliseconds), and each Phase 1
        with signatures asks for our key twice (to sign, and to pick our certificate); the file
        is still read each time, so a changed key is seen without a reload.
        """
        data = read_secret(path)
        digest = hashlib.sha256(data).digest()
        hit = self._private_keys.get(path)
        if hit is not None and hit[0] == digest:
            return hit[1]
        key = parse(data, path)
        self._private_keys[path] = (digest, key)
        return key

    def raw_public_key(self, peer: Identity) -> rsa.RSAPublicKey | None:
        """The peer's key from Pubkey-directory/{ipv4,ipv6,fqdn,ufqdn}/<id>, or None.

        IPv6 files must be named in compressed form (abcd:abcd::ab:bc, isakmpd.8); a file naming
        the same address differently is reported, not used.
        """
        rel = pubkey_relpath(peer.id_type, peer.data)
        if rel is None:
            return None
        path = os.path.join(self.config.pubkey_directory, rel)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise PKIError(
                    Reason.UNREADABLE, f"{path}: cannot read: {exc.strerror}", path=path
                ) from exc
            if peer.id_type == IdType.IPV6_ADDR:
                self._report_ipv6_spelling(peer.data, path)
            return None
        return parse_rsa_public_key(data, path)

    def _report_ipv6_spelling(self, addr: bytes, wanted: str) -> None:
        directory = os.path.join(self.config.pubkey_directory, "ipv6")
        try:
            names = os.listdir(directory)
        except OSError:
            return
        for name in names:
            try:
                if ipaddress.IPv6Address(name).packed == addr:
                    log.warning(
                        "pki: %s names %s but not in compressed form; rename it to %s",
                        os.path.join(directory, name),
                        ipv6_text(addr),
                        wanted,
                    )
            except ValueError:
                continue

    def local_credentials(self, local: Identity) -> bytes | None:
        """Our KeyNote credentials for a local ID (Credential-directory/<id>/credentials)."""
        name = id_file_name(local.id_type, local.data)
        if name is None:
            return None
        path = os.path.join(self.config.credential_directory, name, "credentials")
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise PKIError(
                Reason.UNREADABLE, f"{path}: cannot read: {exc.strerror}", path=path
            ) from exc

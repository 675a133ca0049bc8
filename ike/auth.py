"""Where Phase 1 authentication finds its keys: the key and certificate source interface.

The engine never reads key files.  It asks an `AuthSource` for our RSA private key and the
certificates to send, and for the public key of a peer (given its Phase 1 ID and the CERT
payloads it sent).  `MemoryAuth` is a simple in-memory source for tests and for the daemon until
the PKI store (pki/) plugs in behind the same interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = [
    "AuthSource",
    "Identity",
    "IdentityAuthSource",
    "MemoryAuth",
    "PeerKey",
    "dn_oneline",
    "pkcs1_der",
]


@dataclass(frozen=True)
class PeerKey:
    """A peer's verified public key and the KeyNote principals it stands for."""

    public_key: rsa.RSAPublicKey
    principals: tuple[str, ...]
    subject_dn: str = ""


class AuthSource(Protocol):
    """Keys and certificates for RSA signature authentication."""

    def private_key(self, local_id: str) -> rsa.RSAPrivateKey | None:
        """Our signing key for the identity we present (None: cannot sign)."""
        ...

    def certificates(self, local_id: str) -> Sequence[bytes]:
        """DER X.509 certificates to send in CERT payloads (may be empty)."""
        ...

    def peer_key(self, peer_id: str, certificates: Sequence[bytes]) -> PeerKey | None:
        """The peer's trusted public key, or None when nothing trusted matches."""
        ...


class Identity(Protocol):
    """A Phase 1 identity as pki.ids.Identity carries it: the ID type and its data."""

    id_type: int
    data: bytes


class IdentityAuthSource(Protocol):
    """The richer source pki.PKIAuth offers, used when present: identities with their type,
    every CERT payload (X.509 and KeyNote credentials), the peer's CERTREQ authorities and the
    time; ``authenticate`` raises (pki.errors.PKIError) saying why a peer is refused."""

    def signing_key(self, local: Identity) -> rsa.RSAPrivateKey:
        """Our signing key (raises when there is none)."""
        ...

    def cert_payloads(self, local: Identity, requested_cas: Sequence[bytes] = ()) -> list[bytes]:
        """DER certificates for our CERT payloads, chosen by the peer's CERTREQ authorities."""
        ...

    def keynote_payload(self, local: Identity) -> bytes | None:
        """Our KeyNote credentials as a CERT payload body (encoding 11), or None."""
        ...

    def certreq_authorities(self) -> list[bytes]:
        """DER CA names for our CERTREQ payloads."""
        ...

    def authenticate(self, peer: Identity, payloads: Sequence[tuple[int, bytes]],
                     now: float) -> object:
        """The peer's verified key (public_key, principals, subject_dn, prime(session))."""
        ...


def pkcs1_der(key: rsa.RSAPublicKey) -> bytes:
    """PKCS#1 RSAPublicKey DER, the form behind KeyNote's rsa-hex: principals."""
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)


_DN_SHORT = {
    "countryName": "C", "stateOrProvinceName": "ST", "localityName": "L",
    "organizationName": "O", "organizationalUnitName": "OU", "commonName": "CN",
    "emailAddress": "emailAddress",
}


def dn_oneline(name: x509.Name) -> str:
    """The OpenSSL X509_NAME_oneline form (/C=SE/O=.../CN=...) used in DN: principals."""
    parts = []
    for attr in name:
        label = _DN_SHORT.get(attr.oid._name, attr.oid.dotted_string)
        value = attr.value if isinstance(attr.value, str) else attr.value.hex()
        parts.append(f"/{label}={value}")
    return "".join(parts)


@dataclass
class MemoryAuth:
    """An in-memory key store: our keys by local ID, trusted peer keys by peer ID.

    A peer certificate is accepted when its public key equals a trusted key (raw public keys,
    as isakmpd's pubkeys/ directory does) or when its issuer is one of ``trusted_issuers``
    and it carries a valid signature from that issuer.
    """

    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    certs: dict[str, list[bytes]] = field(default_factory=dict)
    peer_keys: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)
    trusted_issuers: list[x509.Certificate] = field(default_factory=list)

    def private_key(self, local_id: str) -> rsa.RSAPrivateKey | None:
        return self.keys.get(local_id)

    def certificates(self, local_id: str) -> Sequence[bytes]:
        return self.certs.get(local_id, [])

    def peer_key(self, peer_id: str, certificates: Sequence[bytes]) -> PeerKey | None:
        for der in certificates:
            found = self._from_certificate(der)
            if found is not None:
                return found
        key = self.peer_keys.get(peer_id)
        if key is None:
            return None
        return PeerKey(key, ("rsa-hex:" + pkcs1_der(key).hex(),))

    def _from_certificate(self, der: bytes) -> PeerKey | None:
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            return None
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            return None
        trusted = any(
            pkcs1_der(key) == pkcs1_der(known) for known in self.peer_keys.values()
        )
        for issuer in self.trusted_issuers:
            if cert.issuer != issuer.subject:
                continue
            try:
                cert.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature):
                continue
            trusted = True
        if not trusted:
            return None
        dn = dn_oneline(cert.subject)
        return PeerKey(key, ("rsa-hex:" + pkcs1_der(key).hex(), "DN:" + dn), dn)

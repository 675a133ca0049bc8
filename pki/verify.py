"""Peer authentication material: certificate paths, revocation and the peer's public key.

cryptography's verifier builds and checks the path to a CA in CA-directory (signatures, validity,
basicConstraints, name constraints); this module adds what it leaves out (reference aesthetics.md
6): CRLs, key usage, IKE identities, isakmpd's Accept-self-signed, and readable reasons.
Time is always an argument (`now`), never read from the clock.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtensionOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    VerificationError,
)
from cryptography.x509.verification import Store as TrustStore

from pki.credentials import (
    SessionLike,
    certificate_principals,
    chain_assertions,
    credential_key,
    prime_session,
    rsa_hex,
    verify_credentials,
)
from pki.errors import PKIError, Reason
from pki.ids import Identity, check_identity, dn_equal, name_string
from pki.store import Store, StoredCRL, issued_by, load_der_certificate

log = logging.getLogger("pki")


class CertEncoding(IntEnum):
    """CERT/CERTREQ encodings isakmpd handles (RFC 2408 3.9; KEYNOTE is isakmpd's 11)."""

    NONE = 0
    X509_SIG = 4
    KEYNOTE = 11


MAX_CHAIN_DEPTH = 8

_KNOWN_CRITICAL = {
    ExtensionOID.BASIC_CONSTRAINTS,
    ExtensionOID.KEY_USAGE,
    ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    ExtensionOID.NAME_CONSTRAINTS,
    ExtensionOID.CERTIFICATE_POLICIES,
    ExtensionOID.POLICY_CONSTRAINTS,
    ExtensionOID.INHIBIT_ANY_POLICY,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
}

_KNOWN_CRL_EXTENSIONS = {
    ExtensionOID.CRL_NUMBER,
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    ExtensionOID.ISSUING_DISTRIBUTION_POINT,
    ExtensionOID.ISSUER_ALTERNATIVE_NAME,
}


def as_datetime(now: dt.datetime | float) -> dt.datetime:
    """The engine's time (a UTC datetime or POSIX seconds) as an aware UTC datetime."""
    if isinstance(now, dt.datetime):
        return now if now.tzinfo else now.replace(tzinfo=dt.UTC)
    return dt.datetime.fromtimestamp(now, dt.UTC)


def _when(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def _check_times(cert: x509.Certificate, now: dt.datetime) -> None:
    subject = name_string(cert.subject)
    if now < cert.not_valid_before_utc:
        raise PKIError(
            Reason.NOT_YET_VALID,
            f"certificate {subject} is not valid before {_when(cert.not_valid_before_utc)} "
            f"(now {_when(now)})",
            serial=cert.serial_number,
        )
    if now > cert.not_valid_after_utc:
        raise PKIError(
            Reason.EXPIRED,
            f"certificate {subject} expired at {_when(cert.not_valid_after_utc)} "
            f"(now {_when(now)})",
            serial=cert.serial_number,
        )


def _extension(
    cert: x509.Certificate, oid: x509.ObjectIdentifier
) -> x509.Extension[x509.ExtensionType] | None:
    try:
        return cert.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return None
    except ValueError as exc:
        raise PKIError(
            Reason.CHAIN_INVALID,
            f"certificate {name_string(cert.subject)} has malformed extensions: {exc}",
        ) from exc


def _check_extensions(chain: Sequence[x509.Certificate]) -> None:
    """Key usage along the chain, and no critical extension we do not understand on the leaf."""
    leaf = chain[0]
    for ext in leaf.extensions:
        if ext.critical and ext.oid not in _KNOWN_CRITICAL:
            raise PKIError(
                Reason.CHAIN_INVALID,
                f"certificate {name_string(leaf.subject)} has an unknown critical extension "
                f"{ext.oid.dotted_string}",
            )
    ku = _extension(leaf, ExtensionOID.KEY_USAGE)
    usage = ku.value if ku is not None else None
    if isinstance(usage, x509.KeyUsage) and not (
        usage.digital_signature or usage.content_commitment
    ):
        raise PKIError(
            Reason.KEY_USAGE,
            f"certificate {name_string(leaf.subject)}: keyUsage allows neither "
            "digitalSignature nor nonRepudiation, so it cannot sign IKE",
        )
    for issuer in chain[1:]:
        ku = _extension(issuer, ExtensionOID.KEY_USAGE)
        if ku is not None and isinstance(ku.value, x509.KeyUsage) and not ku.value.key_cert_sign:
            raise PKIError(
                Reason.KEY_USAGE,
                f"CA certificate {name_string(issuer.subject)}: keyUsage lacks keyCertSign",
            )


def _verifier(anchors: Sequence[x509.Certificate], now: dt.datetime) -> PolicyBuilder:
    ca_policy = ExtensionPolicy.permit_all().require_present(
        x509.BasicConstraints, Criticality.AGNOSTIC, None
    )
    return (
        PolicyBuilder()
        .store(TrustStore(list(anchors)))
        .time(now)
        .max_chain_depth(MAX_CHAIN_DEPTH)
        .extension_policies(ca_policy=ca_policy, ee_policy=ExtensionPolicy.permit_all())
    )


def _explain(
    leaf: x509.Certificate,
    pool: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    now: dt.datetime,
    exc: VerificationError,
    ca_directory: str,
) -> PKIError:
    """Turn the verifier's refusal into the specific reason, walking the issuer names ourselves."""
    current = leaf
    for _ in range(MAX_CHAIN_DEPTH):
        by_name = [
            c
            for c in (*pool, *anchors)
            if c is not current
            and dn_equal(c.subject.public_bytes(), current.issuer.public_bytes())
        ]
        subject, issuer = name_string(current.subject), name_string(current.issuer)
        if not by_name:
            return PKIError(
                Reason.UNKNOWN_CA,
                f"certificate {subject}: issuer {issuer} is not a known CA (not in {ca_directory} "
                "nor among the intermediates)",
            )
        signer = next((c for c in by_name if issued_by(current, c)), None)
        if signer is None:
            return PKIError(
                Reason.BAD_SIGNATURE,
                f"certificate {subject}: signature does not verify with the key of {issuer}",
                serial=current.serial_number,
            )
        try:
            _check_times(signer, now)
        except PKIError as err:
            return err
        if any(signer is a for a in anchors):
            break
        current = signer
    text = str(exc)
    if "too weak" in text:
        return PKIError(
            Reason.WEAK_KEY,
            f"certificate {name_string(leaf.subject)}: a key in its chain is too weak "
            f"(RSA keys need at least 2048 bits): {text}",
        )
    return PKIError(
        Reason.CHAIN_INVALID, f"certificate {name_string(leaf.subject)}: chain refused: {text}"
    )


def verify_chain(
    store: Store,
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate] = (),
    *,
    now: dt.datetime | float,
) -> list[x509.Certificate]:
    """Verify leaf up to a CA of the store; returns the chain, leaf first, trust anchor last.

    Intermediates come from the peer's CERT payloads and from Cert-directory. A self-signed
    leaf outside CA-directory passes only with Accept-self-signed (and a good self-signature).
    """
    now = as_datetime(now)
    subject = name_string(leaf.subject)
    _check_times(leaf, now)
    try:
        key = leaf.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise PKIError(Reason.UNSUPPORTED, f"certificate {subject}: unusable key ({exc})") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise PKIError(Reason.UNSUPPORTED, f"certificate {subject}: key is not RSA")
    anchors = [sc.cert for sc in store.cas]
    pool = [*intermediates, *(sc.cert for sc in store.certs if sc.cert != leaf)]
    is_anchor = any(a == leaf for a in anchors)
    if dn_equal(leaf.issuer.public_bytes(), leaf.subject.public_bytes()) and not is_anchor:
        if not store.config.accept_self_signed:
            raise PKIError(
                Reason.UNKNOWN_CA,
                f"certificate {subject} is self-signed, not in {store.config.ca_directory}, and "
                "Accept-self-signed is not set",
            )
        if not issued_by(leaf, leaf):
            raise PKIError(
                Reason.BAD_SIGNATURE, f"self-signed certificate {subject}: signature is bad"
            )
        chain = [leaf]
        _check_extensions(chain)
        return chain
    if not anchors:
        raise PKIError(
            Reason.UNKNOWN_CA,
            f"certificate {subject}: no CA certificates in {store.config.ca_directory}",
        )
    try:
        verified = _verifier(anchors, now).build_client_verifier().verify(leaf, pool)
    except VerificationError as exc:
        raise _explain(leaf, pool, anchors, now, exc, store.config.ca_directory) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:  # e.g. a malformed extension
        raise PKIError(Reason.CHAIN_INVALID, f"certificate {subject}: {exc}") from exc
    chain = list(verified.chain)
    _check_extensions(chain)
    check_revocation(store, chain, now=now)
    return chain


def _crl_covers(crl: x509.CertificateRevocationList, cert: x509.Certificate) -> bool:
    """Whether the CRL's issuing distribution point scope includes this certificate."""
    try:
        idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return True
    if idp.indirect_crl or idp.only_some_reasons or idp.only_contains_attribute_certs:
        return False
    bc = _extension(cert, ExtensionOID.BASIC_CONSTRAINTS)
    is_ca = bc is not None and isinstance(bc.value, x509.BasicConstraints) and bc.value.ca
    if idp.only_contains_user_certs and is_ca:
        return False
    return not (idp.only_contains_ca_certs and not is_ca)


def _usable_crl(sc: StoredCRL, issuer: x509.Certificate) -> PKIError | None:
    """None if the CRL is signed by issuer and well formed, else why it cannot be used."""
    crl, issuer_name = sc.crl, name_string(issuer.subject)
    key = issuer.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or not crl.is_signature_valid(key):
        return PKIError(
            Reason.CRL_INVALID,
            f"CRL {sc.path}: signature does not verify with the key of {issuer_name}",
            path=sc.path,
        )
    ku = _extension(issuer, ExtensionOID.KEY_USAGE)
    if ku is not None and isinstance(ku.value, x509.KeyUsage) and not ku.value.crl_sign:
        return PKIError(
            Reason.CRL_INVALID,
            f"CRL {sc.path}: issuer {issuer_name} keyUsage lacks cRLSign",
            path=sc.path,
        )
    try:
        exts = list(crl.extensions)
        entry_exts = [e for r in crl for e in r.extensions]
    except ValueError as exc:
        return PKIError(Reason.CRL_INVALID, f"CRL {sc.path}: malformed extensions: {exc}")
    for ext in exts:
        if ext.oid == ExtensionOID.DELTA_CRL_INDICATOR or (
            ext.critical and ext.oid not in _KNOWN_CRL_EXTENSIONS
        ):
            return PKIError(
                Reason.CRL_INVALID,
                f"CRL {sc.path}: unsupported extension {ext.oid.dotted_string}",
                path=sc.path,
            )
    for ext in entry_exts:
        if ext.critical and ext.oid.dotted_string != "2.5.29.29":  # only certificateIssuer
            return PKIError(
                Reason.CRL_INVALID,
                f"CRL {sc.path}: unsupported critical entry extension {ext.oid.dotted_string}",
                path=sc.path,
            )
    return None


def check_revocation(
    store: Store, chain: Sequence[x509.Certificate], *, now: dt.datetime | float
) -> None:
    """Check every certificate of a verified chain against CRL-directory.

    As isakmpd (CRL_CHECK | CRL_CHECK_ALL once any CRL is loaded): with CRLs present, each
    certificate below the trust anchor needs a fresh, correctly signed CRL from its issuer, and
    must not be listed in it. A trust anchor is checked only if its own CRL is there.
    """
    if not store.crls:
        return
    now = as_datetime(now)
    for i, cert in enumerate(chain):
        issuer = chain[i + 1] if i + 1 < len(chain) else cert
        anchor = i + 1 == len(chain)
        issuer_der = cert.issuer.public_bytes()  # encoded once, not once per CRL
        candidates = [
            sc
            for sc in store.crls
            if dn_equal(sc.issuer_der, issuer_der) and _crl_covers(sc.crl, cert)
        ]
        problems = [(sc, _usable_crl(sc, issuer)) for sc in candidates]
        usable = [sc for sc, err in problems if err is None]
        if not usable:
            if anchor and not candidates:
                continue
            bad = next((err for _, err in problems if err is not None), None)
            if bad is not None:
                raise bad
            raise PKIError(
                Reason.CRL_MISSING,
                f"certificate {name_string(cert.subject)} serial {cert.serial_number}: no CRL "
                f"from {name_string(cert.issuer)} in {store.config.crl_directory} (CRL checking "
                "is on because that directory holds CRLs)",
                serial=cert.serial_number,
            )
        sc = max(usable, key=lambda s: s.crl.last_update_utc)
        _check_crl_time(sc, now)
        revoked = sc.crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if revoked is not None:
            serial = cert.serial_number
            raise PKIError(
                Reason.REVOKED,
                f"certificate {name_string(cert.subject)} serial {serial} (0x{serial:X}) is "
                f"revoked by CRL {sc.path} (issuer {name_string(sc.crl.issuer)}, revoked "
                f"{_when(revoked.revocation_date_utc)})",
                path=sc.path,
                serial=serial,
            )


def _check_crl_time(sc: StoredCRL, now: dt.datetime) -> None:
    crl = sc.crl
    if now < crl.last_update_utc:
        raise PKIError(
            Reason.CRL_STALE,
            f"CRL {sc.path} from {name_string(crl.issuer)} is not valid before "
            f"{_when(crl.last_update_utc)} (now {_when(now)})",
            path=sc.path,
        )
    nxt = crl.next_update_utc
    if nxt is not None and now > nxt:
        raise PKIError(
            Reason.CRL_STALE,
            f"CRL {sc.path} from {name_string(crl.issuer)} is stale: its nextUpdate "
            f"{_when(nxt)} has passed (now {_when(now)})",
            path=sc.path,
        )


@dataclass(frozen=True)
class PeerKey:
    """The peer's RSA key for the SIG check and what it means to KeyNote.

    assertions are local (trusted) chain assertions; credentials are the peer's signed KeyNote
    credentials (add untrusted); principals become the session's action authorizers.
    """

    public_key: rsa.RSAPublicKey
    source: str
    encoding: CertEncoding
    certificate: x509.Certificate | None = None
    chain: tuple[x509.Certificate, ...] = ()
    principals: tuple[str, ...] = ()
    assertions: tuple[str, ...] = ()
    credentials: tuple[str, ...] = ()

    @property
    def subject_dn(self) -> str:
        """The certificate subject in DN: form, or "" for a raw or KeyNote key."""
        return name_string(self.certificate.subject) if self.certificate is not None else ""

    def prime(self, session: SessionLike) -> None:
        """Add this peer's assertions, credentials and principals to a KeyNote session."""
        prime_session(session, self.principals, self.assertions, self.credentials)


def _from_certificate(
    store: Store,
    cert: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    now: dt.datetime,
    source: str,
) -> PeerKey:
    chain = verify_chain(store, cert, intermediates, now=now)
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)  # verify_chain refuses other keys
    return PeerKey(
        public_key=key,
        source=source,
        encoding=CertEncoding.X509_SIG,
        certificate=cert,
        chain=tuple(chain),
        principals=tuple(certificate_principals(cert)),
        assertions=tuple(chain_assertions(chain)),
    )


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return bc.ca


def authenticate_peer(
    store: Store,
    peer: Identity,
    cert_payloads: Sequence[tuple[int, bytes]] = (),
    *,
    now: dt.datetime | float,
) -> PeerKey:
    """Find and verify the key that must have signed the peer's HASH (isakmpd's order).

    1. CERT payloads: KeyNote credentials (signatures checked) or an X.509 certificate that
       carries the peer's ID and chains to our CA (the other payload certificates serve as
       intermediates);
    2. a certificate for the ID kept in Cert-directory (verified like a received one);
    3. Pubkey-directory/<type>/<id>.
    Raises PKIError with the most telling reason when none works; the failure is logged.
    """
    now = as_datetime(now)
    errors: list[tuple[bool, PKIError]] = []  # (the certificate matched the ID, error)
    certs: list[x509.Certificate] = []
    for n, (encoding, data) in enumerate(cert_payloads, 1):
        where = f"CERT payload {n} from {peer}"
        if encoding == CertEncoding.X509_SIG:
            try:
                certs.append(load_der_certificate(data, where))
            except PKIError as err:
                errors.append((False, err))
        elif encoding == CertEncoding.KEYNOTE:
            try:
                creds = verify_credentials(data, where)
            except PKIError as err:
                # Said now: another payload or key may still authenticate the peer, and then
                # only this line tells why the credentials' delegations are not in the session
                # (isakmpd's "received CERT can't be validated").
                log.warning("pki: KeyNote credentials not used: %s", err)
                errors.append((True, err))
                continue
            key = credential_key(creds)
            if key is None:
                errors.append(
                    (True, PKIError(Reason.BAD_CREDENTIAL, f"{where}: no RSA licensee key"))
                )
                continue
            return PeerKey(
                public_key=key,
                source=where,
                encoding=CertEncoding.KEYNOTE,
                principals=(rsa_hex(key),),
                credentials=tuple(creds),
            )
        else:
            log.debug("pki: %s: encoding %d not used", where, encoding)
    for cert in sorted(certs, key=_is_ca):
        try:
            check_identity(cert, peer.id_type, peer.data)
        except PKIError as err:
            errors.append((False, err))
            continue
        others = [c for c in certs if c is not cert]
        try:
            return _from_certificate(store, cert, others, now, f"CERT payload from {peer}")
        except PKIError as err:
            errors.append((True, err))
    for cert in store.stored_peer_certificates(peer):
        try:
            return _from_certificate(store, cert, certs, now, "Cert-directory")
        except PKIError as err:
            errors.append((True, err))
    try:
        key = store.raw_public_key(peer)
    except PKIError as err:
        key = None
        errors.append((True, err))
    if key is not None:
        return PeerKey(
            public_key=key,
            source="Pubkey-directory",
            encoding=CertEncoding.NONE,
            principals=(rsa_hex(key),),
        )
    if errors:
        failure = next((e for matched, e in errors if matched), errors[0][1])
    else:
        failure = PKIError(
            Reason.NO_PUBLIC_KEY,
            f"no public key for peer {peer}: no CERT payload, no certificate in "
            f"{store.config.cert_directory}, no file in {store.config.pubkey_directory}",
        )
    log.warning("pki: peer %s not authenticated: %s", peer, failure)
    raise failure

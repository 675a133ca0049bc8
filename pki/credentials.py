"""What a verified peer means to KeyNote: principals, chain assertions and signed credentials.

The forms follow isakmpd (reference isakmpd.md 4.1): an X.509 peer is the two principals
rsa-hex:<PKCS#1 hex> and DN:<X509_NAME_oneline>, and each certificate of its chain becomes two
local assertions in which the issuer authorizes the subject for the certificate's lifetime
(x509_generate_kn). KeyNote credentials received in CERT payloads count only if their signatures
verify (keynote.sign.verify_assertion_cached: a policy session then finds them checked).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from keynote import ast as kn_ast
from keynote import keys as kn_keys
from keynote.envfile import EnvFileError, read_key_file
from keynote.errors import KeyNoteError
from keynote.fields import chunks
from keynote.parse import parse_text
from keynote.sign import verify_assertion_cached
from pki.errors import PKIError, Reason
from pki.ids import dn_equal, name_string


class SessionLike(Protocol):
    """The part of keynote.Session used here (see CONTRACT.md)."""

    def add_assertions(
        self, text: str, trusted: bool = False, source: str = "<string>"
    ) -> list[int]: ...

    def add_authorizer(self, principal: str) -> None: ...


def rsa_hex(key: rsa.RSAPublicKey) -> str:
    """The principal of an RSA key as libkeynote prints it: rsa-hex:<lowercase PKCS#1 DER>."""
    numbers = key.public_numbers()
    return kn_keys.encode_key(kn_keys.RSAPublicKey(numbers.n, numbers.e))


def dn_principal(name: x509.Name) -> str:
    """The DN: principal isakmpd gives a certificate subject."""
    return "DN:" + name_string(name)


def certificate_principals(cert: x509.Certificate) -> list[str]:
    """rsa-hex: and DN: for an X.509-authenticated peer, in isakmpd's order."""
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise PKIError(Reason.UNSUPPORTED, f"{name_string(cert.subject)}: public key is not RSA")
    return [rsa_hex(key), dn_principal(cert.subject)]


def _literal(text: str) -> str:
    """A KeyNote string literal; isakmpd does not escape, which breaks DNs holding a quote."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _conditions(cert: x509.Certificate) -> str:
    before = cert.not_valid_before_utc.strftime("%Y%m%d%H%M%S")
    after = cert.not_valid_after_utc.strftime("%Y%m%d%H%M%S")
    return f'GMTTimeOfDay >= "{before}" && GMTTimeOfDay <= "{after}";'


def certificate_assertions(cert: x509.Certificate, issuer: x509.Certificate) -> list[str]:
    """The two assertions isakmpd derives from one certificate, issuer authorizing subject.

    A self-signed certificate yields none, as in x509_generate_kn.
    """
    if dn_equal(cert.issuer.public_bytes(), cert.subject.public_bytes()):
        return []
    ikey, skey = issuer.public_key(), cert.public_key()
    if not isinstance(ikey, rsa.RSAPublicKey) or not isinstance(skey, rsa.RSAPublicKey):
        return []
    cond = _conditions(cert)
    by_key = (
        f"Authorizer: {_literal(rsa_hex(ikey))}\n"
        f"Licensees: {_literal(rsa_hex(skey))}\n"
        f"Conditions: {cond}\n"
    )
    by_dn = (
        f"Authorizer: {_literal(dn_principal(cert.issuer))}\n"
        f"Licensees: {_literal(dn_principal(cert.subject))}\n"
        f"Conditions: {cond}\n"
    )
    return [by_key, by_dn]


def chain_assertions(chain: Sequence[x509.Certificate]) -> list[str]:
    """Assertions for a verified chain (leaf first, trust anchor last), each issuer over subject."""
    out: list[str] = []
    for i, cert in enumerate(chain):
        if i + 1 < len(chain):
            out.extend(certificate_assertions(cert, chain[i + 1]))
    return out


def split_assertions(text: str) -> list[str]:
    """Assertions separated by blank lines, as kn_read_asserts splits a file or payload."""
    text = text.replace("\0", "")  # isakmpd sends the C string's terminating NUL
    return [text[c.start : c.end] for c in chunks(text)]


def verify_credentials(data: bytes, source: str) -> list[str]:
    """Signature-check KeyNote credentials from a CERT payload (encoding KEYNOTE, 11).

    Every assertion must carry a verifying signature or the whole payload is refused, as in
    isakmpd's keynote_cert_validate (which, by a slip, re-checked the first assertion each time).
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PKIError(
            Reason.BAD_CREDENTIAL, f"{source}: KeyNote credentials are not text"
        ) from exc
    assertions = split_assertions(text)
    if not assertions:
        raise PKIError(Reason.BAD_CREDENTIAL, f"{source}: no KeyNote assertion in credentials")
    for n, assertion in enumerate(assertions, 1):
        try:
            good = verify_assertion_cached(assertion)
        except Exception as exc:  # a malformed assertion is a refused one, never a crash
            raise PKIError(
                Reason.BAD_CREDENTIAL, f"{source}: KeyNote assertion {n} is malformed: {exc}"
            ) from exc
        if not good:
            raise PKIError(
                Reason.BAD_CREDENTIAL, f"{source}: KeyNote assertion {n} signature does not verify"
            )
    return assertions


def _strings(node: object, constants: dict[str, str]) -> Iterator[str]:
    """The principal strings of a Licensees expression, left to right."""
    if isinstance(node, kn_ast.Str):
        yield node.value
    elif isinstance(node, kn_ast.Name):
        if node.name in constants:
            yield constants[node.name]
    elif isinstance(node, tuple | list):
        for item in node:
            yield from _strings(item, constants)
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        for f in dataclasses.fields(node):
            if f.name not in ("pos", "raw"):
                yield from _strings(getattr(node, f.name), constants)


def _cryptography_key(key: kn_keys.PublicKey | None) -> rsa.RSAPublicKey | None:
    if not isinstance(key, kn_keys.RSAPublicKey):
        return None
    try:
        return rsa.RSAPublicNumbers(key.e, key.n).public_key()
    except ValueError:
        return None


def credential_key(assertions: Sequence[str]) -> rsa.RSAPublicKey | None:
    """The peer's key from its credentials: the first RSA licensee of the last assertion.

    This is the key isakmpd's keynote_cert_get_key uses to check the peer's SIG payload.
    """
    if not assertions:
        return None
    try:
        parsed = parse_text(assertions[-1], "peer credentials")
    except KeyNoteError:
        return None
    if not parsed or isinstance(parsed[-1].licensees, kn_ast.Empty):
        return None
    last = parsed[-1]
    for principal in _strings(last.licensees, dict(last.local_constants)):
        try:
            key = _cryptography_key(kn_keys.decode_key(principal))
        except (kn_keys.KeyFormatError, ValueError):
            continue
        if key is not None:
            return key
    return None


def parse_keynote_private_key(text: str, path: str) -> rsa.RSAPrivateKey:
    """A Credential-directory private_key file: "private-rsa-hex:..." as keynote keygen writes."""
    try:
        value = read_key_file(text, path) if text.lstrip().startswith(('"', "#")) else text
        key = kn_keys.decode_private_key(value.strip())
    except (EnvFileError, kn_keys.KeyFormatError, ValueError) as exc:
        raise PKIError(
            Reason.UNREADABLE, f"{path}: not a KeyNote RSA private key ({exc})", path=path
        ) from exc
    if not isinstance(key, kn_keys.RSAPrivateKey):
        raise PKIError(Reason.UNSUPPORTED, f"{path}: not an RSA key", path=path)
    try:
        return rsa.RSAPrivateNumbers(
            key.p, key.q, key.d, key.dp, key.dq, key.qinv, rsa.RSAPublicNumbers(key.e, key.n)
        ).private_key()
    except ValueError as exc:
        raise PKIError(
            Reason.UNREADABLE, f"{path}: inconsistent RSA key ({exc})", path=path
        ) from exc


def prime_session(
    session: SessionLike,
    principals: Sequence[str],
    assertions: Sequence[str] = (),
    credentials: Sequence[str] = (),
    source: str = "peer",
) -> None:
    """Give a KeyNote session what phase 1 learnt: chain assertions are local (trusted), the
    peer's credentials untrusted (they count only signed), and the principals are authorizers.
    """
    for text in assertions:
        session.add_assertions(text, trusted=True, source=f"{source} certificate chain")
    for text in credentials:
        session.add_assertions(text, trusted=False, source=f"{source} credentials")
    for principal in principals:
        session.add_authorizer(principal)

"""KeyNote assertion signatures as RFC 2704, RFC 2792 and RFC 5708 define them.

What is signed (RFC 2704 4.6.7, RFC 2792 4, RFC 5708 4): the assertion text
from the name of its first field up to, not including, the `Signature`
keyword, followed by the signature algorithm name as written in the signature
value, up to and including its colon.  libkeynote starts at the first
non-white-space byte instead, so it also signs `#` comment lines before the
first field (reference/keynote.md 3.4); signatures are made as the RFCs say,
and either region verifies.

How, for every identifier of the IANA KeyNote registry:

* `sig-rsa-<hash>-*` (RFC 2792 4.2; RFC 5708 5 adds sha256, sha512 and
  ripemd160 to md5 and sha1): the RFC says the signature is "encoded as an ASN1
  OCTET STRING object, containing the signature value" and names no padding.
  libkeynote, by the same authors, reads that as PKCS#1 v1.5 type 1 padding
  around a DER `OCTET STRING` holding the digest (no DigestInfo), the raw RSA
  output being what is ASCII-encoded (`RSA_sign_ASN1_OCTET_STRING`); every
  deployed credential is made that way, so that is the construction here, for
  every hash.
* `sig-dsa-sha1-*` (RFC 2792 4.1): DER `SEQUENCE { r, s }` over the SHA-1
  digest.  The RFCs define no other DSA hash.
* `sig-x509-<hash>-*` (RFC 5708 4, 5; sha1, sha256, sha512, ripemd160): the
  RFC makes them identical to the RSA or DSA signature of RFC 2792 for the key
  the certificate carries.  libkeynote differs for sha1, the only one it has:
  it signs with `RSA_sign(NID_shaWithRSAEncryption)`, a DigestInfo naming OID
  1.3.14.3.2.15.  Signatures are made as the RFC says; a `sig-x509-sha1`
  signature in libkeynote's form is still accepted, so credentials it made
  keep verifying.

RIPEMD-160 comes from `hashlib` (OpenSSL); where OpenSSL lacks it, signing
raises SignatureError naming the hash and verification answers False.

Verification is pure Python (RSA and DSA public operations are a few modular
exponentiations), so checking a credential imports nothing heavy; signing and
X.509 certificates use `cryptography`.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from dataclasses import dataclass

from keynote.envfile import scan_string
from keynote.errors import KeyNoteError, KeyNoteSyntaxError
from keynote.fields import LineMap, chunks
from keynote.fields import split_assertion as split_fields
from keynote.keys import (
    DSAPrivateKey,
    DSAPublicKey,
    Encoding,
    KeyFormatError,
    PrivateKey,
    RSAPrivateKey,
    RSAPublicKey,
    decode_ascii,
    decode_key,
    decode_private_key,
    der_int_sequence,
    encode_ascii,
    parse_der_int_sequence,
)

__all__ = [
    "AssertionText",
    "SigResult",
    "SignatureError",
    "SignatureSpec",
    "check_assertion",
    "parse_signature_algorithm",
    "sign_assertion",
    "signed_bytes",
    "split_assertion",
    "verify_assertion",
    "verify_assertion_cached",
    "verify_signature",
]


class SignatureError(KeyNoteError, ValueError):
    """An assertion cannot be signed or checked (bad structure, algorithm or key)."""


class SigResult(enum.IntEnum):
    """Outcome of a signature check, numbered as libkeynote's SIGRESULT_*."""

    UNTOUCHED = 0
    FALSE = 1
    TRUE = 2


class SigKey(enum.Enum):
    """Key family a signature algorithm needs (RSA and X.509 keys are interchangeable)."""

    RSA = "rsa"
    DSA = "dsa"
    X509 = "x509"


@dataclass(frozen=True)
class SignatureSpec:
    """A parsed signature algorithm identifier such as `sig-rsa-sha1-hex:`."""

    name: str  # as written, with its colon: part of the signed bytes
    key: SigKey
    hash_name: str
    encoding: Encoding


# The hash keywords each signature family admits (RFC 2792 4.1/4.2, RFC 5708 5, IANA registry).
_ALLOWED = {
    SigKey.RSA: ("md5", "sha1", "sha256", "sha512", "ripemd160"),
    SigKey.DSA: ("sha1",),
    SigKey.X509: ("sha1", "sha256", "sha512", "ripemd160"),
}

# libkeynote's sig-x509-sha1 (RSA_sign with NID 42): DigestInfo prefix naming the OIW
# shaWithRSAEncryption OID 1.3.14.3.2.15 with NULL parameters, before the 20-byte digest.
_LIBKEYNOTE_X509_SHA1 = bytes.fromhex("3021300906052b0e03020f05000414")


def parse_signature_algorithm(text: str) -> SignatureSpec:
    """Parse the `sig-<key>-<hash>-<hex|base64>:` prefix of a signature (any case)."""
    colon = text.find(":")
    if colon < 0:
        raise SignatureError("signature algorithm name must end with ':'")
    name = text[: colon + 1]
    parts = name[:-1].lower().split("-")
    if len(parts) != 4 or parts[0] != "sig":
        raise SignatureError(f"unknown signature algorithm {name!r}")
    try:
        key = SigKey(parts[1])
        encoding = {"hex": Encoding.HEX, "base64": Encoding.BASE64}[parts[3]]
    except (ValueError, KeyError):
        raise SignatureError(f"unknown signature algorithm {name!r}") from None
    if parts[2] not in _ALLOWED[key]:
        raise SignatureError(f"unsupported signature algorithm {name!r}")
    return SignatureSpec(name, key, parts[2], encoding)


# --- assertion structure (the parser's field split; here only the signed region and two fields)


@dataclass(frozen=True)
class AssertionText:
    """Field boundaries of the first assertion of a text."""

    text: str
    start: int  # first non-white-space character: libkeynote's signed region begins here
    end: int  # end of the assertion (blank line or end of text)
    values: dict[str, str]  # lower-case field name -> raw value text (after the colon)
    signature_offset: int | None  # the `Signature` keyword: the signed region ends here
    first_field: int  # the first field's name: the RFC's signed region begins here


def split_assertion(text: str, source: str = "<assertion>") -> AssertionText:
    """Split the first assertion of `text` into fields (RFC 2704 4.1, keynote.fields).

    Raises SignatureError (with `source:line:col`) when the structure is bad.
    """
    first = next(chunks(text), None)
    if first is None:
        raise SignatureError(f"{source}: empty assertion")
    try:
        raw = split_fields(text, first, source, LineMap(text))
    except KeyNoteSyntaxError as exc:
        raise SignatureError(str(exc)) from None
    values = {f.name.lower(): raw.value(f) for f in raw.fields}
    signature = raw.field("Signature")
    offset = None if signature is None else signature.start
    first_field = raw.fields[0].start if raw.fields else raw.start
    return AssertionText(text, raw.start, raw.end, values, offset, first_field)


class _StrEx:
    """Evaluate the string expressions of Authorizer and Signature (literals, names, `.`, `$`)."""

    def __init__(self, text: str, constants: dict[str, str]) -> None:
        self.text = text
        self.pos = 0
        self.constants = constants

    def _skip(self) -> None:
        text = self.text
        while self.pos < len(text):
            if text[self.pos].isspace():
                self.pos += 1
            elif text[self.pos] == "#":
                nl = text.find("\n", self.pos)
                self.pos = len(text) if nl < 0 else nl
            else:
                break

    def _name(self) -> str | None:
        text = self.text
        i = self.pos
        if i < len(text) and (text[i].isalpha() or text[i] == "_") and text[i].isascii():
            j = i + 1
            while j < len(text) and (text[j].isalnum() or text[j] == "_") and text[j].isascii():
                j += 1
            self.pos = j
            return text[i:j]
        return None

    def _primary(self) -> str:
        derefs = 0  # `$$$x`: counted, not recursed, so any depth is safe
        while True:
            self._skip()
            if self.pos >= len(self.text):
                raise SignatureError("missing value")
            if self.text[self.pos] != "$":
                break
            derefs += 1
            self.pos += 1
        c = self.text[self.pos]
        if c == '"':
            try:
                value, self.pos = scan_string(self.text, self.pos)
            except ValueError as exc:
                raise SignatureError(str(exc)) from None
        else:
            name = self._name()
            if name is None:
                raise SignatureError(f"unexpected {c!r}")
            value = self.constants.get(name, "")
        for _ in range(derefs):
            value = self.constants.get(value, "")
        return value

    def value(self) -> str:
        parts = [self._primary()]
        self._skip()
        while self.pos < len(self.text) and self.text[self.pos] == ".":
            self.pos += 1
            parts.append(self._primary())
            self._skip()
        if self.pos < len(self.text):
            raise SignatureError(f"unexpected {self.text[self.pos]!r}")
        return "".join(parts)


def _local_constants(text: str) -> dict[str, str]:
    ev = _StrEx(text, {})
    result: dict[str, str] = {}
    while True:
        ev._skip()
        if ev.pos >= len(text):
            return result
        name = ev._name()
        ev._skip()
        if name is None or ev.pos >= len(text) or text[ev.pos] != "=":
            raise SignatureError("bad Local-Constants assignment")
        ev.pos += 1
        ev._skip()
        if ev.pos >= len(text) or text[ev.pos] != '"':
            raise SignatureError("Local-Constants value must be a string literal")
        try:
            result[name], ev.pos = scan_string(text, ev.pos)
        except ValueError as exc:
            raise SignatureError(str(exc)) from None


def _field_value(parsed: AssertionText, name: str) -> str:
    constants = _local_constants(parsed.values.get("local-constants", ""))
    return _StrEx(parsed.values[name], constants).value()


def _regions(parsed: AssertionText) -> list[bytes]:
    """The signed regions without the algorithm name: the RFC's first, then libkeynote's.

    RFC 2704 4.6.7, RFC 2792 4 and RFC 5708 4 start at the first field name;
    libkeynote starts at the first non-white-space byte, so `#` comment lines
    before the first field are signed there too.  The two differ only then.
    """
    stop = parsed.signature_offset
    if stop is None:
        raise SignatureError("assertion has no Signature field")
    starts = [parsed.first_field]
    if parsed.start != parsed.first_field:
        starts.append(parsed.start)
    return [parsed.text[start:stop].encode("utf-8", "surrogateescape") for start in starts]


def signed_bytes(parsed: AssertionText, algorithm_name: str) -> bytes:
    """The bytes a signature covers (RFC 2792 4): first field..`Signature`, then the name."""
    return _regions(parsed)[0] + algorithm_name.encode("utf-8", "surrogateescape")


# --- RSA / DSA primitives ------------------------------------------------------------------


def _digest(hash_name: str, data: bytes) -> bytes:
    try:
        return hashlib.new(hash_name, data).digest()
    except ValueError:  # e.g. ripemd160 where OpenSSL 3 has no legacy provider
        raise SignatureError(
            f"hash function {hash_name} is not available here (hashlib/OpenSSL lack it)"
        ) from None


def _rsa_payloads(spec: SignatureSpec, digest: bytes) -> list[bytes]:
    """The DER payloads accepted under the PKCS#1 type-1 padding; the first is what we sign.

    RFC 2792 4.2 / RFC 5708 4: DER `OCTET STRING(digest)` for sig-rsa and
    sig-x509 alike; libkeynote's DigestInfo form is accepted for sig-x509-sha1.
    """
    payloads = [bytes([0x04, len(digest)]) + digest]
    if spec.key is SigKey.X509 and spec.hash_name == "sha1":
        payloads.append(_LIBKEYNOTE_X509_SHA1 + digest)
    return payloads


def _pkcs1_type1(payload: bytes, k: int) -> bytes:
    if len(payload) + 11 > k:
        raise SignatureError("RSA key too small for this digest")
    return b"\x00\x01" + b"\xff" * (k - len(payload) - 3) + b"\x00" + payload


def _rsa_verify(key: RSAPublicKey, payloads: list[bytes], sig: bytes) -> bool:
    k = (key.n.bit_length() + 7) // 8
    if len(sig) != k:
        return False
    s = int.from_bytes(sig, "big")
    if s >= key.n:
        return False
    em = pow(s, key.e, key.n).to_bytes(k, "big")
    for payload in payloads:
        try:
            expected = _pkcs1_type1(payload, k)
        except SignatureError:
            return False
        if hmac.compare_digest(em, expected):
            return True
    return False


def _rsa_sign(key: RSAPrivateKey, payload: bytes) -> bytes:
    k = (key.n.bit_length() + 7) // 8
    m = int.from_bytes(_pkcs1_type1(payload, k), "big")
    # CRT private operation, checked against the public exponent (fault safety).
    m1 = pow(m, key.dp, key.p)
    m2 = pow(m, key.dq, key.q)
    s = (m2 + key.q * ((key.qinv * (m1 - m2)) % key.p)) % key.n
    if pow(s, key.e, key.n) != m:
        raise SignatureError("RSA private key is inconsistent")
    return s.to_bytes(k, "big")


def _dsa_hash_int(digest: bytes, q: int) -> int:
    value = int.from_bytes(digest, "big")
    excess = len(digest) * 8 - q.bit_length()
    return value >> excess if excess > 0 else value


def _dsa_verify(key: DSAPublicKey, digest: bytes, sig: bytes) -> bool:
    try:
        ints = parse_der_int_sequence(sig)
    except KeyFormatError:
        return False
    if len(ints) != 2:
        return False
    r, s = ints
    if not (0 < r < key.q and 0 < s < key.q):
        return False
    try:
        w = pow(s, -1, key.q)
    except ValueError:  # q is not prime: a forged or broken key
        return False
    u1 = _dsa_hash_int(digest, key.q) * w % key.q
    u2 = r * w % key.q
    v = pow(key.g, u1, key.p) * pow(key.y, u2, key.p) % key.p % key.q
    return v == r


def _dsa_sign(key: DSAPrivateKey, digest: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import dsa, utils

    params = dsa.DSAParameterNumbers(key.p, key.q, key.g)
    # Prehashed only checks the length; OpenSSL truncates the digest to q, as _dsa_verify.
    algorithm = {20: hashes.SHA1(), 32: hashes.SHA256(), 64: hashes.SHA512()}[len(digest)]
    try:
        private = dsa.DSAPrivateNumbers(key.x, dsa.DSAPublicNumbers(key.y, params)).private_key()
        der = private.sign(digest, utils.Prehashed(algorithm))
    except ValueError as exc:
        raise SignatureError(f"unusable DSA private key: {exc}") from None
    r, s = utils.decode_dss_signature(der)
    return der_int_sequence([r, s])  # re-encode: the same DER OpenSSL's DSA_sign writes


# --- public API ------------------------------------------------------------------------------


def verify_signature(data: bytes, signature: str, principal: str) -> bool:
    """Check `signature` (`sig-...:<bits>`) over `data` (the region before the name) by `principal`.

    `data` is the signed region without the algorithm name; the name as written
    in `signature` is appended here.  False for any malformed input.
    """
    try:
        spec = parse_signature_algorithm(signature)
        key = decode_key(principal)
        sig = decode_ascii(signature[len(spec.name) :], spec.encoding)
        digest = _digest(spec.hash_name, data + spec.name.encode("utf-8", "surrogateescape"))
    except (SignatureError, KeyFormatError):
        return False
    # sig-x509 goes with whichever key the certificate carries (RFC 5708 4).
    if isinstance(key, RSAPublicKey) and spec.key is not SigKey.DSA:
        return _rsa_verify(key, _rsa_payloads(spec, digest), sig)
    if isinstance(key, DSAPublicKey) and spec.key is not SigKey.RSA:
        return _dsa_verify(key, digest, sig)
    return False


def check_assertion(raw_text: str, source: str = "<assertion>") -> SigResult:
    """Verify the signature of one assertion by its Authorizer (like `kn_verify_assertion`).

    SigResult.TRUE or SigResult.FALSE (unsigned, wrong key, tampered, unknown
    algorithm); raises SignatureError when the assertion's structure is bad.
    """
    parsed = split_assertion(raw_text, source)
    if parsed.signature_offset is None:
        return SigResult.FALSE
    authorizer = _field_value(parsed, "authorizer")
    signature = _field_value(parsed, "signature")
    ok = any(verify_signature(data, signature, authorizer) for data in _regions(parsed))
    return SigResult.TRUE if ok else SigResult.FALSE


def verify_assertion(raw_text: str) -> bool:
    """True when the whole raw assertion carries a good signature by its Authorizer."""
    try:
        return check_assertion(raw_text) is SigResult.TRUE
    except SignatureError:
        return False


VERIFIED_CACHE_SIZE = 4096
"""How many verification outcomes ``verify_assertion_cached`` remembers (oldest go first)."""
_verified: dict[bytes, bool] = {}


def verify_assertion_cached(raw_text: str) -> bool:
    """``verify_assertion``, remembered process-wide by the SHA-256 of the exact raw text.

    The verdict depends on nothing but that text (key, signed fields and signature are all in
    it), so a credential checked when it arrived (pki) is a dictionary hit when a policy
    session later needs it; any other text, down to one byte, is verified afresh."""
    key = hashlib.sha256(raw_text.encode("utf-8", "surrogatepass")).digest()
    known = _verified.get(key)
    if known is not None:
        return known
    good = verify_assertion(raw_text)
    if len(_verified) >= VERIFIED_CACHE_SIZE:
        _verified.pop(next(iter(_verified)), None)
    _verified[key] = good
    return good


def _load_x509_private(text: str) -> PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import dsa, rsa

    try:
        loaded = serialization.load_pem_private_key(text.encode(), password=None)
    except Exception as exc:  # ValueError, TypeError (encrypted), UnsupportedAlgorithm...
        raise SignatureError(f"bad PEM private key: {exc}") from None
    if isinstance(loaded, dsa.DSAPrivateKey):  # RFC 5708 3: a certificate may carry DSA
        dnums = loaded.private_numbers()
        dpub = dnums.public_numbers
        par = dpub.parameter_numbers
        return DSAPrivateKey(par.p, par.q, par.g, dpub.y, dnums.x)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise SignatureError("sig-x509 needs an RSA or DSA private key")
    nums = loaded.private_numbers()
    pub = nums.public_numbers
    return RSAPrivateKey(pub.n, pub.e, nums.d, nums.p, nums.q, nums.dmp1, nums.dmq1, nums.iqmp)


def _load_private(spec: SignatureSpec, private_key_text: str) -> PrivateKey:
    text = private_key_text.strip()
    if spec.key is SigKey.X509 and "-----BEGIN" in text:
        return _load_x509_private(text)
    if text.startswith('"') or text.startswith("#"):
        from keynote.envfile import EnvFileError, read_key_file

        try:
            text = read_key_file(text)
        except EnvFileError as exc:
            raise SignatureError(str(exc)) from None
    try:
        return decode_private_key(text)
    except KeyFormatError as exc:
        raise SignatureError(str(exc)) from None


def _check_authorizer_family(parsed: AssertionText, key: PrivateKey) -> None:
    """Refuse a private key of another family than the Authorizer's key, as libkeynote does."""
    try:
        authorizer = decode_key(_field_value(parsed, "authorizer"))
    except (SignatureError, KeyFormatError, KeyError):
        return  # no usable key to compare with: the signature will simply not verify
    want = {RSAPublicKey: "an RSA", DSAPublicKey: "a DSA"}.get(type(authorizer))
    have = RSAPublicKey if isinstance(key, RSAPrivateKey) else DSAPublicKey
    if want is not None and not isinstance(authorizer, have):
        raise SignatureError(f"the Authorizer is {want} key; this private key is not")


def sign_assertion(
    raw_text: str, algorithm: str, private_key_text: str, source: str = "<assertion>"
) -> str:
    """Sign an assertion that has a (possibly empty) Signature field; return `sig-...:<bits>`.

    `algorithm` is e.g. `sig-rsa-sha1-hex:`; `private_key_text` is a
    `private-rsa-*`/`private-dsa-*` key string (bare or quoted as keygen writes
    it), or for `sig-x509-*` also a PEM RSA or DSA private key.  Raises
    SignatureError for an unknown algorithm, a key of the wrong family, or a
    hash this system lacks (ripemd160 without OpenSSL's legacy provider).
    """
    spec = parse_signature_algorithm(algorithm)
    if spec.name != algorithm:
        raise SignatureError(f"unexpected text after the algorithm name in {algorithm!r}")
    key = _load_private(spec, private_key_text)
    parsed = split_assertion(raw_text, source)
    _check_authorizer_family(parsed, key)
    digest = _digest(spec.hash_name, signed_bytes(parsed, spec.name))
    if isinstance(key, RSAPrivateKey):
        if spec.key is SigKey.DSA:
            raise SignatureError(f"{spec.name} needs a DSA key")
        sig = _rsa_sign(key, _rsa_payloads(spec, digest)[0])
    else:
        if spec.key is SigKey.RSA:
            raise SignatureError(f"{spec.name} needs an RSA key")
        sig = _dsa_sign(key, digest)
    return spec.name + encode_ascii(sig, spec.encoding)

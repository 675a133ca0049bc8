"""KeyNote principals and keys (RFC 2792, RFC 5708, libkeynote `signature.c`).

A principal is either a key, written `<algorithm>:<encoded DER>`, or an opaque
string.  Keys are compared by value, not by spelling: the hex and base64 forms
of one key are the same principal, and an RSA or DSA key is the same principal
as an X.509 certificate carrying it (RFC 5708 3).  `canonical_principal` maps
every spelling of a key to one string so that callers can compare principals
with `==` and use them as dictionary keys.

The DER structures libkeynote uses are plain SEQUENCEs of INTEGERs (RSA public
`{n, e}`, DSA public `{y, p, q, g}`, RSA private PKCS#1, DSA private
`{0, p, q, g, y, x}`), decoded here without any import so that `keynote verify`
starts fast; X.509 certificates are decoded with `cryptography` on demand.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
from dataclasses import dataclass

from keynote.errors import KeyNoteError

__all__ = [
    "Algorithm",
    "BinaryKey",
    "DSAPrivateKey",
    "DSAPublicKey",
    "Encoding",
    "Key",
    "KeyFormatError",
    "PrivateKey",
    "PublicKey",
    "RSAPrivateKey",
    "RSAPublicKey",
    "canonical_principal",
    "decode_ascii",
    "decode_key",
    "decode_private_key",
    "der_int_sequence",
    "encode_ascii",
    "encode_key",
    "encode_private_key",
    "is_key",
    "layout_key",
    "parse_der_int_sequence",
]


class KeyFormatError(KeyNoteError, ValueError):
    """A string names a key algorithm but its encoded bits do not decode to a key."""


class Algorithm(enum.IntEnum):
    """Key algorithms, numbered as libkeynote's KEYNOTE_ALGORITHM_* constants."""

    NONE = 0
    DSA = 1
    BINARY = 4
    X509 = 5
    RSA = 6


class Encoding(enum.IntEnum):
    """ASCII encodings of key bits, numbered as libkeynote's ENCODING_* constants."""

    HEX = 1
    BASE64 = 2


# Public-key prefixes (matched case-insensitively, as `strncasecmp` does).
_PUBLIC_PREFIXES: dict[str, tuple[Algorithm, Encoding]] = {
    "rsa-hex:": (Algorithm.RSA, Encoding.HEX),
    "rsa-base64:": (Algorithm.RSA, Encoding.BASE64),
    "dsa-hex:": (Algorithm.DSA, Encoding.HEX),
    "dsa-base64:": (Algorithm.DSA, Encoding.BASE64),
    "x509-hex:": (Algorithm.X509, Encoding.HEX),
    "x509-base64:": (Algorithm.X509, Encoding.BASE64),
    "binary-hex:": (Algorithm.BINARY, Encoding.HEX),
    "binary-base64:": (Algorithm.BINARY, Encoding.BASE64),
}
_PRIVATE_PREFIXES: dict[str, tuple[Algorithm, Encoding]] = {
    "private-" + name: value
    for name, value in _PUBLIC_PREFIXES.items()
    if value[0] in (Algorithm.RSA, Algorithm.DSA)
}


@dataclass(frozen=True)
class RSAPublicKey:
    """PKCS#1 RSAPublicKey; also what an `x509-*` principal with an RSA key reduces to."""

    n: int
    e: int


@dataclass(frozen=True)
class DSAPublicKey:
    """DSA public key in RFC 2792 order `{y, p, q, g}` (also from an `x509-*` DSA certificate)."""

    y: int
    p: int
    q: int
    g: int


@dataclass(frozen=True)
class BinaryKey:
    """RFC 2792 section 3.3 binary principal: compared byte for byte."""

    data: bytes


@dataclass(frozen=True)
class RSAPrivateKey:
    """PKCS#1 RSAPrivateKey (the `private-rsa-*` key files)."""

    n: int
    e: int
    d: int
    p: int
    q: int
    dp: int
    dq: int
    qinv: int

    def public(self) -> RSAPublicKey:
        """The matching public key."""
        return RSAPublicKey(self.n, self.e)


@dataclass(frozen=True)
class DSAPrivateKey:
    """OpenSSL DSAPrivateKey `{0, p, q, g, y, x}` (the `private-dsa-*` key files)."""

    p: int
    q: int
    g: int
    y: int
    x: int

    def public(self) -> DSAPublicKey:
        """The matching public key."""
        return DSAPublicKey(self.y, self.p, self.q, self.g)


PublicKey = RSAPublicKey | DSAPublicKey | BinaryKey
PrivateKey = RSAPrivateKey | DSAPrivateKey
Key = PublicKey


# --- DER (only what KeyNote keys need: SEQUENCE and INTEGER) ---------------------------------

_TAG_INTEGER = 0x02
_TAG_SEQUENCE = 0x30


def _read_tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """Read one DER TLV at `pos`; return (tag, content start, content end)."""
    if pos + 2 > len(data):
        raise KeyFormatError("truncated DER element")
    tag = data[pos]
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise KeyFormatError("bad DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise KeyFormatError("DER element runs past the end of the key")
    return tag, pos, pos + length


def parse_der_int_sequence(data: bytes) -> list[int]:
    """Decode `SEQUENCE { INTEGER ... }` filling all of `data`."""
    tag, start, end = _read_tlv(data, 0)
    if tag != _TAG_SEQUENCE:
        raise KeyFormatError("key is not a DER SEQUENCE")
    if end != len(data):
        raise KeyFormatError("trailing bytes after the key")
    values: list[int] = []
    pos = start
    while pos < end:
        tag, istart, iend = _read_tlv(data, pos)
        if tag != _TAG_INTEGER or iend == istart or iend > end:
            raise KeyFormatError("key SEQUENCE holds something other than INTEGERs")
        values.append(int.from_bytes(data[istart:iend], "big", signed=True))
        pos = iend
    return values


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der_integer(value: int) -> bytes:
    size = value.bit_length() // 8 + 1  # room for the sign bit
    raw = value.to_bytes(size, "big", signed=True)
    return bytes([_TAG_INTEGER]) + _der_length(len(raw)) + raw


def der_int_sequence(values: list[int]) -> bytes:
    """Encode `SEQUENCE { INTEGER ... }` in DER (minimal lengths and integers)."""
    body = b"".join(_der_integer(v) for v in values)
    return bytes([_TAG_SEQUENCE]) + _der_length(len(body)) + body


# --- ASCII encodings ----------------------------------------------------------------------------

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def decode_ascii(text: str, encoding: Encoding) -> bytes:
    """Decode the hex or base64 part of a key or signature string."""
    if encoding is Encoding.HEX:
        if len(text) % 2:
            raise KeyFormatError("hex encoding has an odd number of digits")
        if not all(c in _HEX_DIGITS for c in text):
            raise KeyFormatError("invalid hex digits")
        return bytes.fromhex(text)
    compact = "".join(text.split())  # b64_pton skips white space
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyFormatError("invalid base64 encoding") from exc


def encode_ascii(data: bytes, encoding: Encoding) -> str:
    """Encode bytes as libkeynote writes them (lowercase hex, or padded base64)."""
    if encoding is Encoding.HEX:
        return data.hex()
    return base64.b64encode(data).decode("ascii")


# --- principals -----------------------------------------------------------------------------


def _split_prefix(
    text: str, table: dict[str, tuple[Algorithm, Encoding]]
) -> tuple[str, Algorithm, Encoding] | None:
    colon = text.find(":")
    if colon < 0:
        return None
    prefix = text[: colon + 1].lower()
    found = table.get(prefix)
    if found is None:
        return None
    return text[colon + 1 :], found[0], found[1]


def is_key(text: str) -> bool:
    """True when `text` starts with a public-key algorithm prefix (it is not opaque)."""
    return _split_prefix(text, _PUBLIC_PREFIXES) is not None


def _key_from_certificate(der: bytes) -> RSAPublicKey | DSAPublicKey:
    """The subject key of a DER certificate in its RFC 2792 normalized form (RFC 5708 3).

    RFC 5708 allows RSA and DSA subject keys; libkeynote takes only RSA.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import dsa, rsa

    try:
        cert = x509.load_der_x509_certificate(der)
        public = cert.public_key()
    except Exception as exc:  # bad DER gives ValueError, InvalidVersion, UnsupportedAlgorithm...
        raise KeyFormatError(f"invalid X.509 certificate: {exc}") from None
    if isinstance(public, dsa.DSAPublicKey):
        dnums = public.public_numbers()
        par = dnums.parameter_numbers
        return DSAPublicKey(dnums.y, par.p, par.q, par.g)
    if not isinstance(public, rsa.RSAPublicKey):
        raise KeyFormatError("X.509 certificate carries neither an RSA nor a DSA key")
    numbers = public.public_numbers()
    return RSAPublicKey(numbers.n, numbers.e)


def decode_key(text: str) -> PublicKey | None:
    """Decode a public principal; None for an opaque (non-key) string.

    Raises KeyFormatError when the algorithm prefix is known but the bits are bad.
    """
    split = _split_prefix(text, _PUBLIC_PREFIXES)
    if split is None:
        return None
    body, algorithm, encoding = split
    der = decode_ascii(body, encoding)
    if algorithm is Algorithm.BINARY:
        return BinaryKey(der)
    if algorithm is Algorithm.X509:
        return _key_from_certificate(der)
    ints = parse_der_int_sequence(der)
    if algorithm is Algorithm.RSA:
        if len(ints) != 2 or ints[0] <= 0 or ints[1] <= 0:
            raise KeyFormatError("RSA key is not SEQUENCE { modulus, publicExponent }")
        return RSAPublicKey(ints[0], ints[1])
    if len(ints) != 4 or min(ints) <= 0:
        raise KeyFormatError("DSA key is not SEQUENCE { y, p, q, g }")
    return DSAPublicKey(*ints)


def decode_private_key(text: str) -> PrivateKey:
    """Decode a `private-rsa-*` / `private-dsa-*` key string (as keygen writes them)."""
    split = _split_prefix(text, _PRIVATE_PREFIXES)
    if split is None:
        raise KeyFormatError("not a private-rsa-hex/base64 or private-dsa-hex/base64 key")
    body, algorithm, encoding = split
    ints = parse_der_int_sequence(decode_ascii(body, encoding))
    if algorithm is Algorithm.RSA:
        if len(ints) != 9 or ints[0] != 0 or min(ints[1:]) <= 0:
            raise KeyFormatError("RSA private key is not a PKCS#1 RSAPrivateKey")
        return RSAPrivateKey(*ints[1:])
    if len(ints) != 6 or ints[0] != 0 or min(ints[1:]) <= 0:
        raise KeyFormatError("DSA private key is not SEQUENCE { 0, p, q, g, y, x }")
    return DSAPrivateKey(*ints[1:])


def encode_key(key: PublicKey, encoding: Encoding = Encoding.HEX) -> str:
    """The principal string of a public key (`rsa-hex:...`, `dsa-base64:...`, ...)."""
    enc = "hex" if encoding is Encoding.HEX else "base64"
    if isinstance(key, RSAPublicKey):
        return f"rsa-{enc}:" + encode_ascii(der_int_sequence([key.n, key.e]), encoding)
    if isinstance(key, DSAPublicKey):
        der = der_int_sequence([key.y, key.p, key.q, key.g])
        return f"dsa-{enc}:" + encode_ascii(der, encoding)
    return f"binary-{enc}:" + encode_ascii(key.data, encoding)


def encode_private_key(key: PrivateKey, encoding: Encoding = Encoding.HEX) -> str:
    """The `private-...` string of a private key, as keygen writes it."""
    enc = "hex" if encoding is Encoding.HEX else "base64"
    if isinstance(key, RSAPrivateKey):
        ints = [0, key.n, key.e, key.d, key.p, key.q, key.dp, key.dq, key.qinv]
        return f"private-rsa-{enc}:" + encode_ascii(der_int_sequence(ints), encoding)
    ints = [0, key.p, key.q, key.g, key.y, key.x]
    return f"private-dsa-{enc}:" + encode_ascii(der_int_sequence(ints), encoding)


@functools.lru_cache(maxsize=4096)
def canonical_principal(text: str) -> str:
    """One spelling per principal, so principals compare with `==`.

    RSA keys and X.509 certificates with RSA keys become `rsa-hex:<DER {n, e}>`,
    DSA keys and certificates with DSA keys (RFC 5708 3) `dsa-hex:<DER {y, p,
    q, g}>`, binary keys `binary-hex:<bytes>`, all in lowercase minimal DER hex.
    Opaque strings (no known key prefix) come back unchanged, so they compare
    exactly (RFC 2704 section 5.2).  A known prefix with undecodable bits raises
    KeyFormatError, as `kn_decode_key` fails.
    """
    key = decode_key(text)
    if key is None:
        return text
    return encode_key(key, Encoding.HEX)


def layout_key(algname: str, key: str, offset: int = 12, length: int = 50) -> str:
    """Lay a key or signature out as libkeynote's `print_key` does (keynote.md 3.6).

    `offset` spaces, a quote, `algname`, then the key text split so that each
    line ends in a backslash continuation; the last line closes the quote.
    """
    first = max(length - len(algname) - 2, 0)
    pad = " " * offset
    chunks = [key[:first]]
    step = max(length - 1, 1)
    chunks.extend(key[i : i + step] for i in range(first, len(key), step))
    return pad + '"' + algname + ("\\\n" + pad).join(chunks) + '"\n'

"""IKE identities against certificates, file names for raw keys, and DNs as isakmpd prints them.

ID types are plain ints (the IPsec DOI numbers of RFC 2407 4.6.2.1) so that pki needs nothing from
ike; ike.doi.constants.IdType values compare equal to the members of IdType below.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from cryptography import x509
from pyasn1.codec.der import decoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ

from pki.errors import PKIError, Reason


class IdType(IntEnum):
    """IPsec DOI identification types (RFC 2407 4.6.2.1), named as there."""

    IPV4_ADDR = 1
    FQDN = 2
    USER_FQDN = 3
    IPV4_ADDR_SUBNET = 4
    IPV6_ADDR = 5
    IPV6_ADDR_SUBNET = 6
    IPV4_ADDR_RANGE = 7
    IPV6_ADDR_RANGE = 8
    DER_ASN1_DN = 9
    DER_ASN1_GN = 10
    KEY_ID = 11


def id_type_name(id_type: int) -> str:
    """The RFC name of an ID type, or its number, for messages."""
    try:
        return IdType(id_type).name
    except ValueError:
        return str(id_type)


# OpenSSL short names (OBJ_nid2sn) for the attribute types seen in IKE certificates; others are
# printed as dotted OIDs, as X509_NAME_oneline does for objects without a short name.
_SHORT_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.4": "SN",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "street",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.12": "title",
    "2.5.4.13": "description",
    "2.5.4.15": "businessCategory",
    "2.5.4.17": "postalCode",
    "2.5.4.41": "name",
    "2.5.4.42": "GN",
    "2.5.4.43": "initials",
    "2.5.4.44": "generationQualifier",
    "2.5.4.46": "dnQualifier",
    "2.5.4.65": "pseudonym",
    "2.5.4.97": "organizationIdentifier",
    "1.2.840.113549.1.9.1": "emailAddress",
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.25": "DC",
}


@functools.lru_cache(maxsize=1024)
def _name_attributes(der: bytes) -> tuple[tuple[str, bytes], ...]:
    """Decode a DER Name into (dotted OID, raw value bytes) pairs, in order.

    Cached: the same few CA and peer names are compared and printed on every exchange.
    """
    try:
        value, rest = decoder.decode(der)
    except (PyAsn1Error, ValueError, OverflowError, TypeError, IndexError) as exc:
        # pyasn1 lets some garbage escape as plain Python errors (a huge length: OverflowError)
        raise PKIError(Reason.UNSUPPORTED, f"malformed DER distinguished name: {exc}") from exc
    if rest or not isinstance(value, univ.SequenceOf | univ.Sequence):
        raise PKIError(Reason.UNSUPPORTED, "malformed DER distinguished name: not a SEQUENCE")
    out: list[tuple[str, bytes]] = []
    for rdn in value:
        if not isinstance(rdn, univ.SetOf | univ.Set):
            raise PKIError(Reason.UNSUPPORTED, "malformed DER distinguished name: RDN not a SET")
        for ava in rdn:
            if not isinstance(ava, univ.SequenceOf | univ.Sequence) or len(ava) != 2:
                raise PKIError(Reason.UNSUPPORTED, "malformed DER distinguished name: bad AVA")
            oid, val = ava[0], ava[1]
            if not isinstance(oid, univ.ObjectIdentifier):
                raise PKIError(Reason.UNSUPPORTED, "malformed DER distinguished name: no OID")
            try:
                raw = bytes(val.asOctets())
            except (AttributeError, PyAsn1Error):
                raw = str(val).encode()
            out.append((str(oid), raw))
    return tuple(out)


def dn_string(der: bytes) -> str:
    """A DER Name as X509_NAME_oneline prints it: /C=SE/O=Org/CN=host (isakmpd's DN: form).

    Bytes outside printable ASCII are written as \\xHH, as OpenSSL does; isakmpd's 256-byte
    buffer truncation is not copied.
    """
    parts = []
    for oid, raw in _name_attributes(der):
        text = "".join(chr(b) if 0x20 <= b <= 0x7E else f"\\x{b:02X}" for b in raw)
        parts.append(f"/{_SHORT_NAMES.get(oid, oid)}={text}")
    return "".join(parts)


def name_string(name: x509.Name) -> str:
    """A certificate's subject or issuer in the DN: form."""
    return dn_string(name.public_bytes())


@functools.lru_cache(maxsize=1024)
def _normal_name(der: bytes) -> tuple[tuple[str, str], ...]:
    """Attributes with case and runs of blanks folded, for comparing DNs by meaning."""
    return tuple(
        (oid, " ".join(raw.decode("utf-8", "replace").split()).casefold())
        for oid, raw in _name_attributes(der)
    )


def dn_equal(a: bytes, b: bytes) -> bool:
    """Two DER names equal byte for byte or after folding case and blanks (RFC 5280 7.1)."""
    if a == b:
        return True
    try:
        return _normal_name(a) == _normal_name(b)
    except PKIError:
        return False


@dataclass(frozen=True)
class Identity:
    """A Phase 1 identity: the ID payload's type and identification data."""

    id_type: int
    data: bytes

    def __str__(self) -> str:
        return f"{id_type_name(self.id_type)} {id_text(self.id_type, self.data)}"


def id_text(id_type: int, data: bytes) -> str:
    """The identification data as people write it (address, name or DN)."""
    if id_type == IdType.IPV4_ADDR and len(data) == 4:
        return str(ipaddress.IPv4Address(data))
    if id_type == IdType.IPV6_ADDR and len(data) == 16:
        return ipv6_text(data)
    if id_type in (IdType.FQDN, IdType.USER_FQDN):
        return data.decode("ascii", "backslashreplace")
    if id_type == IdType.DER_ASN1_DN:
        try:
            return dn_string(data)
        except PKIError:
            pass
    return data.hex()


def ipv6_text(data: bytes) -> str:
    """An IPv6 address in getnameinfo's compressed form (the Pubkey-directory file name)."""
    addr = ipaddress.IPv6Address(data)
    mapped = addr.ipv4_mapped
    if mapped is not None:
        return f"::ffff:{mapped}"
    return addr.compressed


def _safe_component(text: str) -> str | None:
    """A peer-chosen name usable as one path component, or None (no /, NUL or leading dot)."""
    if not text or "/" in text or "\0" in text or text.startswith("."):
        return None
    return text


def id_file_name(id_type: int, data: bytes) -> str | None:
    """The local-ID name used under Private-key-directory and Credential-directory.

    Addresses in text form, FQDN and USER_FQDN verbatim, as isakmpd builds them; None for other
    types or for data that could escape the directory.
    """
    if id_type == IdType.IPV4_ADDR and len(data) == 4:
        return str(ipaddress.IPv4Address(data))
    if id_type == IdType.IPV6_ADDR and len(data) == 16:
        return ipv6_text(data)
    if id_type in (IdType.FQDN, IdType.USER_FQDN):
        try:
            return _safe_component(data.decode("ascii"))
        except UnicodeDecodeError:
            return None
    return None


_PUBKEY_SUBDIRS: dict[int, str] = {
    IdType.IPV4_ADDR: "ipv4",
    IdType.IPV6_ADDR: "ipv6",
    IdType.FQDN: "fqdn",
    IdType.USER_FQDN: "ufqdn",
}


def pubkey_relpath(id_type: int, data: bytes) -> str | None:
    """The raw public key file for an ID under Pubkey-directory: ipv4/A.B.C.D, fqdn/name, ..."""
    sub = _PUBKEY_SUBDIRS.get(id_type)
    name = id_file_name(id_type, data)
    if sub is None or name is None:
        return None
    return f"{sub}/{name}"


def certificate_identities(cert: x509.Certificate) -> list[Identity]:
    """Every identity a certificate vouches for: its subject DN, then each usable SAN entry.

    isakmpd looks at the first subjectAltName entry only; all entries are offered here.
    """
    out = [Identity(IdType.DER_ASN1_DN, cert.subject.public_bytes())]
    for entry in _san_entries(cert) or ():
        if isinstance(entry, x509.IPAddress):
            ip = entry.value
            if isinstance(ip, ipaddress.IPv4Address):
                out.append(Identity(IdType.IPV4_ADDR, ip.packed))
            elif isinstance(ip, ipaddress.IPv6Address):
                out.append(Identity(IdType.IPV6_ADDR, ip.packed))
        elif isinstance(entry, x509.DNSName):
            out.append(Identity(IdType.FQDN, entry.value.encode("ascii", "replace")))
        elif isinstance(entry, x509.RFC822Name):
            out.append(Identity(IdType.USER_FQDN, entry.value.encode("ascii", "replace")))
    return out


def _san_entries(cert: x509.Certificate) -> Sequence[x509.GeneralName] | None:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    except ValueError as exc:  # a malformed extension
        raise PKIError(Reason.UNSUPPORTED, f"unparsable certificate extensions: {exc}") from exc
    return list(ext.value)


def _same(id_type: int, want: bytes, have: bytes) -> bool:
    if id_type == IdType.FQDN:
        return want.rstrip(b".").lower() == have.rstrip(b".").lower()
    if id_type == IdType.USER_FQDN:
        wl, _, wd = want.rpartition(b"@")
        hl, _, hd = have.rpartition(b"@")
        return wl == hl and wd.lower() == hd.lower()
    if id_type == IdType.DER_ASN1_DN:
        return dn_equal(want, have)
    return want == have


def check_identity(cert: x509.Certificate, id_type: int, data: bytes) -> None:
    """Raise PKIError unless the certificate carries the peer's Phase 1 ID.

    IPv4/IPv6 match subjectAltName iPAddress, FQDN dNSName (case-insensitively), USER_FQDN
    rfc822Name, DER_ASN1_DN the subject.
    """
    ident = Identity(id_type, data)
    subject = name_string(cert.subject)
    if id_type == IdType.DER_ASN1_DN:
        if dn_equal(data, cert.subject.public_bytes()):
            return
        raise PKIError(
            Reason.ID_MISMATCH, f"ID {ident} does not match certificate subject {subject}"
        )
    if id_type not in (IdType.IPV4_ADDR, IdType.IPV6_ADDR, IdType.FQDN, IdType.USER_FQDN):
        raise PKIError(
            Reason.UNSUPPORTED,
            f"ID type {id_type_name(id_type)} cannot be matched against a certificate",
        )
    if _san_entries(cert) is None:
        raise PKIError(
            Reason.NO_SUBJECT_ALT_NAME,
            f"certificate {subject} has no subjectAltName, so it cannot carry ID {ident}",
        )
    for have in certificate_identities(cert)[1:]:
        if have.id_type == id_type and _same(id_type, data, have.data):
            return
    names = ", ".join(str(i) for i in certificate_identities(cert)[1:]) or "none usable"
    raise PKIError(
        Reason.ID_MISMATCH,
        f"ID {ident} is not among the subjectAltNames of certificate {subject} ({names})",
    )


def identity_from_text(text: str) -> Identity:
    """Best guess at an ID from its text (an address, user@host, a DER DN in hex, else FQDN).

    For callers that kept only the text of an ID; passing the ID payload's type and data is exact.
    """
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        kind = IdType.IPV4_ADDR if addr.version == 4 else IdType.IPV6_ADDR
        return Identity(kind, addr.packed)
    if "@" in text:
        return Identity(IdType.USER_FQDN, text.encode("latin-1", "replace"))
    if text.startswith("30") and len(text) % 2 == 0:
        try:
            der = bytes.fromhex(text)
            _name_attributes(der)
        except (ValueError, PKIError):
            pass
        else:
            return Identity(IdType.DER_ASN1_DN, der)
    return Identity(IdType.FQDN, text.encode("latin-1", "replace"))

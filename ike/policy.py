"""The isakmpd.policy interface: the KeyNote action attribute set of a Phase 2 SA.

isakmpd asks KeyNote, before it accepts (responder) or confirms (initiator) a Quick Mode SA,
whether the principals that authenticated Phase 1 may hold an SA with these attributes.  This
module builds that attribute set exactly as `policy_callback()` does (reference/isakmpd.md 4.2:
names, values, zero-padded address forms, time of day) and runs the query with the return values
``false,true``.  It is pure: the caller passes the time and the KeyNote session.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from keynote.policytest import passphrase_principals

__all__ = [
    "ChosenProtocol",
    "IdentityData",
    "PolicyContext",
    "PolicyDecision",
    "PolicySession",
    "build_attributes",
    "check_policy",
    "psk_principals",
]

# IPsec DOI numbers (RFC 2407 4.4 / 4.5 / 4.6.2); kept local so the policy layer is testable alone.
_PROTO_AH, _PROTO_ESP, _PROTO_IPCOMP = 2, 3, 4
_ATTR_LIFE_TYPE, _ATTR_LIFE_DURATION, _ATTR_GROUP = 1, 2, 3
_ATTR_ENCAP, _ATTR_AUTH, _ATTR_KEY_LENGTH, _ATTR_KEY_ROUNDS = 4, 5, 6, 7
_ATTR_DICT_SIZE, _ATTR_PRIVATE_ALG, _ATTR_ECN = 8, 9, 10
_LIFE_SECONDS = 1

_ESP_ENC = {
    1: "des-iv64", 2: "des", 3: "3des", 4: "rc5", 5: "idea", 6: "cast", 7: "blowfish",
    8: "3idea", 9: "des-iv32", 10: "rc4", 11: "null", 12: "aes", 13: "aes", 20: "aes", 23: "aes",
}
_AH_HASH = {2: "md5", 3: "sha", 4: "des", 8: "ripemd"}
# Quirk kept from isakmpd: the SHA2 AH transform ids land in ah_auth_alg, not ah_hash_alg.
_AH_SHA2 = {5: "sha2-256", 6: "sha2-384", 7: "sha2-512"}
_AUTH_ALG = {
    1: "hmac-md5", 2: "hmac-sha", 3: "des-mac", 4: "kpdk", 5: "hmac-sha2-256",
    6: "hmac-sha2-384", 7: "hmac-sha2-512", 8: "hmac-ripemd",
}
_COMP_ALG = {1: "oui", 2: "deflate"}
_ENCAP = {1: "tunnel", 3: "udp-encap-tunnel", 61443: "udp-encap-tunnel"}
_ID_TYPE_NAMES = {
    1: "IPv4 address", 2: "FQDN", 3: "User FQDN", 4: "IPv4 subnet", 5: "IPv6 address",
    6: "IPv6 subnet", 7: "IPv4 range", 8: "IPv6 range", 9: "ASN1 DN", 10: "ASN1 GN", 11: "Key ID",
}
_PROTO_NAMES = {6: "tcp", 17: "udp", 97: "etherip"}


class IdentityData(NamedTuple):
    """An ID payload body (RFC 2407 4.6.2): type, protocol, port and the identification data.

    A NamedTuple: immutable like a frozen dataclass, and built without a Python __init__
    setting each field through object.__setattr__ (several per handshake)."""

    id_type: int
    protocol: int
    port: int
    data: bytes


class ChosenProtocol(NamedTuple):
    """One protocol of the negotiated SA: its DOI protocol, transform id, attributes in order
    (a NamedTuple, as IdentityData)."""

    protocol_id: int
    transform_id: int
    attributes: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class PolicyContext:
    """Everything `policy_callback()` reads, gathered by the Quick Mode task."""

    initiator: bool
    pfs: bool
    phase_1: str
    phase1_group: int
    protocols: Sequence[ChosenProtocol]
    local_address: str
    remote_address: str
    local_filter: IdentityData | None = None
    remote_filter: IdentityData | None = None
    remote_id: IdentityData | None = None
    remote_id_dn: str = ""
    now: float = 0.0
    utc_offset: int = 0


@dataclass
class PolicyDecision:
    """The query's outcome and a readable explanation for the log."""

    accepted: bool
    value: str
    trace: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


class PolicySession(Protocol):
    """The part of keynote.Session the check uses."""

    def set_attribute(self, name: str, value: str) -> None: ...
    def clear_attributes(self) -> None: ...
    def add_authorizer(self, principal: str) -> None: ...
    def clear_authorizers(self) -> None: ...
    def query(self, values: list[str], explain: bool = False) -> object: ...


def pad_address(address: str) -> str:
    """Print an address the policy way: %03u dotted quads, eight 4-hex-digit groups for IPv6."""
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return ".".join(f"{b:03d}" for b in ip.packed)
    raw = ip.packed
    return ":".join(f"{raw[i]:02x}{raw[i + 1]:02x}" for i in range(0, 16, 2))


def _pad_bytes(raw: bytes) -> str:
    if len(raw) == 4:
        return ".".join(f"{b:03d}" for b in raw)
    return ":".join(f"{raw[i]:02x}{raw[i + 1]:02x}" for i in range(0, 16, 2))


def _proto_name(proto: int) -> str:
    return _PROTO_NAMES.get(proto, str(proto))


def _printable(raw: bytes) -> bool:
    return all(0x20 <= b < 0x7F for b in raw)


def _describe_id(ident: IdentityData, dn_text: str = "") -> tuple[str, str, str, str]:
    """(type name, value, lower, upper) of an ID, as policy_callback prints it."""
    kind = _ID_TYPE_NAMES.get(ident.id_type, "")
    data = ident.data
    if ident.id_type in (1, 5):
        width = 4 if ident.id_type == 1 else 16
        text = _pad_bytes(data[:width]) if len(data) >= width else ""
        return kind, text, text, text
    if ident.id_type in (4, 6):
        width = 4 if ident.id_type == 4 else 16
        if len(data) < 2 * width:
            return kind, "", "", ""
        net = int.from_bytes(data[:width], "big")
        mask = int.from_bytes(data[width : 2 * width], "big")
        full = (1 << (8 * width)) - 1
        low = (net & mask).to_bytes(width, "big")
        high = ((net & mask) | (~mask & full)).to_bytes(width, "big")
        lo, hi = _pad_bytes(low), _pad_bytes(high)
        return kind, f"{lo}-{hi}", lo, hi
    if ident.id_type in (7, 8):
        width = 4 if ident.id_type == 7 else 16
        if len(data) < 2 * width:
            return kind, "", "", ""
        lo, hi = _pad_bytes(data[:width]), _pad_bytes(data[width : 2 * width])
        return kind, f"{lo}-{hi}", lo, hi
    if ident.id_type in (2, 3):
        return kind, data.decode("latin-1"), "", ""
    if ident.id_type == 9:
        return kind, dn_text, "", ""
    if ident.id_type == 11:
        # Printable Key IDs as text, others as lowercase hex of every byte (isakmpd repeats
        # byte 0 here; that is a bug, not a format, so we print the real bytes).
        return kind, data.decode("latin-1") if _printable(data) else data.hex(), "", ""
    return kind, data.hex(), "", ""


def _time_of_day(now: float, offset: int) -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(now + offset))


def build_attributes(ctx: PolicyContext) -> dict[str, str]:
    """The full action attribute set of reference/isakmpd.md 4.2, every value a string."""
    a: dict[str, str] = {
        "app_domain": "IPsec policy",
        "doi": "ipsec",
        "initiator": "yes" if ctx.initiator else "no",
        "pfs": "yes" if ctx.pfs else "no",
        "phase_1": ctx.phase_1,
        "phase1_group_desc": str(ctx.phase1_group),
        "esp_present": "no",
        "ah_present": "no",
        "comp_present": "no",
        "esp_ecn": "no",
        "ah_ecn": "no",
        "comp_ecn": "no",
    }
    for prefix in ("esp", "ah", "comp"):
        for name in ("life_seconds", "life_kbytes", "encapsulation", "group_desc"):
            a.setdefault(f"{prefix}_{name}", "")
    for name in (
        "esp_enc_alg", "esp_auth_alg", "ah_auth_alg", "ah_hash_alg", "comp_alg",
        "esp_key_length", "ah_key_length", "esp_key_rounds", "ah_key_rounds",
        "comp_dict_size", "comp_private_alg",
    ):
        a[name] = ""
    for proto in ctx.protocols:
        _protocol_attributes(a, proto)
    for side, ident, address in (
        ("remote", ctx.remote_filter, ctx.remote_address),
        ("local", ctx.local_filter, ctx.local_address),
    ):
        if ident is None:
            text = pad_address(address)
            kind = "IPv4 address" if ":" not in address else "IPv6 address"
            a[f"{side}_filter_type"] = kind
            a[f"{side}_filter"] = text
            a[f"{side}_filter_addr_lower"] = text
            a[f"{side}_filter_addr_upper"] = text
            a[f"{side}_filter_port"] = ""
            a[f"{side}_filter_proto"] = ""
        else:
            kind, text, lo, hi = _describe_id(ident)
            a[f"{side}_filter_type"] = kind
            a[f"{side}_filter"] = text
            a[f"{side}_filter_addr_lower"] = lo
            a[f"{side}_filter_addr_upper"] = hi
            a[f"{side}_filter_port"] = str(ident.port)
            a[f"{side}_filter_proto"] = _proto_name(ident.protocol)
    if ctx.remote_id is not None:
        kind, text, lo, hi = _describe_id(ctx.remote_id, ctx.remote_id_dn)
        a["remote_id_type"] = kind
        a["remote_id"] = text
        a["remote_id_addr_lower"] = lo
        a["remote_id_addr_upper"] = hi
        a["remote_id_port"] = str(ctx.remote_id.port)
        a["remote_id_proto"] = _proto_name(ctx.remote_id.protocol)
    else:
        for name in ("type", "", "addr_lower", "addr_upper", "port", "proto"):
            a["remote_id" + (f"_{name}" if name else "")] = ""
    remote = pad_address(ctx.remote_address)
    local = pad_address(ctx.local_address)
    a["remote_negotiation_address"] = a["remote_ike_address"] = remote
    a["local_negotiation_address"] = a["local_ike_address"] = local
    a["GMTTimeOfDay"] = _time_of_day(ctx.now, 0)
    a["LocalTimeOfDay"] = _time_of_day(ctx.now, ctx.utc_offset)
    return a


def _protocol_attributes(a: dict[str, str], proto: ChosenProtocol) -> None:
    if proto.protocol_id == _PROTO_AH:
        prefix = "ah"
        a["ah_present"] = "yes"
        if proto.transform_id in _AH_HASH:
            a["ah_hash_alg"] = _AH_HASH[proto.transform_id]
        elif proto.transform_id in _AH_SHA2:
            a["ah_auth_alg"] = _AH_SHA2[proto.transform_id]
    elif proto.protocol_id == _PROTO_ESP:
        prefix = "esp"
        a["esp_present"] = "yes"
        a["esp_enc_alg"] = _ESP_ENC.get(proto.transform_id, "")
    elif proto.protocol_id == _PROTO_IPCOMP:
        prefix = "comp"
        a["comp_present"] = "yes"
        a["comp_alg"] = _COMP_ALG.get(proto.transform_id, "")
    else:
        return
    life_type = 0
    for kind, value in proto.attributes:
        if kind == _ATTR_LIFE_TYPE:
            life_type = value
        elif kind == _ATTR_LIFE_DURATION:
            unit = "seconds" if life_type == _LIFE_SECONDS else "kbytes"
            a[f"{prefix}_life_{unit}"] = str(value)
        elif kind == _ATTR_GROUP:
            a[f"{prefix}_group_desc"] = str(value)
        elif kind == _ATTR_ECN:
            a[f"{prefix}_ecn"] = "yes" if value else "no"
            # isakmpd falls through into the encapsulation case here; so do we.
            a[f"{prefix}_encapsulation"] = _ENCAP.get(value, "transport")
        elif kind == _ATTR_ENCAP:
            a[f"{prefix}_encapsulation"] = _ENCAP.get(value, "transport")
        elif kind == _ATTR_AUTH and prefix != "comp":
            a[f"{prefix}_auth_alg"] = _AUTH_ALG.get(value, "")
        elif kind == _ATTR_KEY_LENGTH and prefix != "comp":
            a[f"{prefix}_key_length"] = str(value)
        elif kind == _ATTR_KEY_ROUNDS and prefix != "comp":
            a[f"{prefix}_key_rounds"] = str(value)
        elif kind == _ATTR_DICT_SIZE and prefix == "comp":
            a["comp_dict_size"] = str(value)
        elif kind == _ATTR_PRIVATE_ALG and prefix == "comp":
            a["comp_private_alg"] = str(value)


def psk_principals(key: bytes) -> list[str]:
    """The three principals a pre-shared key stands for (reference/isakmpd.md 4.1)."""
    return list(_psk_principals(key))


@functools.lru_cache(maxsize=64)
def _psk_principals(key: bytes) -> tuple[str, ...]:
    # keynote's derivation (the one `keynote test` uses), on the key as UTF-8 text: isakmpd.conf
    # and isakmpd.policy are both read as UTF-8, so a non-ASCII key names the same principal in
    # both, and the hashes are over the key's own bytes (surrogateescape round-trips them).
    return tuple(passphrase_principals(key.decode("utf-8", "surrogateescape")))


def check_policy(
    session: PolicySession, principals: Iterable[str], attributes: dict[str, str]
) -> PolicyDecision:
    """Query the Phase 1 SA's session with values false,true; clean up afterwards."""
    session.clear_attributes()
    session.clear_authorizers()
    for name, value in attributes.items():
        session.set_attribute(name, value)
    for principal in principals:
        session.add_authorizer(principal)
    try:
        result = session.query(["false", "true"], explain=True)
    finally:
        session.clear_attributes()
        session.clear_authorizers()
    value = str(getattr(result, "value", "false"))
    index = getattr(result, "index", 0)
    trace = getattr(result, "trace", None)
    accepted = isinstance(index, int) and index >= 1
    return PolicyDecision(accepted, value, "" if trace is None else str(trace), attributes)

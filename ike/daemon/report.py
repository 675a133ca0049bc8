"""The ``S`` result file and the ``r``/SIGUSR1 report, in the formats of reference/isakmpd.md
5.1 and 5.2 (``sa_dump_all()`` / ``sa_dump()`` / ``conf_report()`` in isakmpd).

The formatters work on :class:`SAView` records, so that they do not depend on how the engine
stores its SAs; :mod:`ike.daemon.runtime` builds the views.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ike.conf import Conf
from ike.conf.parse import SECRET_TAGS

# SA flags (sa.h)
SA_FLAG_READY = 0x01
SA_FLAG_STAYALIVE = 0x02
SA_FLAG_ONDEMAND = 0x04
SA_FLAG_REPLACED = 0x08
SA_FLAG_FADING = 0x10
SA_FLAG_ACTIVE_ONLY = 0x20
SA_FLAG_IKECFG = 0x40
SA_FLAG_DPD = 0x80
SA_FLAG_NAT_T_ENABLE = 0x100
SA_FLAG_NAT_T_KEEPALIVE = 0x200
SA_FLAG_IFACE = 0x400

PROTO_IPSEC_AH = 2
PROTO_IPSEC_ESP = 3

_ESP_NAMES = {
    3: "3DES",
    12: "AES (CBC)",
    13: "AES (CTR)",
    20: "AES (GCM)",
    23: "AES (GMAC)",
    6: "Cast-128",
    7: "Blowfish",
}
# IPsec AUTHENTICATION_ALGORITHM attribute values (ESP)
_AUTH_NAMES = {
    1: "HMAC-MD5",
    2: "HMAC-SHA1",
    8: "HMAC-RIPEMD-160",
    5: "HMAC-SHA2-256",
    6: "HMAC-SHA2-384",
    7: "HMAC-SHA2-512",
}
# AH transform ids
_AH_NAMES = {
    2: "HMAC-MD5",
    3: "HMAC-SHA1",
    8: "HMAC-RIPEMD-160",
    5: "HMAC-SHA2-256",
    6: "HMAC-SHA2-384",
    7: "HMAC-SHA2-512",
}
_DES_MAC, _KPDK = 3, 4


@dataclass
class ProtoView:
    """One protocol of a phase 2 SA: SPI 0 is the outgoing one, SPI 1 the incoming one."""

    proto: int
    transform_id: int
    spi_out: bytes = b""
    spi_in: bytes = b""
    enc_key_length: int = 0
    auth_key_length: int = 0
    auth_alg: int | None = None
    number: int = 1


@dataclass
class SAView:
    """What the reports show of one SA."""

    name: str | None
    phase: int
    initiator: bool
    src: str | None
    dst: str | None
    cookies: bytes = bytes(16)
    message_id: bytes = bytes(4)
    flags: int = 0
    seconds: int = 0
    kilobytes: int = 0
    soft_in: int | None = None
    hard_in: int | None = None
    protos: list[ProtoView] = field(default_factory=list)
    doi: int = 1
    refcnt: int = 1
    ident: int = 0
    id_i: str = ""
    id_r: str = ""
    transaction: list[str] = field(default_factory=list)
    """Phase 1: what XAUTH and mode-config settled (``XAUTH: ...``, ``Mode-config: ...``)."""


def _spi_text(spi: bytes) -> str:
    out = ""
    for i, b in enumerate(spi, start=1):
        out += f"{b:02x}"
        if i % 4 == 0 and i % 32 != 0:
            out += " "
    return out


def _proto_lines(p: ProtoView) -> str:
    text = ""
    if p.proto == PROTO_IPSEC_ESP:
        text += "Transform: IPsec ESP\n"
        text += f"Encryption key length: {p.enc_key_length}\n"
        text += f"Authentication key length: {p.auth_key_length}\n"
        name = _ESP_NAMES.get(p.transform_id, f"unknown ({p.transform_id})")
        text += f"Encryption algorithm: {name}\n"
        text += "Authentication algorithm: "
        if p.auth_alg in (_DES_MAC, _KPDK):
            text += f"unknown ({p.auth_alg})"  # no newline: isakmpd's quirk
        else:
            text += _AUTH_NAMES.get(p.auth_alg or 0, "none") + "\n"
    elif p.proto == PROTO_IPSEC_AH:
        text += "Transform: IPsec AH\n"
        text += "Encryption not used.\n"
        text += f"Authentication key length: {p.auth_key_length}\n"
        text += "Authentication algorithm: "
        ah_name = _AH_NAMES.get(p.transform_id)
        text += f"{ah_name}\n" if ah_name else f"unknown ({p.transform_id})"
    else:
        text += f"report_proto: invalid proto {p.proto}\n"
    return text


def format_sa(sa: SAView) -> str:
    """One SA block of the result file, ending with its blank separator line."""
    role = ("/Initiator" if sa.initiator else "/Responder") if sa.phase == 1 else ""
    text = f"SA name: {sa.name or '<unnamed>'} (Phase {sa.phase}{role})\n"
    if sa.src is None or sa.dst is None:
        text += "<no transport>\n"
    else:
        text += f"src: {sa.src} dst: {sa.dst}\n"
    if sa.seconds:
        text += f"Lifetime: {sa.seconds} seconds\n"
    if sa.soft_in is not None:
        text += (
            "<no soft timeout>\n" if sa.soft_in < 0 else f"Soft timeout in {sa.soft_in} seconds\n"
        )
    if sa.hard_in is not None:
        text += (
            "No hard timeout>\n" if sa.hard_in < 0 else f"Hard timeout in {sa.hard_in} seconds\n"
        )
    if sa.kilobytes:
        text += f"Lifetime: {sa.kilobytes} kilobytes\n"
    text += f"Flags 0x{sa.flags:08x}\n"
    if sa.phase == 1:
        c = sa.cookies.ljust(16, b"\0")
        text += f"icookie {c[:8].hex()} rcookie {c[8:16].hex()}\n"
        text += "".join(line + "\n" for line in sa.transaction)
    elif sa.phase == 2:
        for p in sa.protos:
            for i, spi in enumerate((p.spi_out, p.spi_in)):
                text += f"SPI {i}: {_spi_text(spi)}\n" if spi else f"SPI {i} not defined.\n"
            text += _proto_lines(p)
    else:
        text += "<unknown phase>\n"
    return text + "\n"


def format_sa_file(sas: Iterable[SAView]) -> str:
    """The whole ``S`` result file."""
    return "".join(format_sa(sa) for sa in sas)


def sa_report_lines(sas: Iterable[SAView]) -> list[str]:
    """``sa_report``: the lines of ``sa_dump`` for every SA."""
    lines: list[str] = []
    for sa in sas:
        h = "sa_report"
        c = sa.cookies.ljust(16, b"\0")
        lines += [
            f"{h}: 0x{sa.ident:x} {sa.name or '<unnamed>'} phase {sa.phase} doi {sa.doi} "
            f"flags 0x{sa.flags:x}",
            f"{h}: icookie {c[:8].hex()} rcookie {c[8:16].hex()}",
            f"{h}: msgid {sa.message_id.hex():0>8} refcnt {sa.refcnt}",
            f"{h}: life secs {sa.seconds} kb {sa.kilobytes}",
        ]
        for p in sa.protos:
            lines += [
                f"{h}: suite {p.number} proto {p.proto}",
                f"{h}: spi_sz[0] {len(p.spi_out)} spi[0] {p.spi_out.hex() or '0x0'} "
                f"spi_sz[1] {len(p.spi_in)} spi[1] {p.spi_in.hex() or '0x0'}",
                f"{h}: initiator id: {sa.id_i or '<none>'}, responder id: {sa.id_r or '<none>'}, "
                f"src: {sa.src} dst: {sa.dst}",
            ]
    return lines


def conf_report_lines(conf: Conf) -> list[str]:
    """``conf_report``: the running configuration's non-default bindings, INI-like.

    Unlike isakmpd, pre-shared keys are shown as ``<secret>``: the report goes to the log.
    """
    lines = ["conf_report: dumping running configuration"]
    bindings = list(conf.user_bindings())
    users = conf.secret_sections()
    for section, tags in bindings:
        lines.append(f"[{section}]")
        hidden = section.lower() in users
        lines += [
            f"{tag}=\t{'<secret>' if hidden or tag.lower() in SECRET_TAGS else value}"
            for tag, value in tags
        ]
        lines.append("")
    return lines

"""The built-in sections of isakmpd.conf (``conf_load_defaults*`` in OpenBSD's ``conf.c``).

Two kinds (reference/isakmpd.md 3.6):

- the fixed sections (``[General]``, ``[X509-certificates]``, ``[KeyNote]``, the two lifetimes,
  ``[Default-phase-1-configuration]``, ``[Phase 1]:Default`` and ``[Default-phase-1]``), some of
  whose values depend on the user's ``[General]``;
- the named transforms and suites (``3DES-SHA``, ``AES-256-SHA2-256-GRP14-RSA_SIG``,
  ``QM-ESP-AES-SHA-PFS-SUITE`` with its protocol and ``-XF`` transform sections).  The reference
  materialises thousands of these; here a name is decoded when it is looked up.

Everything is answered per tag: a user section of the same name keeps its own tags and still gets
the built-in ones it does not define, exactly like ``conf_set(..., is_default=1)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

DEFAULT_POLICY_FILE = "/etc/isakmpd/isakmpd.policy"
DEFAULT_PUBKEY_DIR = "/etc/isakmpd/pubkeys/"
DEFAULT_PHASE1_TRANSFORMS = "3DES-SHA-RSA_SIG"
DEFAULT_PHASE1_LIFETIME = "3600,60:86400"
DEFAULT_PHASE2_LIFETIME = "1200,60:86400"
LIFE_MAIN_MODE = "LIFE_MAIN_MODE"
LIFE_QUICK_MODE = "LIFE_QUICK_MODE"

Lookup = Callable[[str, str], str | None]
"""How the defaults read the user's own values: ``lookup(section, tag)``."""

_FIXED: dict[str, list[tuple[str, str]]] = {
    "General": [
        ("Retransmits", "3"),
        ("Exchange-max-time", "120"),
        ("Use-Keynote", "yes"),
        ("Policy-file", DEFAULT_POLICY_FILE),
        ("Pubkey-directory", DEFAULT_PUBKEY_DIR),
        ("Delete-SAs", "yes"),
    ],
    "X509-certificates": [
        ("CA-directory", "/etc/isakmpd/ca/"),
        ("Cert-directory", "/etc/isakmpd/certs/"),
        ("Private-key", "/etc/isakmpd/private/local.key"),
        ("Private-key-directory", "/etc/isakmpd/private/"),
        ("CRL-directory", "/etc/isakmpd/crls/"),
    ],
    "KeyNote": [("Credential-directory", "/etc/isakmpd/keynote/")],
    "Default-phase-1-configuration": [
        ("EXCHANGE_TYPE", "ID_PROT"),
        ("Transforms", DEFAULT_PHASE1_TRANSFORMS),
    ],
    "Phase 1": [("Default", "Default-phase-1")],
}

FIXED_SECTIONS: tuple[str, ...] = (
    "General",
    "X509-certificates",
    "KeyNote",
    LIFE_MAIN_MODE,
    LIFE_QUICK_MODE,
    "Default-phase-1-configuration",
    "Phase 1",
    "Default-phase-1",
)
"""The built-in sections that ``Conf.sections()`` lists (the named suites are not listed)."""


def _fixed(section: str, lookup: Lookup) -> list[tuple[str, str]] | None:
    key = section.lower()
    for name, tags in _FIXED.items():
        if name.lower() == key:
            return tags
    if key == LIFE_MAIN_MODE.lower():
        life = lookup("General", "Default-phase-1-lifetime") or DEFAULT_PHASE1_LIFETIME
        return [("LIFE_TYPE", "SECONDS"), ("LIFE_DURATION", life)]
    if key == LIFE_QUICK_MODE.lower():
        life = lookup("General", "Default-phase-2-lifetime") or DEFAULT_PHASE2_LIFETIME
        return [("LIFE_TYPE", "SECONDS"), ("LIFE_DURATION", life)]
    if key == "default-phase-1":
        tags = [("Phase", "1"), ("Configuration", "Default-phase-1-configuration")]
        ident = lookup("General", "Default-phase-1-ID")
        if ident:
            tags.append(("ID", ident))
        return tags
    return None


# ---- Main Mode transforms: {ENC}-{HASH}{-GRP}{-AUTH} ------------------------------------------

_MM_ENC: dict[str, tuple[str, str | None]] = {
    "BLF": ("BLOWFISH_CBC", "128,96:192"),
    "3DES": ("3DES_CBC", None),
    "CAST": ("CAST_CBC", None),
    "AES": ("AES_CBC", "128,128:256"),
    "AES-128": ("AES_CBC", "128,128:128"),
    "AES-192": ("AES_CBC", "192,192:192"),
    "AES-256": ("AES_CBC", "256,256:256"),
}
_HASH: dict[str, str] = {
    "MD5": "MD5",
    "SHA": "SHA",
    "SHA2-256": "SHA2_256",
    "SHA2-384": "SHA2_384",
    "SHA2-512": "SHA2_512",
}
GROUPS: dict[str, str] = {
    "": "MODP_1024",
    "1": "MODP_768",
    "2": "MODP_1024",
    "5": "MODP_1536",
    "14": "MODP_2048",
    "15": "MODP_3072",
    "16": "MODP_4096",
    "17": "MODP_6144",
    "18": "MODP_8192",
    "19": "ECP_256",
    "20": "ECP_384",
    "21": "ECP_521",
    "25": "ECP_192",
    "26": "ECP_224",
    "27": "BP_224",
    "28": "BP_256",
    "29": "BP_384",
    "30": "BP_512",
}
_MM_AUTH: dict[str, str] = {"": "PRE_SHARED", "DSS": "DSS", "RSA_SIG": "RSA_SIG"}


def _alt(words: Iterable[str]) -> str:
    """A regex alternation, longest first so that ``AES-128`` is tried before ``AES``."""
    names = sorted((w for w in words if w), key=len, reverse=True)
    return "|".join(re.escape(n) for n in names)


_MM_RE = re.compile(
    rf"({_alt(_MM_ENC)})-({_alt(_HASH)})(?:-GRP({_alt(GROUPS)}))?(?:-({_alt(_MM_AUTH)}))?",
    re.IGNORECASE,
)


def _main_mode(section: str) -> list[tuple[str, str]] | None:
    m = _MM_RE.fullmatch(section)
    if m is None:
        return None
    enc, hash_, grp, auth = (g.upper() if g else "" for g in m.groups())
    cipher, key_length = _MM_ENC[enc]
    tags = [("ENCRYPTION_ALGORITHM", cipher)]
    if key_length:
        tags.append(("KEY_LENGTH", key_length))
    tags += [
        ("HASH_ALGORITHM", _HASH[hash_]),
        ("AUTHENTICATION_METHOD", _MM_AUTH[auth]),
        ("GROUP_DESCRIPTION", GROUPS[grp]),
        ("Life", LIFE_MAIN_MODE),
    ]
    return tags


# ---- Quick Mode suites: QM-{ESP|AH}{-TRP}{-CIPHER}{-HASH}{-PFS}{-GRP}-SUITE -------------------

_QM_CIPHER: dict[str, tuple[str, str | None]] = {
    "3DES": ("3DES", None),
    "CAST": ("CAST", None),
    "BLF": ("BLOWFISH", "128,96:192"),
    "AES": ("AES", "128,128:256"),
    "AES-128": ("AES", "128,128:128"),
    "AES-192": ("AES", "192,192:192"),
    "AES-256": ("AES", "256,256:256"),
    "AESCTR": ("AES_CTR", None),
    "AESCTR-128": ("AES_CTR", "128,128:128"),
    "AESCTR-192": ("AES_CTR", "192,192:192"),
    "AESCTR-256": ("AES_CTR", "256,256:256"),
    "AESGCM-128": ("AES_GCM_16", "128,128:128"),
    "AESGCM-192": ("AES_GCM_16", "192,192:192"),
    "AESGCM-256": ("AES_GCM_16", "256,256:256"),
    "AESGMAC-128": ("AES_GMAC", "128,128:128"),
    "AESGMAC-192": ("AES_GMAC", "192,192:192"),
    "AESGMAC-256": ("AES_GMAC", "256,256:256"),
    "NULL": ("NULL", None),
}
_QM_HASH: dict[str, tuple[str, str]] = {
    # name part: (AH TRANSFORM_ID, AUTHENTICATION_ALGORITHM)
    "MD5": ("MD5", "HMAC_MD5"),
    "SHA": ("SHA", "HMAC_SHA"),
    "RIPEMD": ("RIPEMD", "HMAC_RIPEMD"),
    "SHA2-256": ("SHA2_256", "HMAC_SHA2_256"),
    "SHA2-384": ("SHA2_384", "HMAC_SHA2_384"),
    "SHA2-512": ("SHA2_512", "HMAC_SHA2_512"),
}
_QM_RE = re.compile(
    rf"QM-(ESP|AH)(-TRP)?(?:-({_alt(_QM_CIPHER)}))?(?:-({_alt(_QM_HASH)}))?(-PFS)?"
    rf"(?:-GRP({_alt(GROUPS)}))?(-SUITE|-XF)?",
    re.IGNORECASE,
)


def _quick_mode(section: str) -> list[tuple[str, str]] | None:
    m = _QM_RE.fullmatch(section)
    if m is None:
        return None
    proto, trp, cipher, hash_, pfs, grp, kind = (g.upper() if g else "" for g in m.groups())
    if proto == "AH" and (cipher or not hash_):
        return None
    if proto == "ESP" and not cipher:
        return None
    if cipher.startswith(("AESGCM", "AESGMAC")) and hash_:
        return None
    if grp and not pfs:
        return None
    base = "QM-" + "-".join(p for p in (proto, trp and "TRP", cipher, hash_, pfs and "PFS") if p)
    if grp:
        base += f"-GRP{grp}"
    if kind == "-SUITE":
        return [("Protocols", base)]
    if not kind:
        return [("PROTOCOL_ID", f"IPSEC_{proto}"), ("Transforms", base + "-XF")]
    if proto == "ESP":
        transform_id, key_length = _QM_CIPHER[cipher]
    else:
        transform_id, key_length = _QM_HASH[hash_][0], None
    tags = [("TRANSFORM_ID", transform_id)]
    if key_length:
        tags.append(("KEY_LENGTH", key_length))
    tags.append(("ENCAPSULATION_MODE", "TRANSPORT" if trp else "TUNNEL"))
    if hash_:
        tags.append(("AUTHENTICATION_ALGORITHM", _QM_HASH[hash_][1]))
        if pfs:
            tags.append(("GROUP_DESCRIPTION", GROUPS[grp]))
    tags.append(("Life", LIFE_QUICK_MODE))
    return tags


@lru_cache(maxsize=4096)
def _generated(section: str) -> tuple[tuple[str, str], ...] | None:
    tags = _main_mode(section)
    if tags is None:
        tags = _quick_mode(section)
    return tuple(tags) if tags is not None else None


def default_tags(section: str, lookup: Lookup) -> list[tuple[str, str]]:
    """The built-in ``(tag, value)`` pairs of *section* (case-insensitive), in reference order.

    *lookup* reads the user's configuration, for the values the reference derives from it
    (``Default-phase-1-lifetime``, ``Default-phase-2-lifetime``, ``Default-phase-1-ID``).
    """
    fixed = _fixed(section, lookup)
    if fixed is not None:
        return list(fixed)
    generated = _generated(section)
    return list(generated) if generated is not None else []

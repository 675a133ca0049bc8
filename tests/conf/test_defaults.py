"""The built-in sections and named suites of reference/isakmpd.md 3.6, produced on demand."""

from __future__ import annotations

import pytest

from ike.conf import Conf


def _section(conf: Conf, name: str) -> dict[str, str]:
    return {t: conf.get_str(name, t) or "" for t in conf.get_tag_list(name)}


def test_fixed_general_defaults() -> None:
    conf = Conf.from_text("")
    assert _section(conf, "General") == {
        "Retransmits": "3",
        "Exchange-max-time": "120",
        "Use-Keynote": "yes",
        "Policy-file": "/etc/isakmpd/isakmpd.policy",
        "Pubkey-directory": "/etc/isakmpd/pubkeys/",
        "Delete-SAs": "yes",
    }
    assert conf.get_str("X509-Certificates", "CA-directory") == "/etc/isakmpd/ca/"
    assert conf.get_str("x509-certificates", "Private-key") == "/etc/isakmpd/private/local.key"
    assert conf.get_str("KeyNote", "Credential-directory") == "/etc/isakmpd/keynote/"
    assert conf.get_str("Phase 1", "Default") == "Default-phase-1"
    assert _section(conf, "Default-phase-1") == {
        "Phase": "1",
        "Configuration": "Default-phase-1-configuration",
    }
    assert _section(conf, "Default-phase-1-configuration") == {
        "EXCHANGE_TYPE": "ID_PROT",
        "Transforms": "3DES-SHA-RSA_SIG",
    }
    assert _section(conf, "LIFE_MAIN_MODE") == {
        "LIFE_TYPE": "SECONDS",
        "LIFE_DURATION": "3600,60:86400",
    }
    assert conf.get_str("LIFE_QUICK_MODE", "LIFE_DURATION") == "1200,60:86400"


def test_user_values_override_per_tag_and_drive_derived_defaults() -> None:
    conf = Conf.from_text(
        "[General]\nRetransmits=9\nDefault-phase-1-lifetime=600,60:1200\n"
        "Default-phase-2-lifetime=300\nDefault-phase-1-ID=My-ID\n"
        "[3DES-SHA]\nLife=My-life\n"
    )
    assert conf.get_num("General", "Retransmits", 0) == 9
    assert conf.get_str("General", "Use-Keynote") == "yes"
    assert conf.get_str("LIFE_MAIN_MODE", "LIFE_DURATION") == "600,60:1200"
    assert conf.get_str("LIFE_QUICK_MODE", "LIFE_DURATION") == "300"
    assert conf.get_str("Default-phase-1", "ID") == "My-ID"
    assert conf.get_str("3DES-SHA", "Life") == "My-life"
    assert conf.get_str("3DES-SHA", "ENCRYPTION_ALGORITHM") == "3DES_CBC"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "3DES-SHA",
            {
                "ENCRYPTION_ALGORITHM": "3DES_CBC",
                "HASH_ALGORITHM": "SHA",
                "AUTHENTICATION_METHOD": "PRE_SHARED",
                "GROUP_DESCRIPTION": "MODP_1024",
                "Life": "LIFE_MAIN_MODE",
            },
        ),
        (
            "AES-256-SHA2-256-GRP14-RSA_SIG",
            {
                "ENCRYPTION_ALGORITHM": "AES_CBC",
                "KEY_LENGTH": "256,256:256",
                "HASH_ALGORITHM": "SHA2_256",
                "AUTHENTICATION_METHOD": "RSA_SIG",
                "GROUP_DESCRIPTION": "MODP_2048",
                "Life": "LIFE_MAIN_MODE",
            },
        ),
        (
            "BLF-MD5-GRP1-DSS",
            {
                "ENCRYPTION_ALGORITHM": "BLOWFISH_CBC",
                "KEY_LENGTH": "128,96:192",
                "HASH_ALGORITHM": "MD5",
                "AUTHENTICATION_METHOD": "DSS",
                "GROUP_DESCRIPTION": "MODP_768",
                "Life": "LIFE_MAIN_MODE",
            },
        ),
        (
            "aes-sha-grp19",
            {
                "ENCRYPTION_ALGORITHM": "AES_CBC",
                "KEY_LENGTH": "128,128:256",
                "HASH_ALGORITHM": "SHA",
                "AUTHENTICATION_METHOD": "PRE_SHARED",
                "GROUP_DESCRIPTION": "ECP_256",
                "Life": "LIFE_MAIN_MODE",
            },
        ),
        ("CAST-SHA2-512-GRP30", {"GROUP_DESCRIPTION": "BP_512"}),
    ],
)
def test_main_mode_transforms(name: str, expected: dict[str, str]) -> None:
    got = _section(Conf.from_text(""), name)
    for tag, value in expected.items():
        assert got[tag] == value
    if len(expected) > 1:
        assert got == expected


def test_quick_mode_suite_chain() -> None:
    conf = Conf.from_text("")
    assert _section(conf, "QM-ESP-AES-SHA-PFS-SUITE") == {"Protocols": "QM-ESP-AES-SHA-PFS"}
    assert _section(conf, "QM-ESP-AES-SHA-PFS") == {
        "PROTOCOL_ID": "IPSEC_ESP",
        "Transforms": "QM-ESP-AES-SHA-PFS-XF",
    }
    assert _section(conf, "QM-ESP-AES-SHA-PFS-XF") == {
        "TRANSFORM_ID": "AES",
        "KEY_LENGTH": "128,128:256",
        "ENCAPSULATION_MODE": "TUNNEL",
        "AUTHENTICATION_ALGORITHM": "HMAC_SHA",
        "GROUP_DESCRIPTION": "MODP_1024",
        "Life": "LIFE_QUICK_MODE",
    }


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "QM-ESP-TRP-3DES-SHA-XF",
            {
                "TRANSFORM_ID": "3DES",
                "ENCAPSULATION_MODE": "TRANSPORT",
                "AUTHENTICATION_ALGORITHM": "HMAC_SHA",
                "Life": "LIFE_QUICK_MODE",
            },
        ),
        (
            "QM-AH-SHA2-256-PFS-GRP14-XF",
            {
                "TRANSFORM_ID": "SHA2_256",
                "ENCAPSULATION_MODE": "TUNNEL",
                "AUTHENTICATION_ALGORITHM": "HMAC_SHA2_256",
                "GROUP_DESCRIPTION": "MODP_2048",
                "Life": "LIFE_QUICK_MODE",
            },
        ),
        (
            # quirk: no hash, so no group even though the name says PFS
            "QM-ESP-AESGCM-256-PFS-XF",
            {
                "TRANSFORM_ID": "AES_GCM_16",
                "KEY_LENGTH": "256,256:256",
                "ENCAPSULATION_MODE": "TUNNEL",
                "Life": "LIFE_QUICK_MODE",
            },
        ),
        (
            # quirk: plain AESCTR has no KEY_LENGTH
            "QM-ESP-AESCTR-SHA-XF",
            {
                "TRANSFORM_ID": "AES_CTR",
                "ENCAPSULATION_MODE": "TUNNEL",
                "AUTHENTICATION_ALGORITHM": "HMAC_SHA",
                "Life": "LIFE_QUICK_MODE",
            },
        ),
        (
            "QM-ESP-BLF-XF",
            {
                "TRANSFORM_ID": "BLOWFISH",
                "KEY_LENGTH": "128,96:192",
                "ENCAPSULATION_MODE": "TUNNEL",
                "Life": "LIFE_QUICK_MODE",
            },
        ),
        ("QM-AH-MD5-SUITE", {"Protocols": "QM-AH-MD5"}),
        ("QM-ESP-3DES-SHA-SUITE", {"Protocols": "QM-ESP-3DES-SHA"}),
        ("QM-ESP-AES-128-SHA-PFS-SUITE", {"Protocols": "QM-ESP-AES-128-SHA-PFS"}),
        ("qm-esp-null-md5-suite", {"Protocols": "QM-ESP-NULL-MD5"}),
    ],
)
def test_quick_mode_names(name: str, expected: dict[str, str]) -> None:
    assert _section(Conf.from_text(""), name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "QM-AH-3DES-SHA-SUITE",  # AH with a cipher
        "QM-AH-SUITE",  # AH without a hash
        "QM-ESP-SHA-SUITE",  # ESP without a cipher
        "QM-ESP-AESGCM-128-SHA-SUITE",  # GCM with a hash
        "QM-ESP-3DES-SHA-GRP14-SUITE",  # group without PFS
        "3DES",  # main mode needs a hash
        "3DES-SHA-GRP3",  # EC2N groups are gone
        "DES-SHA",
        "QM-ESP-AESGCM-SHA-SUITE",
    ],
)
def test_names_outside_the_pattern_do_not_exist(name: str) -> None:
    conf = Conf.from_text("")
    assert conf.get_tag_list(name) == []
    assert not conf.has_section(name)


def test_sections_lists_user_then_fixed_defaults_only() -> None:
    conf = Conf.from_text("[Peer-A]\nPhase=1\n[general]\nListen-on=127.0.0.1\n")
    names = conf.sections()
    assert names[:2] == ["Peer-A", "general"]
    assert "General" not in names
    assert "LIFE_MAIN_MODE" in names
    assert "3DES-SHA" not in names
    assert conf.get_str("General", "Listen-on") == "127.0.0.1"
    assert conf.get_str("General", "Retransmits") == "3"

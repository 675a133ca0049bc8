"""The KeyNote action attribute set of reference/isakmpd.md 4.2, value by value."""

from __future__ import annotations

import calendar
import hashlib

from ike.policy import (
    ChosenProtocol,
    IdentityData,
    PolicyContext,
    build_attributes,
    check_policy,
    pad_address,
    psk_principals,
)
from keynote import Session
from keynote.policytest import passphrase_principals

ESP_AES = ChosenProtocol(3, 12, ((1, 1), (2, 1200), (1, 2), (2, 100000), (4, 1), (5, 2),
                                 (3, 14), (6, 128)))
AH_SHA2 = ChosenProtocol(2, 5, ((4, 2), (5, 5)))
COMP = ChosenProtocol(4, 2, ((4, 1),))
NOON = calendar.timegm((2026, 11, 28, 12, 34, 56, 0, 0, 0))


def _ctx(**kw: object) -> PolicyContext:
    base: dict[str, object] = dict(
        initiator=False, pfs=True, phase_1="main", phase1_group=14, protocols=[ESP_AES],
        local_address="10.128.1.12", remote_address="192.168.0.1",
        local_filter=IdentityData(4, 0, 0, bytes([10, 1, 0, 7, 255, 255, 0, 0])),
        remote_filter=IdentityData(1, 6, 80, bytes([192, 168, 2, 1])),
        remote_id=IdentityData(2, 17, 500, b"peer.example.org"), now=NOON, utc_offset=3600)
    base.update(kw)
    return PolicyContext(**base)  # type: ignore[arg-type]


def test_attribute_set_esp() -> None:
    a = build_attributes(_ctx())
    expect = {
        "app_domain": "IPsec policy", "doi": "ipsec", "initiator": "no", "pfs": "yes",
        "phase_1": "main", "phase1_group_desc": "14", "esp_present": "yes",
        "ah_present": "no", "comp_present": "no", "esp_enc_alg": "aes",
        "esp_auth_alg": "hmac-sha", "esp_life_seconds": "1200", "esp_life_kbytes": "100000",
        "esp_encapsulation": "tunnel", "esp_key_length": "128", "esp_group_desc": "14",
        "esp_ecn": "no", "ah_auth_alg": "", "ah_life_seconds": "",
        "local_filter_type": "IPv4 subnet",
        "local_filter": "010.001.000.000-010.001.255.255",
        "local_filter_addr_lower": "010.001.000.000",
        "local_filter_addr_upper": "010.001.255.255",
        "local_filter_proto": "0", "local_filter_port": "0",
        "remote_filter_type": "IPv4 address", "remote_filter": "192.168.002.001",
        "remote_filter_proto": "tcp", "remote_filter_port": "80",
        "remote_id_type": "FQDN", "remote_id": "peer.example.org", "remote_id_proto": "udp",
        "remote_id_port": "500",
        "remote_negotiation_address": "192.168.000.001",
        "local_negotiation_address": "010.128.001.012",
        "remote_ike_address": "192.168.000.001", "local_ike_address": "010.128.001.012",
        "GMTTimeOfDay": "20261128123456", "LocalTimeOfDay": "20261128133456",
    }
    for name, value in expect.items():
        assert a[name] == value, name


def test_attribute_set_ah_comp_quirks_and_defaults() -> None:
    a = build_attributes(_ctx(protocols=[AH_SHA2, COMP], pfs=False, initiator=True,
                              local_filter=None, remote_filter=None, remote_id=None,
                              phase_1="aggressive"))
    assert (a["ah_present"], a["comp_present"], a["esp_present"]) == ("yes", "yes", "no")
    assert a["ah_hash_alg"] == ""  # isakmpd quirk: SHA2 AH ids land in ah_auth_alg ...
    assert a["ah_auth_alg"] == "hmac-sha2-256"  # ... which the auth attribute then overwrites
    assert a["ah_encapsulation"] == "transport" and a["comp_alg"] == "deflate"
    assert a["comp_encapsulation"] == "tunnel"
    assert (a["initiator"], a["pfs"], a["phase_1"]) == ("yes", "no", "aggressive")
    # no client IDs: the filters are the IKE addresses
    assert a["remote_filter"] == a["remote_filter_addr_lower"] == "192.168.000.001"
    assert a["local_filter_type"] == "IPv4 address"
    assert a["remote_id"] == a["remote_id_type"] == ""


def test_ipv6_and_key_id_forms() -> None:
    assert pad_address("1080::8:800:200c:417a") == "1080:0000:0000:0000:0008:0800:200c:417a"
    a = build_attributes(_ctx(remote_id=IdentityData(11, 0, 0, b"\x01\x02"),
                              remote_filter=IdentityData(6, 0, 0, bytes(16) + bytes(
                                  [255] * 8 + [0] * 8))))
    assert a["remote_id_type"] == "Key ID" and a["remote_id"] == "0102"
    assert a["remote_filter_type"] == "IPv6 subnet"
    assert a["remote_filter_addr_upper"].startswith("0000:0000:0000:0000:ffff:ffff")


def test_check_policy_with_keynote() -> None:
    # The man page's example hash is not MD5("mekmitasdigoat"); the form is what counts.
    md5 = hashlib.md5(b"mekmitasdigoat").hexdigest()
    s = Session()
    s.add_assertions(f'Authorizer: "POLICY"\nLicensees: "passphrase-md5-hex:{md5}"\n'
                     'Conditions: app_domain == "IPsec policy" && esp_present == "yes" && '
                     'esp_enc_alg != "null" -> "true";\n', trusted=True)
    principals = psk_principals(b"mekmitasdigoat")
    assert principals == ["passphrase:mekmitasdigoat", f"passphrase-md5-hex:{md5}",
                          "passphrase-sha1-hex:" + hashlib.sha1(b"mekmitasdigoat").hexdigest()]
    assert check_policy(s, principals, build_attributes(_ctx())).accepted
    assert not check_policy(s, psk_principals(b"other"), build_attributes(_ctx())).accepted


def test_psk_principals_match_keynote_for_a_non_ascii_key() -> None:
    # isakmpd.conf and isakmpd.policy are both read as UTF-8: a key written "grüß" in the
    # one is the principal "passphrase:grüß" in the other, hashed over the key's bytes.
    key = "grüß".encode()
    principals = psk_principals(key)
    assert principals == passphrase_principals("grüß")
    assert principals[0] == "passphrase:grüß"
    assert principals[1] == "passphrase-md5-hex:" + hashlib.md5(key).hexdigest()
    # a hex key that is not UTF-8 still hashes its own bytes
    raw = bytes([0xE9, 0x00, 0xFF])
    assert psk_principals(raw)[2] == "passphrase-sha1-hex:" + hashlib.sha1(raw).hexdigest()

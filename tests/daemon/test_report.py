"""The S result file and the r report lines (reference/isakmpd.md 5.1, 5.2)."""

from __future__ import annotations

from ike.conf import Conf
from ike.daemon.report import (
    PROTO_IPSEC_AH,
    PROTO_IPSEC_ESP,
    ProtoView,
    SAView,
    conf_report_lines,
    format_sa_file,
    sa_report_lines,
)

COOKIES = bytes.fromhex("00112233445566778899aabbccddeeff")


def test_phase1_block() -> None:
    sa = SAView("peer-east", 1, True, "10.0.0.1", "10.0.0.2", COOKIES, flags=0x01,
                seconds=3600, soft_in=3000, hard_in=3599)  # fmt: skip
    assert format_sa_file([sa]) == (
        "SA name: peer-east (Phase 1/Initiator)\n"
        "src: 10.0.0.1 dst: 10.0.0.2\n"
        "Lifetime: 3600 seconds\n"
        "Soft timeout in 3000 seconds\n"
        "Hard timeout in 3599 seconds\n"
        "Flags 0x00000001\n"
        "icookie 0011223344556677 rcookie 8899aabbccddeeff\n"
        "\n"
    )


def test_phase2_esp_and_ah_blocks() -> None:
    esp = ProtoView(PROTO_IPSEC_ESP, 12, bytes.fromhex("c0ffee01"), bytes.fromhex("0badf00d"),
                    enc_key_length=16, auth_key_length=20, auth_alg=2)  # fmt: skip
    ah = ProtoView(PROTO_IPSEC_AH, 5, bytes.fromhex("00000102"), b"", auth_key_length=32)
    sa = SAView(None, 2, False, "::1", "::2", COOKIES, protos=[esp, ah], kilobytes=1000,
                soft_in=-1, hard_in=-1)  # fmt: skip
    assert format_sa_file([sa]) == (
        "SA name: <unnamed> (Phase 2)\n"
        "src: ::1 dst: ::2\n"
        "<no soft timeout>\n"
        "No hard timeout>\n"
        "Lifetime: 1000 kilobytes\n"
        "Flags 0x00000000\n"
        "SPI 0: c0ffee01 \n"
        "SPI 1: 0badf00d \n"
        "Transform: IPsec ESP\n"
        "Encryption key length: 16\n"
        "Authentication key length: 20\n"
        "Encryption algorithm: AES (CBC)\n"
        "Authentication algorithm: HMAC-SHA1\n"
        "SPI 0: 00000102 \n"
        "SPI 1 not defined.\n"
        "Transform: IPsec AH\n"
        "Encryption not used.\n"
        "Authentication key length: 32\n"
        "Authentication algorithm: HMAC-SHA2-256\n"
        "\n"
    )


def test_quirks_unknown_algorithms_and_no_transport() -> None:
    esp = ProtoView(PROTO_IPSEC_ESP, 99, b"\1\2\3\4", b"\5\6\7\x08", auth_alg=4)
    text = format_sa_file([SAView("x", 2, True, None, None, protos=[esp])])
    assert "<no transport>\n" in text
    assert "Encryption algorithm: unknown (99)\n" in text
    assert text.endswith("Authentication algorithm: unknown (4)\n")
    esp_none = ProtoView(PROTO_IPSEC_ESP, 3, b"\1\2\3\4", b"\5\6\7\x08")
    assert "Authentication algorithm: none\n" in format_sa_file(
        [SAView("x", 2, True, "a", "b", protos=[esp_none])]
    )


def test_sa_report_lines() -> None:
    esp = ProtoView(PROTO_IPSEC_ESP, 3, b"\1\2\3\4", b"\5\6\7\x08")
    view = SAView("c", 2, True, "1.1.1.1", "2.2.2.2", COOKIES, message_id=b"\0\0\0\x2a")
    view.protos, view.ident = [esp], 0xABC
    lines = sa_report_lines([view])
    assert lines[0] == "sa_report: 0xabc c phase 2 doi 1 flags 0x0"
    assert lines[1] == "sa_report: icookie 0011223344556677 rcookie 8899aabbccddeeff"
    assert lines[2] == "sa_report: msgid 0000002a refcnt 1"
    assert lines[4] == "sa_report: suite 1 proto 3"


def test_conf_report_hides_preshared_keys() -> None:
    conf = Conf.from_text("[Peer]\nAddress=10.0.0.1\nAuthentication=mekmitasdigoat\n")
    lines = conf_report_lines(conf)
    assert lines[:4] == [
        "conf_report: dumping running configuration",
        "[Peer]",
        "Address=\t10.0.0.1",
        "Authentication=\t<secret>",
    ]
    assert "mekmitasdigoat" not in "\n".join(lines)

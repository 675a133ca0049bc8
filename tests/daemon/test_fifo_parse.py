"""FIFO command parsing, with the reference's sscanf formats (reference/isakmpd.md 5)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from ike.conf import Conf
from ike.daemon import fifo as f
from ike.daemon.scanf import sscanf

COOKIES = "00112233445566778899aabbccddeeff"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("c IPsec-east-west", f.Connect("IPsec-east-west")),
        ("cfoo", f.Connect("foo")),  # "c %200s": the blank matches none
        ("c  name  trailing", f.Connect("name")),
        ("t main 10.0.0.1", f.Teardown("10.0.0.1", 1)),
        ("t quick conn", f.Teardown("conn", 2)),
        ("t conn", f.Teardown("conn", 2)),
        ("t main", f.Teardown("main", 2)),  # falls through to "t %200s"
        ("T", f.TeardownAll()),
        ("C set [General]:Retransmits=5", f.ConfigChange("set", "General", "Retransmits", "5")),
        (
            "C set [Phase 2]:Connections=a,b force",
            f.ConfigChange("set", "Phase 2", "Connections", "a,b", force=True),
        ),
        ("C set [S]:T=v anything", f.ConfigChange("set", "S", "T", "v", force=True)),
        ("C add [Phase 2]:Connections=c", f.ConfigChange("add", "Phase 2", "Connections", "c")),
        ("C rmv [Phase 2]:Connections=c", f.ConfigChange("rmv", "Phase 2", "Connections", "c")),
        ("C rm [Peer]:Address", f.ConfigChange("rm", "Peer", "Address")),
        ("C rms [Peer]", f.ConfigChange("rms", "Peer")),
        ("C get [General]:Retransmits", f.ConfigGet("General", "Retransmits")),
        ("C GET [General]:Retransmits", f.ConfigGet("General", "Retransmits")),
        (f"d {COOKIES} -", f.Delete(bytes.fromhex(COOKIES), None)),
        (f"d {COOKIES} 0a0b0c0d", f.Delete(bytes.fromhex(COOKIES), bytes.fromhex("0a0b0c0d"))),
        ("D 3 70", f.Debug(3, 70)),
        ("D A 99", f.Debug(None, 99)),
        ("D AL 5", f.Debug(None, 5)),  # isakmpd reads the first character only
        ("D T", f.Debug(toggle=True)),
        ("M active", f.Mode(passive=False)),
        ("M passive", f.Mode(passive=True)),
        ("M activeX", f.Mode(passive=False)),  # isakmpd compares the first 6 characters
        ("p on", f.PacketLog(True)),
        ("p on=/var/run/x.pcap", f.PacketLog(True, "/var/run/x.pcap")),
        ("p off", f.PacketLog(False)),
        ("Q", f.Shutdown()),
        ("R", f.Reinit()),
        ("r", f.Report()),
        ("S", f.ReportSAs()),
    ],
)
def test_parse(line: str, expected: f.Command) -> None:
    assert f.parse_line(line) == expected


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("c", "ui_connect"),
        ("c   ", "ui_connect"),
        ("t", "ui_teardown"),
        ("C", "ui_config"),
        ("C frob [S]:T=v", "ui_config"),
        ("C setx [S]:T=v", "ui_config"),
        ("C set S:T=v", "ui_config"),
        ("C set [S]:T", "ui_config"),
        ("C set [S]T=v", "ui_config"),
        ("C rm [S]", "ui_config"),
        ("C get [S]", "ui_config"),
        ("C rms S", "ui_config"),
        ("d 0011 -", "ui_delete"),
        (f"d {COOKIES}", "ui_delete"),
        (f"d {COOKIES} xyz", "ui_delete"),
        (f"d {'zz' * 16} -", "ui_delete"),
        ("D", "ui_debug"),
        ("D 11 5", "ui_debug"),
        ("D X 5", "ui_debug"),
        ("D Q", "ui_debug"),
        ("D a 5", "ui_debug"),  # 'A' and 'T' are case-sensitive
        ("D t", "ui_debug"),
        ("M sideways", "ui_setmode"),
        ("M pass", "ui_setmode"),
        ("M a", "ui_setmode"),
        ("p maybe", "ui_packetlog"),
        ("p", "ui_packetlog"),
        ("Q now", "ui_shutdown_daemon"),
        ("x", "unrecognized command: 'x'"),
        ("", "empty"),
    ],
)
def test_malformed(line: str, words: str) -> None:
    with pytest.raises(f.FifoError) as info:
        f.parse_line(line)
    assert words in str(info.value)


def test_values_cannot_contain_spaces() -> None:
    assert f.parse_line("C set [S]:T=a b") == f.ConfigChange("set", "S", "T", "a", force=True)


def test_field_width_200() -> None:
    name = "n" * 250
    assert f.parse_line(f"c {name}") == f.Connect("n" * 200)


def test_sscanf_counts() -> None:
    assert sscanf("D 3 x", "D %d %d") == [3]
    assert sscanf("C set [a]:b=c", "C %*s [%200[^]]]:%200[^=]=%200s %200s") == ["a", "b", "c"]
    assert sscanf("  42,1:9", "%d,%d:%d") == [42, 1, 9]


def test_reader_splits_lines_and_survives_a_flood(caplog: pytest.LogCaptureFixture) -> None:
    got: list[f.Command] = []
    reader = f.FifoReader(-1, got.append, owns_fd=False)
    caplog.set_level(logging.WARNING, logger="ike.daemon.fifo")
    flood = b"".join(b"garbage line %d \xff\n" % i for i in range(1000))
    reader.feed(flood[:777])
    reader.feed(flood[777:] + b"c conn-1\nS\nC set [a]:b")
    reader.feed(b"=c\n")
    assert got == [f.Connect("conn-1"), f.ReportSAs(), f.ConfigChange("set", "a", "b", "c")]
    assert reader.errors == 1000
    assert sum("unrecognized command" in r.getMessage() for r in caplog.records) == 1000


def test_reader_drops_overlong_lines() -> None:
    got: list[f.Command] = []
    reader = f.FifoReader(-1, got.append, owns_fd=False)
    reader.feed(b"c " + b"x" * (f.MAX_LINE + 10))
    reader.feed(b"yyy\nS\n")
    assert got == [f.ReportSAs()]


def test_handler_exception_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def boom(_cmd: f.Command) -> None:
        raise RuntimeError("handler failed")

    reader = f.FifoReader(-1, boom, owns_fd=False)
    reader.feed(b"S\n")
    assert "failed" in caplog.text


def test_create_fifo_replaces_fifo_but_not_files(tmp_path: Path) -> None:
    path = tmp_path / "isakmpd.fifo"
    f.create_fifo(str(path))
    f.create_fifo(str(path))
    assert os.stat(path).st_mode & 0o777 == 0o600
    regular = tmp_path / "file"
    regular.write_text("keep")
    with pytest.raises(OSError, match="not a FIFO"):
        f.create_fifo(str(regular))
    assert regular.read_text() == "keep"


def test_preshared_keys_stay_out_of_the_debug_log() -> None:
    cmd = f.parse_line("C set [peer]:Authentication=topsecret force")
    assert "topsecret" not in f.describe(cmd)
    assert "Retransmits" in f.describe(f.parse_line("C set [General]:Retransmits=5"))


def test_xauth_user_passwords_stay_out_of_the_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    """A section named by XAUTH-Users holds user = password tags: a FIFO line setting one is
    logged without the password (the reader asks the running configuration which they are)."""
    conf = Conf.from_text("[peer]\nXAUTH-Users=\tvpn-users\n[VPN-Users]\nalice=\told\n")
    assert conf.secret_sections() == {"vpn-users"}
    seen: list[f.Command] = []
    reader = f.FifoReader(-1, seen.append, owns_fd=False, secret_sections=conf.secret_sections)
    with caplog.at_level(logging.DEBUG, logger="ike"):
        reader.feed(b"C set [vpn-users]:alice=hunter2 force\nC set [other]:bob=visible\n")
    assert [c.value for c in seen if isinstance(c, f.ConfigChange)] == ["hunter2", "visible"]
    assert "hunter2" not in caplog.text and "alice" in caplog.text and "visible" in caplog.text

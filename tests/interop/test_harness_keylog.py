"""The key-log parsers on logs recorded by this harness (tests/interop/data, test keys only).

The recording: charon (initiator, kernel-libipsec) and pluto (responder, fakesa) with
AES-128/SHA2-256/ECP-256 and Quick Mode PFS; both ends derived the same ESP keys.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness.keylog import parse_charon_log, parse_pluto_log

DATA = Path(__file__).parent / "data"
CHARON_LOG = (DATA / "charon-initiator-ecp256-pfs.log").read_text()
PLUTO_LOG = (DATA / "pluto-responder-ecp256-pfs.log").read_text()


def test_charon_phase1_keys() -> None:
    log = parse_charon_log(CHARON_LOG)
    assert log.ike_established == [1]
    keys = log.ike[1]
    assert len(keys["shared Diffie Hellman secret"]) == 64  # ECP-256: x coordinate
    assert len(keys["SKEYID"]) == len(keys["SKEYID_d"]) == 64  # PRF HMAC-SHA2-256
    assert len(keys["encryption key Ka"]) == 32
    assert len(keys["initial IV"]) == 32
    assert len({keys["SKEYID"], keys["SKEYID_d"], keys["SKEYID_a"], keys["SKEYID_e"]}) == 4


def test_charon_child_keys_by_direction() -> None:
    log = parse_charon_log(CHARON_LOG)
    [child] = log.children
    assert (child.name, child.uid, child.ike_uid) == ("ki", 1, 1)
    assert (child.spi_in, child.spi_out) == ("50a737b7", "497795ec")
    # charon initiated the Quick Mode; with PFS the seed starts with g(qm)^xy, not 03 | SPI
    assert child.we_initiated_qm
    out, inn = child.keys["497795ec"], child.keys["50a737b7"]
    assert out.enc == "e5b8d495d47baa36e21f0df77390a75d"
    assert inn.enc == "e2b9d68a6d20a8eeae5be052ef2c8fe2"
    assert len(out.integ) == len(inn.integ) == 64  # HMAC-SHA2-256-128 key: 32 bytes
    assert log.esp_keys() == child.keys


def test_pluto_keymat_equals_charon_keys() -> None:
    charon = parse_charon_log(CHARON_LOG).esp_keys()
    pluto = parse_pluto_log(PLUTO_LOG)
    assert [k.spi for k in pluto] == ["497795ec", "50a737b7"]
    for k in pluto:
        assert k.keymat == charon[k.spi].enc + charon[k.spi].integ
        assert k.split(16) == charon[k.spi]


def _with_helper_lines(after: str, skip_rows: int) -> str:
    """PLUTO_LOG with a crypto helper thread's line put ``skip_rows`` rows after each line
    ending in ``after``, where a loaded machine has pluto's threads interleave."""
    out: list[str] = []
    pending = -1
    for line in PLUTO_LOG.splitlines():
        if pending == 0:
            out.append("Nov 28 04:08:45.385000: | helper 1: waiting for work")
        pending -= 1
        out.append(line)
        if line.endswith(after):
            pending = skip_rows
    return "\n".join(out) + "\n"


def test_pluto_helper_thread_lines_inside_a_dump() -> None:
    # pluto's helper threads log line by line into the same file.  In a looped run (1 of 400)
    # the PFS DH helper's "| helper 2: waiting for work" fell right after the second "...
    # returns:"; read as the end of the value it left that SA's KEYMAT empty, so one SPI's keys
    # differed from charon's.  Between the rows it cut the value short; after "| SPI" it lost
    # the SPI.
    clean = parse_pluto_log(PLUTO_LOG)
    assert len(clean) == 2
    for after, skip in (("keymat() returns:", 0), ("keymat() returns:", 1),
                        ("keymat() returns:", 2), ("| SPI", 0)):
        got = parse_pluto_log(_with_helper_lines(after, skip))
        assert got == clean, (after, skip)
        assert all(len(k.keymat) == 96 for k in got)
        assert all(any("waiting for work" in line for line in k.lines) for k in got)


def test_pluto_dump_not_yet_complete_gives_nothing() -> None:
    lines = PLUTO_LOG.splitlines()
    last = max(i for i, line in enumerate(lines) if line.endswith("keymat() returns:"))
    # the file read while pluto had written one of the last KEYMAT's three rows
    got = parse_pluto_log("\n".join(lines[: last + 2]))
    assert [k.spi for k in got] == ["497795ec"]


def test_interleaved_threads_do_not_mix() -> None:
    text = "\n".join([
        "01:00:00 05[IKE] <c|2> SKEYID => 4 bytes @ 0x1",
        "01:00:00 07[IKE] <d|3> SKEYID => 20 bytes @ 0x2",
        "01:00:00 05[IKE] <c|2>    0: AA BB CC DD                                      ....",
        "01:00:00 07[IKE] <d|3>    0: 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F"
        "  ................",
        "01:00:00 07[IKE] <d|3>   16: 10 11 12 13                                      ....",
    ])
    log = parse_charon_log(text)
    assert log.ike == {2: {"SKEYID": "aabbccdd"},
                       3: {"SKEYID": "000102030405060708090a0b0c0d0e0f10111213"}}


def test_garbage_gives_nothing() -> None:
    for text in ("", "no log here\n\x00\xff", "01:00:00 05[IKE] <c|x> SKEYID => 9 bytes @ 0x1"):
        log = parse_charon_log(text)
        assert (log.ike, log.children) == ({}, [])
        assert parse_pluto_log(text) == []
    # cut inside the SKEYID dump (header on line 155, two rows): no partial value is kept
    truncated = parse_charon_log("\n".join(CHARON_LOG.splitlines()[:156]))
    assert set(truncated.ike[1]) == {"shared Diffie Hellman secret"}


def test_fakesa_key_lines() -> None:
    from harness.keylog import parse_fakesa_log

    text = ("fakesa NEWSA proto 50 spi 0588e400\n"
            "fakesa KEYS proto 50 spi 0588e400 enc cbc(aes) f13dc059 auth hmac(sha1) 1f86b1a5\n"
            "fakesa KEYS proto 50 spi 00000001 encap 2 4500 4500 aead rfc4106(gcm(aes)) 0011"
            "2233aabbccdd\n"
            "fakesa KEYS proto 50 spi\n")
    keys = parse_fakesa_log(text)
    assert keys["0588e400"].enc == "f13dc059" and keys["0588e400"].integ == "1f86b1a5"
    assert (keys["00000001"].enc, keys["00000001"].integ) == ("00112233aabbccdd", "")
    assert keys["00000001"].encap == "2 4500 4500" and keys["0588e400"].encap == ""
    assert len(keys) == 2

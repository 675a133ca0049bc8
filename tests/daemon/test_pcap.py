"""The cleartext capture file is read by tshark (DLT_LOOP, synthetic IP/UDP headers)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from ike.daemon.pcap import PcapWriter, cleartext_view, frame

ICOOKIE = bytes.fromhex("0102030405060708")
RCOOKIE = bytes.fromhex("1112131415161718")


def _message(flags: int = 0, exchange: int = 2) -> bytes:
    vid = bytes.fromhex("4a131c81070358455c5728f20e95452f")  # RFC 3947 NAT-T vendor id
    payload = struct.pack("!BBH", 0, 0, 4 + len(vid)) + vid
    header = ICOOKIE + RCOOKIE + struct.pack("!BBBBII", 13, 0x10, exchange, flags, 0, 28)
    data = bytearray(header + payload)
    struct.pack_into("!I", data, 24, len(data))
    return bytes(data)


def test_cleartext_view_clears_enc_flag() -> None:
    msg = _message(flags=0x01) + b"\0\0\0\0"
    view = cleartext_view(msg)
    assert view[19] == 0
    assert struct.unpack_from("!I", view, 24)[0] == len(msg)
    assert cleartext_view(b"short") == b"short"


def test_frame_checksums_ipv4() -> None:
    data = frame(("10.0.0.1", 500), ("10.0.0.2", 500), b"x" * 5, 7)
    assert data[:4] == b"\0\0\0\x02"
    ip = data[4:24]
    total = sum(struct.unpack("!10H", ip))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    assert total == 0xFFFF
    assert struct.unpack_from("!H", ip, 4)[0] == 7


@pytest.mark.skipif(shutil.which("tshark") is None, reason="needs the tshark Debian package")
def test_tshark_decodes_the_capture(tmp_path: Path) -> None:
    path = tmp_path / "isakmpd.pcap"
    writer = PcapWriter.open(str(path))
    writer.record(("127.0.0.1", 500), ("127.0.0.2", 500), _message(), now=1_700_000_000.25)
    writer.record(("::1", 500), ("::2", 500), _message(flags=1, exchange=32))
    writer.record(("192.0.2.1", 4500), ("192.0.2.2", 4500), _message(exchange=5))
    writer.close()
    assert path.stat().st_mode & 0o777 == 0o600
    out = subprocess.run(
        ["tshark", "-r", str(path), "-V"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.count("Internet Security Association and Key Management Protocol") == 3
    assert "Initiator SPI: 0102030405060708" in out
    assert "Responder SPI: 1112131415161718" in out
    assert "Identity Protection (Main Mode) (2)" in out
    assert "Quick Mode (32)" in out
    assert "Informational (5)" in out
    assert "RFC 3947 Negotiation of NAT-Traversal in the IKE" in out
    assert "Internet Protocol Version 6, Src: ::1, Dst: ::2" in out
    assert "Non-ESP Marker" in out
    assert "Malformed" not in out
    assert "Encryption: Not encrypted" in out

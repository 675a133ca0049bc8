"""Turn capture_strongswan.sh runs into NAME.json fixtures (run by hand).

    python make_strongswan_fixture.py [NAME ...]     (default: every name in RUNS)

Reads NAME.log-a (initiator), NAME.log-b (responder) and NAME.pcap in this
directory.  Every ``NAME => N bytes`` hex dump of each charon log becomes
a list of hex strings under that name (charon logs some names more than once,
e.g. ``next IV for MID n``); the pcap's ISAKMP UDP payloads become
``messages`` in capture order.  The values are keys of a throw-away test run.
"""

from __future__ import annotations

import json
import re
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEAD = re.compile(r"^\S+ (\d+)\[\w+\] <[^>]*> (.+?) => (\d+) bytes @ 0x[0-9a-f]+$")
DUMP = re.compile(r"^\S+ (\d+)\[\w+\] <[^>]*> +\d+: ((?:[0-9A-F]{2} )+)")


def parse_log(path: Path) -> dict[str, list[str]]:
    """NAME -> [hex, ...] in log order."""
    out: dict[str, list[str]] = {}
    current: tuple[str, str, int, list[str]] | None = None
    for line in path.read_text().splitlines():
        m = HEAD.match(line)
        if m:
            current = (m.group(1), m.group(2), int(m.group(3)), [])
            out.setdefault(m.group(2), [])
            if current[2] == 0:
                out[m.group(2)].append("")
                current = None
            continue
        d = DUMP.match(line)
        if d and current is not None and d.group(1) == current[0]:
            current[3].append(d.group(2).replace(" ", "").lower())
            data = "".join(current[3])
            if len(data) >= 2 * current[2]:
                out[current[1]].append(data[: 2 * current[2]])
                current = None
    return out


def parse_pcap(path: Path) -> list[dict[str, str]]:
    """The UDP payloads to/from port 500/4500 of an Ethernet pcap."""
    raw = path.read_bytes()
    endian = "<" if raw[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    pos, msgs = 24, []
    while pos + 16 <= len(raw):
        _, _, incl, _ = struct.unpack(endian + "IIII", raw[pos:pos + 16])
        frame = raw[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        ip = frame[14:]
        ihl = (ip[0] & 15) * 4
        if ip[9] != 17:
            continue
        sport, dport = struct.unpack(">HH", ip[ihl:ihl + 4])
        payload = ip[ihl + 8:]
        if 4500 in (sport, dport):
            payload = payload[4:]  # non-ESP marker
        src = ".".join(str(b) for b in ip[12:16])
        msgs.append({"src": src, "data": payload.hex()})
    return msgs


# NAME -> (capture_strongswan.sh arguments, negotiated parameters the test needs:
# IKE hash, ENCRYPTION_ALGORITHM id, Ka bytes, block size; ESP key bytes, PFS)
RUNS: dict[str, tuple[str, dict[str, object]]] = {
    "strongswan_mm_psk": (
        "aes256-sha1-modp2048 aes256-sha1-modp2048",
        {"hash": "sha1", "cipher": 7, "key_len": 32, "block": 16,
         "esp_enc_len": 32, "esp_auth_len": 20, "pfs": True},
    ),
    "strongswan_mm_psk_sha256": (
        "3des-sha256-ecp256 aes128-sha256",
        {"hash": "sha256", "cipher": 5, "key_len": 24, "block": 8,
         "esp_enc_len": 16, "esp_auth_len": 32, "pfs": False},
    ),
    "strongswan_mm_rsa": (
        "aes128-sha2_256-modp2048 aes128-sha1 rsa",
        {"hash": "sha256", "cipher": 7, "key_len": 16, "block": 16,
         "esp_enc_len": 16, "esp_auth_len": 20, "pfs": False, "auth": "rsa"},
    ),
    "strongswan_am_psk": (
        "aes192-sha2_512-modp1536 aes256-md5 psk aggressive",
        {"hash": "sha512", "cipher": 7, "key_len": 24, "block": 16,
         "esp_enc_len": 32, "esp_auth_len": 16, "pfs": False, "mode": "aggressive"},
    ),
}


def main() -> None:
    for name in sys.argv[1:] or sorted(RUNS):
        proposals, params = RUNS[name]
        fixture: dict[str, object] = {
            "source": f"strongSwan 5.9.8 charon pair, IKEv1 Phase 1 + Quick Mode: "
                      f"capture_strongswan.sh {name} {proposals}",
            "params": params,
            "psk": "kc2-test-psk-0123456789",
            "initiator_ip": "10.93.0.1",
            "messages": parse_pcap(HERE / f"{name}.pcap"),
            "initiator": parse_log(HERE / f"{name}.log-a"),
            "responder": parse_log(HERE / f"{name}.log-b"),
        }
        key = HERE / f"{name}.key-a"
        if key.exists():
            fixture["initiator_key_pem"] = key.read_text()
        (HERE / f"{name}.json").write_text(json.dumps(fixture, indent=1) + "\n")


if __name__ == "__main__":
    main()

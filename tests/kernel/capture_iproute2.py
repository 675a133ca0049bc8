"""Capture the netlink requests iproute2 sends, as golden fixtures for our XFRM message builders.

Run once, as root, on a machine with iproute2 and strace (it is not a test):

    .venv/bin/python tests/kernel/capture_iproute2.py > tests/kernel/fixtures/iproute2.json

Each ``ip xfrm ...`` command runs under ``strace -e trace=sendmsg -e write=all`` inside a network
namespace ``kx-cap-<pid>`` created here and deleted afterwards; the first sendmsg buffer's hex
dump is kept.  The kernel may refuse the request (no ESP on the host): the bytes sent are what
matter.  Sequence number and port id (bytes 8..15) are zeroed, as they differ per run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile

K16 = "0x000102030405060708090a0b0c0d0e0f"
K20 = K16 + "c0ffee01"
K24 = "0x" + "5a" * 24
K32 = "0x" + "22" * 32
K20A = "0x" + "33" * 20
A, B = "10.88.0.1", "10.88.0.2"
A6, B6 = "fd00:88::1", "fd00:88::2"

# name -> arguments after "ip xfrm"; the tests rebuild each request from the same parameters
CASES: dict[str, str] = {
    "newsa_aes_cbc_sha256_transport": (
        f"state add src {A} dst {B} proto esp spi 0x1000 reqid 7 mode transport "
        f"replay-window 32 enc cbc(aes) {K16} auth-trunc hmac(sha256) {K32} 128 "
        "limit time-soft 1080 limit time-hard 1200 limit byte-soft 921600 "
        "limit byte-hard 1024000"
    ),
    "newsa_aes_gcm16_tunnel_natt": (
        f"state add src {A} dst {B} proto esp spi 0x1002 reqid 9 mode tunnel "
        f"aead rfc4106(gcm(aes)) {K20} 128 encap espinudp 4500 4501 0.0.0.0"
    ),
    "newsa_3des_sha1_seq": (
        f"state add src {A} dst {B} proto esp spi 0xc0000001 reqid 1 mode transport "
        f"seq 5 enc cbc(des3_ede) {K24} auth-trunc hmac(sha1) {K20A} 96"
    ),
    "updsa_aes_cbc_sha256_inbound": (
        f"state update src {B} dst {A} proto esp spi 0xc0000002 reqid 7 mode tunnel "
        f"replay-window 32 enc cbc(aes) {K16} auth-trunc hmac(sha256) {K32} 128"
    ),
    "newsa_ah_sha1_align4": (
        f"state add src {A} dst {B} proto ah spi 0x2000 reqid 3 mode transport flag align4 "
        f"auth-trunc hmac(sha1) {K20A} 96"
    ),
    "newsa_ipcomp_deflate": (
        f"state add src {A} dst {B} proto comp spi 0x1234 reqid 3 mode transport comp deflate"
    ),
    "newsa_v6_aes_cbc_sha1_sel": (
        f"state add src {A6} dst {B6} proto esp spi 0x3000 mode transport "
        f"sel src {A6}/128 dst {B6}/128 proto udp sport 500 dport 501 "
        f"enc cbc(aes) {K16} auth-trunc hmac(sha1) {K20A} 96"
    ),
    "delsa_esp": f"state delete src {A} dst {B} proto esp spi 0x1000",
    "getsa_esp": f"state get src {A} dst {B} proto esp spi 0x1000",
    "allocspi_esp": f"state allocspi src {B} dst {A} proto esp min 0x100 max 0xffffffff",
    "allocspi_esp_seq": (
        f"state allocspi src {B} dst {A} proto esp reqid 4 seq 17 min 0x12345678 max 0x12345678"
    ),
    "newpolicy_out_tunnel": (
        f"policy add src 10.1.0.0/24 dst 10.2.0.0/24 dir out priority 100 "
        f"tmpl src {A} dst {B} proto esp reqid 42 mode tunnel"
    ),
    "newpolicy_fwd_tunnel": (
        f"policy add src 10.2.0.0/24 dst 10.1.0.0/24 dir fwd priority 100 "
        f"tmpl src {B} dst {A} proto esp reqid 42 mode tunnel level use"
    ),
    "newpolicy_in_transport_udp": (
        f"policy add src {B}/32 dst {A}/32 proto udp sport 1000 dport 2000 dir in "
        f"tmpl src {B} dst {A} proto esp reqid 5 mode transport"
    ),
    "newpolicy_out_ah_v6": (
        f"policy add src {A6}/128 dst {B6}/128 dir out "
        f"tmpl src {A6} dst {B6} proto ah mode transport"
    ),
    "newpolicy_out_ipcomp_esp_bundle": (
        f"policy add src 10.1.0.0/24 dst 10.2.0.0/24 dir out "
        f"tmpl src {A} dst {B} proto comp reqid 3 mode tunnel "
        f"tmpl src {A} dst {B} proto esp reqid 3 mode transport"
    ),
    "newpolicy_in_ipcomp_esp_bundle": (
        f"policy add src 10.2.0.0/24 dst 10.1.0.0/24 dir in "
        f"tmpl src {B} dst {A} proto comp reqid 3 mode tunnel level use "
        f"tmpl src {B} dst {A} proto esp reqid 3 mode transport"
    ),
    "newpolicy_bypass": f"policy add src {A}/32 dst {B}/32 proto udp dport 500 dir out priority 1",
    "delpolicy_out": "policy delete src 10.1.0.0/24 dst 10.2.0.0/24 dir out",
    "delpolicy_in_udp": (
        f"policy delete src {B}/32 dst {A}/32 proto udp sport 1000 dport 2000 dir in"
    ),
    "flushsa": "state flush",
    "flushpolicy": "policy flush",
}

_HEX_LINE = re.compile(r"^ \| [0-9a-f]{5}  ((?:[0-9a-f]{2} {1,2}){1,16})")


def capture(ns: str, args: str, tmp: str) -> str:
    """Run ``ip xfrm ARGS`` under strace in ``ns``; return the first sendmsg buffer as hex."""
    out = os.path.join(tmp, "strace.txt")
    cmd = ["ip", "netns", "exec", ns, "strace", "-o", out, "-e", "trace=sendmsg",
           "-e", "write=all", "ip", "xfrm", *args.split()]
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    chunks: list[str] = []
    started = False
    with open(out) as f:
        for line in f:
            if line.startswith(" * ") and "bytes in buffer 0" in line:
                if started:
                    break
                started = True
                continue
            m = _HEX_LINE.match(line)
            if started and m:
                chunks.append(m.group(1).replace(" ", ""))
            elif started and chunks and not line.startswith(" |"):
                break
    raw = bytearray.fromhex("".join(chunks))
    raw[8:16] = bytes(8)
    return raw.hex()


def main() -> int:
    """Capture every case into a JSON document on stdout."""
    ns = f"kx-cap-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        result: dict[str, dict[str, str]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name, args in CASES.items():
                result[name] = {"cmd": "ip xfrm " + args, "hex": capture(ns, args, tmp)}
        doc = {
            "how": "tests/kernel/capture_iproute2.py: strace -e trace=sendmsg -e write=all of "
            "iproute2 in a fresh netns; nlmsg_seq and nlmsg_pid zeroed",
            "iproute2": subprocess.run(["ip", "-V"], capture_output=True, text=True).stdout.strip(),
            "requests": result,
        }
        json.dump(doc, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

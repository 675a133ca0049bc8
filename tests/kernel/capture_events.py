"""Capture XFRM messages the kernel sends (events and replies), as fixtures for our decoders.

Run once, as root (it is not a test):

    .venv/bin/python tests/kernel/capture_events.py > tests/kernel/fixtures/kernel_events.json

Deliberately independent of ike.kernel: a raw NETLINK_XFRM socket subscribed to the ACQUIRE and
EXPIRE groups, `ip xfrm` to install policies, inside a namespace ``kx-ev-<pid>`` (veth pair,
``net.core.xfrm_acq_expires=2``) deleted afterwards.  Records: ACQUIRE from a UDP send (transport
and tunnel policy), the larval EXPIREs (spi 0 and an allocated SPI), POLEXPIRE soft and hard, the
NEWSA reply to ALLOCSPI and the NLMSG_ERROR (with extack) answering an ESP NEWSA; on a kernel
with ESP also a NAT-T MAPPING.  Inside UML:

    tests/kernel/uml.py .venv/bin/python tests/kernel/capture_events.py
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def setns(fd: int) -> None:
    """Switch this thread's network namespace (os.setns needs Python 3.12)."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")


def sh(ns: str, *cmd: str) -> None:
    """Run a command inside the namespace (or fail loudly)."""
    subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True)


def in_ns(ns: str) -> None:
    """Move this process into the namespace (setns on its /run/netns file)."""
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    setns(fd)
    os.close(fd)


def drain(sock: socket.socket, seconds: float) -> list[bytes]:
    """Every netlink datagram arriving within ``seconds``."""
    out: list[bytes] = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            out.append(sock.recv(65536))
        except TimeoutError:
            break
    return out


def capture_mapping(ns: str, home: int) -> str:
    """Kernels with ESP only: ESP-in-UDP from another source port than the inbound SA's gives
    a MAPPING message (NAT-T peer moved).  The sender lives in a second namespace."""
    peer = f"{ns}-p"
    subprocess.run(["ip", "netns", "add", peer], check=True)
    try:
        sh(ns, "ip", "link", "add", "kxm0", "type", "veth", "peer", "name", "kxm1", "netns", peer)
        sh(ns, "ip", "addr", "add", "10.89.0.2/24", "dev", "kxm0")
        sh(ns, "ip", "link", "set", "kxm0", "up")
        sh(peer, "ip", "addr", "add", "10.89.0.1/24", "dev", "kxm1")
        sh(peer, "ip", "link", "set", "kxm1", "up")
        sh(ns, "ip", "xfrm", "state", "add", "src", "10.89.0.1", "dst", "10.89.0.2", "proto",
           "esp", "spi", "0x4242", "reqid", "5", "mode", "transport", "enc", "cipher_null", "",
           "encap", "espinudp", "4500", "4500", "0.0.0.0")
        ev = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 6)
        ev.bind((0, 0x80))  # XFRMGRP_MAPPING
        listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        listener.bind(("10.89.0.2", 4500))
        listener.setsockopt(17, 100, 2)  # SOL_UDP, UDP_ENCAP, UDP_ENCAP_ESPINUDP
        in_ns(peer)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        in_ns(ns)
        sender.bind(("10.89.0.1", 4600))
        esp = struct.pack(">II", 0x4242, 1) + bytes(14) + bytes([0, 59])  # null cipher, no pad
        sender.sendto(esp, ("10.89.0.2", 4500))
        msg = drain(ev, 2.0)[0].hex()
        for sock in (ev, listener, sender):
            sock.close()
        return msg
    finally:
        setns(home)
        in_ns(ns)
        subprocess.run(["ip", "netns", "del", peer], check=False)


def main() -> int:
    """Provoke each event once and dump the raw bytes as JSON."""
    ns = f"kx-ev-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        sh(ns, "sh", "-c", "echo 2 > /proc/sys/net/core/xfrm_acq_expires")
        sh(ns, "ip", "link", "add", "kxv0", "type", "veth", "peer", "name", "kxv1")
        sh(ns, "ip", "addr", "add", "10.88.0.1/24", "dev", "kxv0")
        for dev in ("lo", "kxv0", "kxv1"):
            sh(ns, "ip", "link", "set", dev, "up")
        sh(ns, "ip", "route", "add", "10.2.0.0/24", "dev", "kxv0")
        in_ns(ns)
        ev = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 6)
        ev.bind((0, 0x1 | 0x2))
        req = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 6)
        req.setsockopt(270, 11, 1)  # SOL_NETLINK, NETLINK_EXT_ACK
        req.bind((0, 0))
        got: dict[str, str] = {}

        # ACQUIRE from a transport-mode host policy, then its larval EXPIRE (spi 0)
        sh(ns, "ip", "xfrm", "policy", "add", "src", "10.88.0.1/32", "dst", "10.88.0.2/32",
           "dir", "out", "tmpl", "src", "10.88.0.1", "dst", "10.88.0.2", "proto", "esp",
           "reqid", "7", "mode", "transport")
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("10.88.0.1", 4242))
        u.sendto(b"kx-acq", ("10.88.0.2", 9999))
        msgs = drain(ev, 3.5)
        got["acquire_transport_udp"] = msgs[0].hex()
        got["expire_larval_acquire"] = next(m for m in msgs[1:] if m[4] == 0x18).hex()

        # ACQUIRE from a tunnel policy between two subnets
        sh(ns, "ip", "xfrm", "policy", "add", "src", "10.88.0.0/24", "dst", "10.2.0.0/24",
           "dir", "out", "priority", "50", "tmpl", "src", "10.88.0.1", "dst", "10.88.0.9",
           "proto", "esp", "reqid", "11", "mode", "tunnel")
        u.sendto(b"kx-acq", ("10.2.0.5", 7777))
        msgs = drain(ev, 0.5)
        got["acquire_tunnel_udp"] = msgs[0].hex()

        # ALLOCSPI reply (NEWSA) and the larval EXPIRE of that SPI
        fx = json.loads((HERE / "fixtures" / "iproute2.json").read_text())["requests"]
        allocspi = bytearray.fromhex(fx["allocspi_esp_seq"]["hex"])
        struct.pack_into("=I", allocspi, 8, 99)
        req.send(bytes(allocspi))
        got["newsa_reply_allocspi"] = req.recv(65536).hex()
        msgs = drain(ev, 3.0)
        got["expire_larval_allocspi"] = next(
            m for m in msgs if m[4] == 0x18 and m[16 + 56 + 16 : 16 + 56 + 20] != bytes(4)
        ).hex()

        # POLEXPIRE soft then hard
        sh(ns, "ip", "xfrm", "policy", "add", "src", "10.3.0.0/16", "dst", "10.4.0.0/16",
           "dir", "in", "limit", "time-soft", "1", "limit", "time-hard", "2",
           "tmpl", "src", "10.88.0.9", "dst", "10.88.0.1", "proto", "esp", "mode", "tunnel")
        msgs = [m for m in drain(ev, 3.0) if m[4] == 0x1B]
        got["polexpire_soft"] = msgs[0].hex()
        got["polexpire_hard"] = msgs[1].hex()

        # NLMSG_ERROR with extack for an ESP NEWSA (no ESP on the host kernel: 93)
        newsa = bytearray.fromhex(fx["newsa_aes_cbc_sha256_transport"]["hex"])
        struct.pack_into("=I", newsa, 8, 100)
        req.send(bytes(newsa))
        got["error_newsa"] = req.recv(65536).hex()
        if struct.unpack_from("=i", bytes.fromhex(got["error_newsa"]), 16)[0] == 0:
            got["mapping"] = capture_mapping(ns, home)
        u.close()
        ev.close()
        req.close()
        setns(home)
        doc = {
            "how": "tests/kernel/capture_events.py: raw NETLINK_XFRM socket in a fresh netns",
            "kernel": os.uname().release,
            "messages": got,
        }
        json.dump(doc, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    finally:
        setns(home)
        subprocess.run(["ip", "netns", "del", ns], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

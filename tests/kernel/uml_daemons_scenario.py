"""Two of our isakmpd daemons in two namespaces inside UML negotiate, and ping crosses the ESP SAs
they installed through ike.kernel.xfrm (runs inside the guest, root).

kx-a (10.88.0.1) and kx-b (10.88.0.2) on a veth pair; each daemon runs in its namespace with a
generated isakmpd.conf (Main Mode PSK; one Quick Mode connection per suite, each tunnelling its
own pair of inner hosts) and a KeyNote policy.  Start both, wait for "phase 2
done" for every connection on both, ping through each, read the kernel's SAs and flows, stop
both (which must remove them).  Prints one JSON object; tests/kernel/test_uml.py judges it.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DAEMON = [sys.executable, "-c", "import sys; from ike.daemon.cli import main; sys.exit(main())"]
SUITES = {
    "aes-cbc-sha2-256": "QM-ESP-AES-128-SHA2-256-SUITE",
    "aes-gcm-16": "QM-ESP-AESGCM-128-SUITE",
    "3des-sha1": "QM-ESP-3DES-SHA-SUITE",
}
LIFETIME = 15  # seconds, Quick Mode SAs
SIDES = {"a": ("10.88.0.1", "10.88.0.2"), "b": ("10.88.0.2", "10.88.0.1")}

POLICY = """KeyNote-Version: 2
Comment: The UML test's policy: peers knowing the pre-shared key may set up ESP.
Authorizer: "POLICY"
Licensees: "passphrase:mekmitasdigoat"
Conditions: app_domain == "IPsec policy" && esp_present == "yes" -> "true";
"""

CONF_HEAD = """[General]
Listen-on=\t\t{me}
Retransmits=\t\t3
Check-interval=\t\t5
Policy-file=\t\t{dir}/isakmpd.policy
{general}
[Phase 1]
{peer}=\t\tISAKMP-peer

[Phase 2]
{connections}

[ISAKMP-peer]
Phase=\t\t\t1
Address=\t\t{peer}
Local-address=\t\t{me}
Authentication=\t\tmekmitasdigoat
Configuration=\t\tMain-mode

[Main-mode]
EXCHANGE_TYPE=\t\tID_PROT
Transforms=\t\tAES-128-SHA-GRP14
"""

#: one Quick Mode connection per suite, each between its own pair of inner hosts
#: 10.88.N.1 (behind a) and 10.88.N.2 (behind b), tunnelled between 10.88.0.1 and 10.88.0.2
CONF_CONN = """
[IPsec-{name}]
Phase=\t\t\t2
ISAKMP-peer=\t\tISAKMP-peer
Configuration=\t\tQM-{name}
Local-ID=\t\tHost-{name}-me
Remote-ID=\t\tHost-{name}-peer

[Host-{name}-me]
ID-type=\t\tIPV4_ADDR
Address=\t\t{inner_me}

[Host-{name}-peer]
ID-type=\t\tIPV4_ADDR
Address=\t\t{inner_peer}

[QM-{name}]
EXCHANGE_TYPE=\t\tQUICK_MODE
Suites=\t\t\t{suite}
"""


def inner(n: int, side: str) -> str:
    """The inner host address of connection ``n`` on ``side``."""
    return f"10.88.{n}.{1 if side == 'a' else 2}"


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command, output captured."""
    return subprocess.run(args, check=check, text=True, capture_output=True)


class Daemon:
    """One isakmpd in a namespace, with its own directory, log and FIFO."""

    def __init__(self, side: str, base: Path, initiator: bool,
                 conns: dict[int, tuple[str, str]] | None = None, args: tuple[str, ...] = (),
                 general: str = "") -> None:
        self.ns = f"kx-{side}"
        self.dir = base / side
        self.dir.mkdir(mode=0o700)
        self.args = args
        me, peer = SIDES[side]
        other = "b" if side == "a" else "a"
        if conns is None:
            conns = {n: item for n, item in enumerate(SUITES.items(), start=1)}
        names = ",".join(f"IPsec-{name}" for name, _suite in conns.values())
        conf = CONF_HEAD.format(me=me, peer=peer, dir=self.dir, general=general, connections=(
            f"Connections=\t\t{names}" if initiator else f"Passive-Connections=\t{names}"))
        for n, (name, suite) in conns.items():
            conf += CONF_CONN.format(name=name, suite=suite, inner_me=inner(n, side),
                                     inner_peer=inner(n, other))
        for fname, text in (("isakmpd.conf", conf), ("isakmpd.policy", POLICY)):
            (self.dir / fname).write_text(text)
            (self.dir / fname).chmod(0o600)
        self.log_path = self.dir / "isakmpd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the daemon in its namespace (kernel backend: xfrm)."""
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, *DAEMON, "-d", "-T", "-v", *self.args,
                 "-c", str(self.dir / "isakmpd.conf"), "--run-dir", str(self.dir)],
                stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)

    def log(self) -> str:
        """Everything the daemon logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, pattern: str, timeout: float) -> bool:
        """Wait until the log matches (or the daemon died / time ran out)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if re.search(pattern, self.log()):
                return True
            if self.proc is not None and self.proc.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def stop(self) -> int | None:
        """SIGTERM (the daemon removes what it installed), then wait."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def ping(ns: str, dst: str, src: str, count: int = 3) -> int:
    """Replies received."""
    out = sh("ip", "netns", "exec", ns, "ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W",
             "2", "-I", src, dst, check=False).stdout
    return next((int(p.split()[0]) for p in out.split(",") if "received" in p), 0)


def esp_packets(ns: str) -> list[int]:
    """Packet counters of the namespace's ESP SAs."""
    out = sh("ip", "-n", ns, "-s", "xfrm", "state").stdout
    return [int(p) for p in re.findall(r"\d+\(bytes\), (\d+)\(packets\)", out)]


def xfrm_stat(ns: str) -> dict[str, str]:
    """The namespace's non-zero XFRM error counters (/proc/net/xfrm_stat)."""
    out = sh("ip", "netns", "exec", ns, "cat", "/proc/net/xfrm_stat", check=False).stdout
    return {k: v for k, v in (line.split() for line in out.splitlines()) if v != "0"}


def run_pair() -> dict[str, Any]:
    """Both daemons negotiate every connection; ping through each; stop (which must clean)."""
    base = Path(tempfile.mkdtemp(prefix="kx-d-"))
    # short Quick Mode lifetimes (soft at 90 %, as isakmpd): the SAs get rekeyed during the run
    life = f"Default-phase-2-lifetime=\t{LIFETIME},10:86400\n"
    b = Daemon("b", base, initiator=False, general=life)
    a = Daemon("a", base, initiator=True, general=life)
    result: dict[str, Any] = {"case": "daemons", "suites": SUITES, "lifetime": LIFETIME}
    try:
        t0 = time.monotonic()
        b.start()
        a.start()
        done = rf"(?s)(phase 2 done.*){{{len(SUITES)}}}"
        ok = a.wait_log(done, 60) and b.wait_log(done, 15)
        result["negotiated"] = ok
        result["negotiation_seconds"] = round(time.monotonic() - t0, 2)
        time.sleep(0.3)  # the responder installs its flows right after its log line
        result["received"] = {
            name: ping("kx-a", inner(n, "b"), src=inner(n, "a")) if ok else 0
            for n, name in enumerate(SUITES, start=1)}
        result["states_a"] = sh("ip", "-n", "kx-a", "xfrm", "state").stdout
        result["policies_a"] = sh("ip", "-n", "kx-a", "xfrm", "policy").stdout
        result["packets_a"] = esp_packets("kx-a")
        result["packets_b"] = esp_packets("kx-b")
        if ok:
            # a ping stream across the soft expiry (rekey) and the old SAs' hard expiry
            before = set(re.findall(r"spi (0x[0-9a-f]+)", result["states_a"]))
            count = int(LIFETIME / 0.3)  # until past the old SAs' hard expiry
            out = sh("ip", "netns", "exec", "kx-a", "ping", "-n", "-q", "-c", str(count), "-i",
                     "0.3", "-W", "1", "-I", inner(1, "a"), inner(1, "b"), check=False).stdout
            result["states_after"] = sh("ip", "-n", "kx-a", "xfrm", "state").stdout
            result["states_after_b"] = sh("ip", "-n", "kx-b", "xfrm", "state").stdout
            result["stream_ended"] = round(time.monotonic() - t0, 2)
            after = set(re.findall(r"spi (0x[0-9a-f]+)", result["states_after"]))
            result["stream"] = [count, next(
                (int(p.split()[0]) for p in out.split(",") if "received" in p), 0)]
            result["rekeyed"] = "rekeying" in a.log()
            result["rekey_lines"] = len(re.findall("rekeying", a.log()))
            result["spis"] = [len(before), len(after), len(before & after)]
            # the kernel's own account of any drop (XfrmInNoStates: an SPI not yet installed)
            result["xfrm_stat"] = {ns: xfrm_stat(ns) for ns in ("kx-a", "kx-b")}
    finally:
        result["rc"] = [a.stop(), b.stop()]
        result["left_after_stop"] = [sh("ip", "-n", ns, "xfrm", what).stdout.strip()
                                     for ns in ("kx-a", "kx-b") for what in ("state", "policy")]
        stream = result.get("stream", [1, 0])
        if (not result.get("negotiated") or 0 in result.get("received", {}).values()
                or stream[1] < stream[0]
                or result.get("spis", [0, 0])[1] < result.get("spis", [0, 0])[0]):
            result["log_a"] = a.log()[-6000:]
            result["log_b"] = b.log()[-6000:]
        shutil.rmtree(base, ignore_errors=True)
    return result


#: pings of the on-demand case, 0.3 s apart: the first ones wait for the negotiation
ON_DEMAND_PINGS = 20


def run_on_demand() -> dict[str, Any]:
    """isakmpd's on-demand path: flows set by someone else (as ipsecctl would), daemon a with
    -a and the connection passive; a ping raises an ACQUIRE, a negotiates, the SAs replace the
    larval state and the following pings cross."""
    n = len(SUITES) + 1
    conns = {n: ("on-demand", SUITES["aes-gcm-16"])}
    base = Path(tempfile.mkdtemp(prefix="kx-od-"))
    # -D 1=50: transport debugging logs "listening on", our sign that the daemon is ready
    b = Daemon("b", base, initiator=False, conns=conns, args=("-D", "1=50"))
    a = Daemon("a", base, initiator=False, conns=conns, args=("-a", "-D", "1=50"))
    sel = ["src", inner(n, "a") + "/32", "dst", inner(n, "b") + "/32"]
    back = ["src", inner(n, "b") + "/32", "dst", inner(n, "a") + "/32"]
    sh("ip", "-n", "kx-a", "xfrm", "policy", "add", *sel, "dir", "out", "tmpl", "src",
       "10.88.0.1", "dst", "10.88.0.2", "proto", "esp", "mode", "tunnel")
    sh("ip", "-n", "kx-a", "xfrm", "policy", "add", *back, "dir", "in", "tmpl", "src",
       "10.88.0.2", "dst", "10.88.0.1", "proto", "esp", "mode", "tunnel")
    result: dict[str, Any] = {"case": "daemons-on-demand", "pings": ON_DEMAND_PINGS}
    sh("ip", "netns", "exec", "kx-a", "sh", "-c", "echo 3 > /proc/sys/net/core/xfrm_acq_expires")
    try:
        b.start()
        a.start()
        # an ACQUIRE raised before the daemon listens is lost until the larval state times
        # out (xfrm_acq_expires, 3 s here), so start the traffic once both are listening
        result["ready"] = a.wait_log(r"listening on", 30) and b.wait_log(r"listening on", 30)
        time.sleep(1)
        t0 = time.monotonic()
        out = sh("ip", "netns", "exec", "kx-a", "ping", "-n", "-c", str(ON_DEMAND_PINGS), "-i",
                 "0.3", "-W", "1", "-I", inner(n, "a"), inner(n, "b"), check=False).stdout
        result["ping_seconds"] = round(time.monotonic() - t0, 2)
        result["received"] = next(
            (int(p.split()[0]) for p in out.split(",") if "received" in p), 0)
        result["reply_seqs"] = sorted({int(m) for m in re.findall(r"icmp_seq=(\d+)", out)})
        result["phase2_a"] = bool(re.search("phase 2 done", a.log()))
        states = sh("ip", "-n", "kx-a", "xfrm", "state").stdout
        result["esp_states_a"] = states.count("proto esp")
        result["larval_left"] = "spi 0x00000000" in states
    finally:
        result["rc"] = [a.stop(), b.stop()]
        result["policies_left_a"] = sh("ip", "-n", "kx-a", "xfrm", "policy").stdout.count("tmpl")
        result["states_left"] = [sh("ip", "-n", ns, "xfrm", "state").stdout.strip()
                                 for ns in ("kx-a", "kx-b")]
        if not result.get("received"):
            result["log_a"] = a.log()[-4000:]
            result["log_b"] = b.log()[-4000:]
        sh("ip", "-n", "kx-a", "xfrm", "policy", "flush")
        shutil.rmtree(base, ignore_errors=True)
    return result


def main() -> int:
    """Namespaces, then every suite."""
    for ns in ("kx-a", "kx-b"):
        sh("ip", "netns", "add", ns)
    sh("ip", "link", "add", "kxa", "netns", "kx-a", "type", "veth", "peer", "name", "kxb",
       "netns", "kx-b")
    for ns, dev, addr in (("kx-a", "kxa", "10.88.0.1/24"), ("kx-b", "kxb", "10.88.0.2/24")):
        sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "link", "set", dev, "up")
    for n in range(1, len(SUITES) + 2):
        for ns, dev, side, other in (("kx-a", "kxa", "a", "b"), ("kx-b", "kxb", "b", "a")):
            sh("ip", "-n", ns, "addr", "add", inner(n, side) + "/32", "dev", "lo")
            sh("ip", "-n", ns, "route", "add", inner(n, other) + "/32", "dev", dev, "src",
               inner(n, side))
    t0 = time.monotonic()
    try:
        result = run_pair()
    except Exception as e:  # report
        result = {"case": "daemons", "error": repr(e)}
    result["seconds"] = round(time.monotonic() - t0, 2)
    print(json.dumps(result), flush=True)
    t0 = time.monotonic()
    try:
        result = run_on_demand()
    except Exception as e:  # report
        result = {"case": "daemons-on-demand", "error": repr(e)}
    result["seconds"] = round(time.monotonic() - t0, 2)
    print(json.dumps(result), flush=True)
    for ns in ("kx-a", "kx-b"):
        sh("ip", "netns", "del", ns)
    return 0


if __name__ == "__main__":
    sys.exit(main())

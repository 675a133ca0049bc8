"""Early interop with strongSwan charon (IKEv1) in network namespaces, before the daemon exists.

A small UDP driver (charon_driver.py) runs the engine in namespace ke-a-N; charon runs in ke-b-N
with kernel-netlink on a kernel without ESP (reference/interop.md 5.2): Main Mode PSK completes
both ways, Quick Mode runs until charon tries to install its SA.  The Phase 1 keys and the ESP
keys the engine derived must equal the ones charon logged at ike/chd level 4 (interop.md 6).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.interop, pytest.mark.root]

CHARON = "/usr/lib/ipsec/charon"
SWANCTL = shutil.which("swanctl") or "/usr/sbin/swanctl"
HERE = Path(__file__).parent
PSK = "ke-interop-psk-0123456789"
NET = "10.79.0"

if os.geteuid() != 0:
    pytest.skip("needs root for network namespaces", allow_module_level=True)
if not (os.path.exists(CHARON) and os.path.exists(SWANCTL) and shutil.which("ip")):
    pytest.skip("needs strongswan-charon, strongswan-swanctl and iproute2",
                allow_module_level=True)

STRONGSWAN_CONF = """charon {{
    load_modular = no
    load = random nonce openssl aes sha1 sha2 md5 hmac gmp pem pkcs1 pkcs8 x509 revocation \
constraints pubkey kdf curve25519 xcbc cmac ctr ccm gcm socket-default vici {kernel}
    port = 500
    port_nat_t = 4500
    install_routes = no
    retransmit_tries = 3
    i_dont_care_about_security_and_use_aggressive_mode_psk = yes
    plugins {{
        vici {{
            socket = unix://{dir}/charon.vici
        }}
    }}
    filelog {{
        main {{
            path = {dir}/charon.log
            time_format = %H:%M:%S
            ike_name = yes
            append = no
            flush_line = yes
            default = 1
            ike = 4
            chd = 4
            knl = 2
        }}
    }}
    syslog {{
        daemon {{
            default = -1
        }}
    }}
}}
"""

SWANCTL_CONF = """connections {{
    conn {{
        version = 1
        aggressive = {aggressive}
        local_addrs = {me}
        remote_addrs = {peer}
        proposals = aes128-sha1-modp2048
        encap = no
        dpd_delay = {dpd}s
        rekey_time = 1h
        send_cert = never
        unique = no
        local {{
            auth = psk
            id = {my_id}
        }}
        remote {{
            auth = psk
            id = {peer_id}
        }}
        children {{
            conn {{
                mode = tunnel
                esp_proposals = {esp}
                local_ts = {NET}.202/32
                remote_ts = {NET}.201/32
                rekey_time = 20m
                start_action = none
            }}
        }}
    }}
}}
secrets {{
    ike-psk {{
        id-local = {my_id}
        id-remote = {peer_id}
        secret = "{psk}"
    }}
}}
"""

ENGINE_CONF = """[General]
Retransmits=            3
[Phase 1]
{peer}=                 peer
[Phase 2]
Connections=            conn
[peer]
Phase=                  1
Address=                {peer}
Local-address=          {me}
Authentication=         {psk}
Configuration=          p1
{ids}
[p1]
EXCHANGE_TYPE=          {mode}
Transforms=             AES-128-SHA-GRP14
[conn]
Phase=                  2
ISAKMP-peer=            peer
Configuration=          qm
Local-ID=               inner-a
Remote-ID=              inner-b
[qm]
EXCHANGE_TYPE=          QUICK_MODE
Suites=                 {suite}
[inner-a]
ID-type=                IPV4_ADDR
Address=                {NET}.201
[inner-b]
ID-type=                IPV4_ADDR
Address=                {NET}.202
[id-a]
ID-type=                FQDN
Name=                   a.ke.test
[id-b]
ID-type=                FQDN
Name=                   b.ke.test
"""


def run(*cmd: str, check: bool = True, **kw: object) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output."""
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)  # type: ignore[call-overload, no-any-return]


@dataclass
class Lab:
    """Two namespaces, a veth between them, charon in the second."""

    ns_a: str
    ns_b: str
    dir: Path
    charon: subprocess.Popen[bytes] | None = None

    def swanctl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, SWANCTL_DIR=str(self.dir / "swanctl"),
                   STRONGSWAN_CONF=str(self.dir / "strongswan.conf"))
        return subprocess.run(["ip", "netns", "exec", self.ns_b, SWANCTL, *args,
                               "--uri", f"unix://{self.dir}/charon.vici"],
                              capture_output=True, text=True, env=env, timeout=timeout,
                              check=False)

    def charon_keys(self) -> tuple[dict[str, str], list[dict[str, str]]]:
        """Phase 1 keys and per-child key sets from charon's level-4 log (interop.md 6)."""
        text = (self.dir / "charon.log").read_text()
        head = re.compile(r"\] <[^>]*> (.+?) => (\d+) bytes @")
        row = re.compile(r"\] <[^>]*>\s+\d+: ((?:[0-9A-F]{2} )*[0-9A-F]{2})")
        dumps: list[tuple[str, str]] = []
        name, size, buf = "", 0, ""
        for line in text.splitlines():
            m = head.search(line)
            if m:
                name, size, buf = m.group(1).strip(), int(m.group(2)), ""
                if size == 0:
                    dumps.append((name, ""))
                continue
            m = row.search(line)
            if m and name:
                buf += m.group(1).replace(" ", "").lower()
                if len(buf) >= 2 * size:
                    dumps.append((name, buf[: 2 * size]))
                    name = ""
        phase1 = {n: v for n, v in dumps if n in (
            "SKEYID", "SKEYID_d", "SKEYID_a", "SKEYID_e", "encryption key Ka", "initial IV")}
        children: list[dict[str, str]] = []
        for n, v in dumps:
            if n == "initiator SA seed":
                children.append({})
            if children and n in ("initiator SA seed", "responder SA seed",
                                  "encryption initiator key", "encryption responder key",
                                  "integrity initiator key", "integrity responder key"):
                children[-1][n] = v
        return phase1, children


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    tag = str(os.getpid() % 100000)
    ns_a, ns_b = f"ke-a-{tag}", f"ke-b-{tag}"
    veth_a, veth_b = f"kea{tag}", f"keb{tag}"
    lab = Lab(ns_a, ns_b, tmp_path)
    for ns in (ns_a, ns_b):  # left over by a run that was killed
        run("ip", "netns", "del", ns, check=False)
    try:
        run("ip", "netns", "add", ns_a)
        run("ip", "netns", "add", ns_b)
        run("ip", "link", "add", veth_a, "netns", ns_a, "type", "veth", "peer", "name",
            veth_b, "netns", ns_b)
        for ns, dev, addr in ((ns_a, veth_a, f"{NET}.1/24"), (ns_b, veth_b, f"{NET}.2/24")):
            run("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            run("ip", "-n", ns, "link", "set", dev, "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", ns_a, "addr", "add", f"{NET}.201/32", "dev", "lo")
        run("ip", "-n", ns_b, "addr", "add", f"{NET}.202/32", "dev", "lo")
        yield lab
    finally:
        if lab.charon is not None:  # ip and sh exec, so this is charon itself
            lab.charon.terminate()
            try:
                lab.charon.wait(timeout=5)
            except subprocess.TimeoutExpired:
                lab.charon.kill()
                lab.charon.wait()
        run("ip", "netns", "del", ns_a, check=False)
        run("ip", "netns", "del", ns_b, check=False)


def start_charon(lab: Lab, esp: str, aggressive: bool = False, libipsec: bool = False,
                 dpd: int = 0) -> None:
    """Write charon's configuration, start it in ns_b, load the connection."""
    d = lab.dir
    (d / "run").mkdir()
    (d / "swanctl").mkdir()
    kernel = "kernel-libipsec kernel-netlink" if libipsec else "kernel-netlink"
    (d / "strongswan.conf").write_text(STRONGSWAN_CONF.format(dir=d, kernel=kernel))
    ids = ("@b.ke.test", "@a.ke.test") if aggressive else (f"{NET}.2", f"{NET}.1")
    (d / "swanctl" / "swanctl.conf").write_text(SWANCTL_CONF.format(
        me=f"{NET}.2", peer=f"{NET}.1", esp=esp, NET=NET, psk=PSK, my_id=ids[0],
        peer_id=ids[1], aggressive="yes" if aggressive else "no", dpd=dpd))
    env = dict(os.environ, STRONGSWAN_CONF=str(d / "strongswan.conf"))
    log = open(d / "charon.stdout", "w")  # noqa: SIM115 - charon keeps it
    proc = subprocess.Popen(
        ["ip", "netns", "exec", lab.ns_b, "/bin/sh", "-c",
         'mount --bind "$1/run" /run && exec "$2"', "sh", str(d), CHARON],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    lab.charon = proc
    deadline = time.monotonic() + 60  # generous: a loaded machine starts charon slowly
    while not (d / "charon.vici").exists() and time.monotonic() < deadline \
            and proc.poll() is None:
        time.sleep(0.1)
    loaded = lab.swanctl("--load-all", "--noprompt")
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr


def driver(lab: Lab, role: str, suite: str, seconds: int = 25, aggressive: bool = False,
           nat_t: bool = False, linger: float = 3.0, general: str = "",
           awaited: tuple[int, ...] = ()) -> subprocess.Popen[str]:
    """Start the engine's UDP driver in ns_a (``awaited``: notify types it waits for, see
    charon_driver.py)."""
    conf = lab.dir / "engine.conf"
    ids = "ID=                     id-a\nRemote-ID=              id-b" if aggressive else ""
    conf.write_text(ENGINE_CONF.format(peer=f"{NET}.2", me=f"{NET}.1", psk=PSK, suite=suite,
                                       NET=NET, ids=ids,
                                       mode="AGGRESSIVE" if aggressive else "ID_PROT")
                    + general)
    return subprocess.Popen(
        ["ip", "netns", "exec", lab.ns_a, sys.executable, str(HERE / "charon_driver.py"),
         str(conf), f"{NET}.1", role, str(seconds), str(lab.dir / "out.json"),
         "nat-t" if nat_t else "plain", str(linger),
         *([",".join(map(str, awaited))] if awaited else [])],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_bound(lab: Lab, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Wait until the driver listens on its port 500, so that charon's first message is not
    refused (a fixed second was too short for a loaded machine to start the driver)."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        ss = run("ip", "netns", "exec", lab.ns_a, "ss", "-Hnlu", "sport", "=", ":500",
                 check=False).stdout
        if f"{NET}.1:500" in ss.split():
            return
        time.sleep(0.05)
    raise AssertionError(f"the driver did not bind {NET}.1:500: {proc.poll()}")


def check_keys(lab: Lab, ours_are_qm_initiator: bool) -> dict[str, object]:
    """Compare the engine's Phase 1 and ESP keys with charon's log."""
    result = json.loads((lab.dir / "out.json").read_text())
    phase1, children = lab.charon_keys()
    assert phase1, "charon logged no Phase 1 keys"
    assert result["phase1"], result
    for name, value in phase1.items():
        assert result["phase1"][name] == value, name
    assert children and result["phase2"], (children, result)
    [[ours]] = result["phase2"][-1:]
    child = children[-1]
    # "initiator" keys belong to the SA the Quick Mode initiator sends on (interop.md 6).
    i_enc, i_auth = (ours["enc_out"], ours["auth_out"]) if ours_are_qm_initiator else (
        ours["enc_in"], ours["auth_in"])
    r_enc, r_auth = (ours["enc_in"], ours["auth_in"]) if ours_are_qm_initiator else (
        ours["enc_out"], ours["auth_out"])
    assert child["encryption initiator key"] == i_enc
    assert child["integrity initiator key"] == i_auth
    assert child["encryption responder key"] == r_enc
    assert child["integrity responder key"] == r_auth
    i_spi = ours["spi_out"] if ours_are_qm_initiator else ours["spi_in"]
    # the seed is [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b
    assert f"03{i_spi:08x}" in child["initiator SA seed"]
    return result  # type: ignore[no-any-return]


@pytest.mark.parametrize(("pfs", "aggressive"), [(False, False), (True, False), (False, True)])
def test_engine_initiates_main_mode_and_quick_mode(lab: Lab, pfs: bool,
                                                   aggressive: bool) -> None:
    start_charon(lab, "aes128-sha1-modp2048" if pfs else "aes128-sha1", aggressive)
    suite = "QM-ESP-AES-128-SHA-PFS-GRP14-SUITE" if pfs else "QM-ESP-AES-128-SHA-SUITE"
    proc = driver(lab, "initiator", suite, aggressive=aggressive)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    result = check_keys(lab, ours_are_qm_initiator=True)
    kinds = [e[0] for e in result["events"]]  # type: ignore[index]
    assert kinds[:2] == ["Phase1Done", "Phase2Done"], result
    log = (lab.dir / "charon.log").read_text()
    assert "IKE_SA conn[1] established" in log
    assert ("parsed AGGRESSIVE request" in log) == aggressive
    # charon on a kernel without ESP: its SA install fails after our QM3 (interop.md 5.2)
    assert "unable to install" in log or "failed" in log


@pytest.mark.parametrize("aggressive", [False, True])
def test_charon_initiates_main_mode_and_quick_mode(lab: Lab, aggressive: bool) -> None:
    start_charon(lab, "aes128-sha1", aggressive)
    proc = driver(lab, "responder", "QM-ESP-AES-128-SHA-SUITE", aggressive=aggressive)
    wait_bound(lab, proc)
    lab.swanctl("--initiate", "--child", "conn", "--timeout", "15", timeout=40)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    result = check_keys(lab, ours_are_qm_initiator=False)
    events = result["events"]
    assert events[0][0] == "Phase1Done", events  # type: ignore[index]
    # charon cannot install its SA and answers QM2 with NO_PROPOSAL_CHOSEN (interop.md 5.2)
    assert ["ExchangeFailed", 14, "peer sent NO_PROPOSAL_CHOSEN"] in events  # type: ignore[operator]


@pytest.mark.parametrize("role", ["initiator", "responder"])
def test_full_quick_mode_with_userspace_esp_charon(lab: Lab, role: str) -> None:
    """charon with kernel-libipsec completes Quick Mode, but always claims a NAT (interop.md
    5.3): NAT-D, the float to 4500 and UDP-encapsulated ESP must all work for that."""
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("kernel-libipsec needs /dev/net/tun")
    start_charon(lab, "aes128-sha1", libipsec=True)
    proc = driver(lab, role, "QM-ESP-AES-128-SHA-SUITE", nat_t=True)
    if role == "responder":
        wait_bound(lab, proc)
        lab.swanctl("--initiate", "--child", "conn", "--timeout", "15", timeout=40)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    result = check_keys(lab, ours_are_qm_initiator=role == "initiator")
    kinds = [e[0] for e in result["events"]]  # type: ignore[index]
    assert kinds[:2] == ["Phase1Done", "Phase2Done"], result
    log = (lab.dir / "charon.log").read_text()
    assert "CHILD_SA conn{1} established" in log
    assert "faking NAT situation to enforce UDP encapsulation" in log  # libipsec's claim ...
    assert f"from {NET}.1[4500] to {NET}.2[4500]" in log  # ... which we took up: the float
    assert result["phase2"][-1][0]["encapsulation"] == 3  # type: ignore[index]  # UDP_ENCAP_TUNNEL


def test_dead_peer_detection_both_ways(lab: Lab) -> None:
    """charon (dpd_delay 2 s) probes us and we answer; our probes (interval 4 s) it answers.

    charon probes only after dpd_delay of silence, counted in whole seconds, and our probes are
    traffic to it: with equal intervals ours can keep arriving just before its check and it
    never probes (under load it did not, once).  Four seconds leave it an idle second or more
    between two of ours.  The driver stays until both notifies came, then 3 s more (no SA may
    go meanwhile)."""
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("kernel-libipsec needs /dev/net/tun")
    start_charon(lab, "aes128-sha1", libipsec=True, dpd=2)
    proc = driver(lab, "initiator", "QM-ESP-AES-128-SHA-SUITE", seconds=60, nat_t=True,
                  linger=3, general="[General]\nDPD-check-interval=     4\n",
                  awaited=(36136, 36137))
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out
    result = json.loads((lab.dir / "out.json").read_text())
    kinds = [e[0] for e in result["events"]]
    assert kinds[:2] == ["Phase1Done", "Phase2Done"], result
    notifies = [e[1] for e in result["events"] if e[0] == "NotifyReceived"]
    assert 36136 in notifies and 36137 in notifies  # R-U-THERE from charon, its ACK to ours
    assert "SADeleted" not in kinds

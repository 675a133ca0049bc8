"""Real isakmpd processes on loopback: negotiation, every FIFO command, signals, reload,
start-up errors, privilege separation, floods, and seeded runs compared byte for byte."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CONF_ROOT = Path(__file__).resolve().parents[2]


def _isakmpd(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    import sys

    code = "import sys; from ike.daemon.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd)  # fmt: skip


def test_usage_and_bad_option() -> None:
    ok = _isakmpd("-h")
    assert ok.returncode == 0 and ok.stdout.startswith("usage: isakmpd [-46adKLnSTv]")
    assert "-D class=level" in ok.stdout
    bad = _isakmpd("-x")
    assert bad.returncode == 1
    assert bad.stderr.startswith("isakmpd: unknown option -x\nusage: isakmpd")
    missing = _isakmpd("-c")
    assert missing.returncode == 1 and "option -c requires an argument" in missing.stderr


def _write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    ("conf", "conf_mode", "policy", "words"),
    [
        ("[General]\nnonsense here\n", 0o600, "", r"isakmpd\.conf:2: syntax error"),
        ("[General]\n", 0o644, "", r"isakmpd\.conf: mode 0644 gives access to group or others"),
        ("[General]\nPolicy-file=POLICY\n", 0o600, "Authorizer: \"POLICY\n",
         r"policy: .*isakmpd\.policy"),
    ],
)  # fmt: skip
def test_startup_errors_exit_nonzero(
    tmp_path: Path, conf: str, conf_mode: int, policy: str, words: str
) -> None:
    policy_path = _write(tmp_path / "isakmpd.policy", policy or "x")
    conf = conf.replace("POLICY", str(policy_path))
    _write(tmp_path / "isakmpd.conf", conf, conf_mode)
    done = _isakmpd("-d", "-n", "-c", str(tmp_path / "isakmpd.conf"), "--run-dir", str(tmp_path),
                    "-p", "40500")  # fmt: skip
    assert done.returncode == 1
    assert re.search(words, done.stderr), done.stderr
    assert not (tmp_path / "isakmpd.fifo").exists()


def test_negotiation_and_every_fifo_command(
    wait: Callable[..., bool], make_pair: Callable[..., Any]
) -> None:
    pair = make_pair(west_args=("-D", "6=30"))
    pair.negotiate()
    east, west = pair.east, pair.west
    for proc, role in ((east, "Initiator"), (west, "Responder")):
        text = proc.sas()
        assert f"(Phase 1/{role})" in text and "(Phase 2)" in text
        assert "Encryption algorithm: AES (CBC)" in text
        assert "Authentication algorithm: HMAC-SHA1" in text
    assert "phase 1 done (as initiator)" in east.log()
    assert "phase 1 done (as responder)" in west.log()

    # privilege separation: as root the child is _isakmpd in the empty chroot
    child = east.child_pid()
    status = Path(f"/proc/{child}/status").read_text()
    uid = int(re.search(r"Uid:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    if os.geteuid() == 0:
        assert uid != 0
        assert os.readlink(f"/proc/{child}/root") == "/var/empty"
        assert "chrooted to /var/empty" in east.log()
    else:
        assert "not running as root" in east.log()

    # C set / get / add / rmv / rm / rms
    assert east.query("C get [General]:Retransmits") == "3\n"
    east.command("C set [General]:Test-tag=one")
    assert east.query("C get [general]:test-tag") == "one\n"
    east.command("C set [General]:Test-tag=two")
    assert east.query("C get [General]:Test-tag") == "one\n"
    east.wait_log(r"duplicate tag \[General\]:Test-tag")
    east.command("C set [General]:Test-tag=two force")
    assert east.query("C get [General]:Test-tag") == "two\n"
    east.command("C add [General]:Test-tag=three")
    assert east.query("C get [General]:Test-tag") == "two,three\n"
    east.command("C rmv [General]:Test-tag=two")
    assert east.query("C get [General]:Test-tag") == "three\n"
    east.command("C rm [General]:Test-tag")
    assert east.query("C get [General]:Test-tag") == ""
    east.command("C rms [Net-west]")
    assert east.query("C get [Net-west]:Network") == ""
    assert east.query("C get [QM-ESP-AES-SHA-PFS-XF]:TRANSFORM_ID") == "AES\n"

    # D, M, r, SIGUSR1
    east.command("D 6 80")
    east.wait_log(r"debug levels now \[0, 0, 0, 0, 0, 0, 80,")
    east.command("D T")
    east.wait_log(r"debug levels now \[0, 0, 0, 0, 0, 0, 0,")
    east.command("D A 0")
    east.command("M passive")
    east.wait_log("daemon mode: passive")
    east.command("M active")
    east.command("r")
    east.wait_log(r"Report> sa_report: 0x[0-9a-f]+ ISAKMP-peer-west phase 1")
    east.wait_log(r"Report> conf_report: dumping running configuration")
    assert "mekmitasdigoat" not in east.log()
    east.signal(signal.SIGUSR1)
    report = east.dir / "isakmpd.report"
    assert wait(lambda: report.exists() and "conf_report" in report.read_text())
    assert re.search(r"(?m)^\d{6}\.\d{6} Report> transport_report: ", report.read_text())

    # p on / p off around a teardown and a reconnect
    east.command("p on")
    pcap = east.dir / "isakmpd.pcap"
    assert wait(pcap.exists)
    east.command("p on=/etc/isakmpd-test-evil.pcap")
    east.wait_log(r"refused open request: /etc/isakmpd-test-evil\.pcap")
    east.command("p on")
    east.command("t quick IPsec-east-west")
    west.wait_log(r"ipsec SA IPsec-west-east deleted")
    # without -D too: why an SA went is logged as its establishment is
    east.wait_log(r"ipsec SA IPsec-east-west deleted: deleted by request")
    assert "(Phase 2)" not in east.sas()
    east.command("c IPsec-east-west")
    assert wait(lambda: "(Phase 2)" in east.sas())
    east.command("p off")
    east.wait_log("packet capture stopped")
    if shutil.which("tshark"):
        # unprivileged ports: tell tshark they carry ISAKMP
        decode = ["-d", f"udp.port=={east.port},isakmp"]
        out = subprocess.run(["tshark", "-r", str(pcap), *decode, "-V"], capture_output=True,
                             text=True, timeout=60, check=True).stdout  # fmt: skip
        assert "Informational (5)" in out and "Quick Mode (32)" in out
        assert "Malformed" not in out
        # payloads decrypted: the DELETE and the Quick Mode SA/nonce/ID payloads show
        assert "Encryption: Not encrypted" in out and "Encryption: Encrypted" not in out
        assert "Payload: Delete (12)" in out
        assert "Payload: Nonce (10)" in out and "Payload: Identification (5)" in out

    # T, then d for the phase 1 SA
    east.command("T")
    assert wait(lambda: "(Phase 2)" not in east.sas())
    cookies = re.search(r"icookie (\w+) rcookie (\w+)", east.sas())
    assert cookies is not None
    east.command(f"d {cookies.group(1)}{cookies.group(2)} -")
    assert wait(lambda: "(Phase 1" not in east.sas())

    # 1,000 malformed lines are logged and ignored; the FIFO keeps working
    fd = os.open(east.fifo, os.O_WRONLY)
    for i in range(1000):
        os.write(fd, (f"bogus {i}\n" if i % 2 else f"C frob [x]:{i}\n").encode())
    os.close(fd)
    assert "Phase" not in east.sas()
    assert east.log().count("malformed") + east.log().count("unrecognized") >= 1000

    # R rereads the configuration (dropping the C edits), then Q stops cleanly
    east.command("R")
    east.wait_log("reinit: configuration and policy reloaded")
    assert east.query("C get [Net-west]:Network") == "192.168.1.0\n"
    east.command("Q")
    assert east.proc is not None and east.proc.wait(timeout=15) == 0
    assert not east.fifo.exists() and not (east.dir / "isakmpd.pid").exists()


def test_reload_refuses_broken_config_and_sigterm_deletes(
    wait: Callable[..., bool], make_pair: Callable[..., Any]
) -> None:
    pair = make_pair(west_args=("-D", "6=30"))
    pair.negotiate()
    east, west = pair.east, pair.west
    conf = east.dir / "isakmpd.conf"
    good = conf.read_text()
    conf.write_text(good + "[Broken\n")
    east.signal(signal.SIGHUP)
    east.wait_log(r"reinit refused: .*isakmpd\.conf:\d+: non-matched '\]'.*keeping the previous")
    conf.write_text(good)
    conf.chmod(0o644)
    east.command("R")
    east.wait_log(r"reinit refused: .*isakmpd\.conf: mode 0644")
    assert east.query("C get [General]:Check-interval") == "10\n"
    assert "(Phase 2)" in east.sas()
    conf.write_text(good.replace("[General]\n", "[General]\nRenegotiate-on-HUP=yes\n", 1))
    conf.chmod(0o600)
    east.signal(signal.SIGHUP)  # a good file again: reloaded, and phase 2 renegotiated
    east.wait_log("reinit: configuration and policy reloaded")
    assert wait(lambda: east.log().count("phase 2 done") >= 2), east.log()
    east.signal(signal.SIGTERM)
    assert east.proc is not None and east.proc.wait(timeout=15) == 0
    west.wait_log(r"ipsec SA IPsec-west-east deleted")
    west.wait_log(r"isakmp SA ISAKMP-peer-east deleted")


def _payloads(pcap: Path) -> list[bytes]:
    data = pcap.read_bytes()[24:]
    out = []
    while data:
        _sec, _usec, incl, _orig = struct.unpack_from("<IIII", data)
        frame = data[16 : 16 + incl]
        out.append(frame[4 + 20 + 8 :])
        data = data[16 + incl :]
    return out


def test_seeded_runs_send_identical_bytes(make_pair: Callable[..., Any]) -> None:
    captures: list[list[bytes]] = []
    ports: tuple[int, int] | None = None
    for run in range(2):
        # the same ports in both runs: they are part of what is compared
        pair = make_pair(f"seeded{run}", east_args=("-r", "7", "-L"), west_args=("-r", "8"),
                         ports=ports)  # fmt: skip
        ports = (pair.east.port, pair.west.port)
        pair.negotiate()
        pair.east.command("Q")
        assert pair.east.proc.wait(timeout=15) == 0
        pair.west.stop()
        captures.append(_payloads(pair.east.dir / "isakmpd.pcap"))
    first, second = captures
    assert len(first) >= 9  # MM 6, QM 3, and the DELETEs of Q
    assert first == second


def test_garbage_floods_then_negotiation(make_pair: Callable[..., Any]) -> None:
    pair = make_pair()
    pair.west.start()
    rng = __import__("random").Random(5)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(10_000):
            size = rng.choice((0, 1, 7, 28, 40, 200))
            junk = bytes(rng.getrandbits(8) for _ in range(size))
            if i % 3 == 0 and size >= 28:  # an ISAKMP-looking header with random payloads
                junk = (
                    junk[:16]
                    + bytes([1, 0x10, 2, 0])
                    + bytes(4)
                    + struct.pack("!I", size)
                    + junk[28:]
                )
            s.sendto(junk, ("127.0.0.1", pair.west.port))
            if i % 500 == 0:
                time.sleep(0.01)
    fd = os.open(pair.west.fifo, os.O_WRONLY)
    try:
        for i in range(1000):
            os.write(fd, f"{'xCDMp'[i % 5]} {'[' * (i % 3)}garbage {i}\n".encode())
    finally:
        os.close(fd)
    pair.west.wait_log(r"garbage 999")
    fifo_errors = re.findall(r"ui_\w+: (?:command '.*' malformed|unrecognized command)",
                             pair.west.log())  # fmt: skip
    assert len(fifo_errors) == 1000
    pair.east.start()
    pair.east.wait_log("phase 2 done", timeout=60)
    assert "(Phase 2)" in pair.west.sas()


def test_ipv6_and_connections_kept_up(
    wait: Callable[..., bool], make_pair: Callable[..., Any]
) -> None:
    pair = make_pair(east_extra="Check-interval=1\n", ipv6=True)
    pair.negotiate()
    east, west = pair.east, pair.west
    assert "src: ::1 dst: ::1" in east.sas()
    west.command("t quick IPsec-west-east")  # west deletes; east's checker brings it back
    assert wait(lambda: east.log().count("phase 2 done") >= 2, 30), east.log()
    assert wait(lambda: "(Phase 2)" in west.sas())
    east.command("t main ::1")  # phase 1 SAs with that peer address go
    assert wait(lambda: "(Phase 1" not in east.sas())
    assert "(Phase 2)" in east.sas()  # IPsec SAs outlive their ISAKMP SA, as in isakmpd


def test_sigint_with_d_shuts_down(make_pair: Callable[..., Any]) -> None:
    pair = make_pair()
    west = pair.west
    west.extra = ["-K"]
    west.start()
    assert west.proc is not None
    west.wait_log("chrooted|not running as root")
    west.sas()  # the FIFO is served: the signal handlers are in place
    os.kill(west.child_pid(), signal.SIGINT)  # what ^C does to the protocol process
    assert west.proc.wait(timeout=15) == 0
    west.wait_log("shutting down")

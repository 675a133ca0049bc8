"""XAUTH and mode-config between two of our daemons in namespaces (issue 8).

a (the XAUTH client, ``Flags=ikecfg`` with ``Mode=REQ``) initiates Phase 1 to b, the XAUTH
server checking the ``XAUTH-Users`` section; after a good password a asks b for its address,
netmask and DNS server, which b hands out from ``[ipv4/<a's ID>]``.  A wrong password makes b
refuse and both drop the ISAKMP SA.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from harness import isakmpd, netns
from harness.scenario import pair

pytestmark = [pytest.mark.interop, pytest.mark.root]


@dataclass
class CfgIsakmpd(isakmpd.IsakmpdPeer):
    """Our daemon with extra lines in its peer section and extra sections."""

    peer_extra: str = ""
    sections: str = ""

    def conf_text(self) -> str:
        """The harness's isakmpd.conf with our additions."""
        text = super().conf_text()
        head = f"[peer-{self.conns[0].name}]\n"
        return text.replace(head, head + self.peer_extra, 1) + "\n" + self.sections


@pytest.fixture
def started(plain_topo: netns.Topology) -> Iterator[list[CfgIsakmpd]]:
    """The daemons a test started, stopped afterwards (by PID)."""
    daemons: list[CfgIsakmpd] = []
    yield daemons
    for d in daemons:
        d.stop()


def _run(topo: netns.Topology, workdir: Path, started: list[CfgIsakmpd],
         password: str, source: str = "XAUTH-Users=\t\tki-users\n") -> tuple[CfgIsakmpd,
                                                                              CfgIsakmpd]:
    conn_a, conn_b = pair(topo)
    a = CfgIsakmpd("a", topo.a, workdir / "a", [conn_a], kernel="none",
                   peer_extra=f"Flags=\t\t\tikecfg\nXAUTH-User=\t\talice\n"
                              f"XAUTH-Password=\t\t{password}\n",
                   sections=f"[ipv4/{topo.b.addr}]\nMode=\t\t\tREQ\n"
                            "Attributes=\t\tAddress,Netmask,Nameserver\n")
    b = CfgIsakmpd("b", topo.b, workdir / "b", [conn_b], kernel="none",
                   peer_extra=source,
                   sections=f"[ki-users]\nalice=\t\t\twonderland\n"
                            f"[ipv4/{topo.a.addr}]\nAddress=\t\t10.99.2.7\n"
                            "Netmask=\t\t255.255.255.0\nNameserver=\t\t10.99.2.53\n")
    started += [a, b]
    a.launch()
    b.launch()
    a.ready()
    b.ready()
    a.command("c peer-ki")
    return a, b


def _result(d: CfgIsakmpd) -> str:
    path = d.dir / "isakmpd.result"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size:
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{d.name}: no S result")


def test_xauth_then_mode_config(plain_topo: netns.Topology, workdir: Path,
                                started: list[CfgIsakmpd]) -> None:
    a, b = _run(plain_topo, workdir, started, "wonderland")
    b.wait_log(r"XAUTH user 'alice' from 10\.77\.0\.1 accepted", 30)
    a.wait_log(r"XAUTH as 'alice' with 10\.77\.0\.2 succeeded", 30)
    m = a.wait_log(r"mode-config from 10\.77\.0\.2: (.*)", 30)
    assert m.group(1) == ("INTERNAL_IP4_ADDRESS=10.99.2.7, INTERNAL_IP4_NETMASK=255.255.255.0, "
                          "INTERNAL_IP4_DNS=10.99.2.53")
    assert "wonderland" not in a.log_path.read_text() + b.log_path.read_text()
    # the S result file shows what the Transaction exchanges settled
    for d in (a, b):
        (d.dir / "isakmpd.result").unlink(missing_ok=True)
        d.command("S")
    a_sa = _result(a)
    assert "Mode-config: INTERNAL_IP4_ADDRESS 10.99.2.7\n" in a_sa
    assert "XAUTH: ok\n" in a_sa
    assert "XAUTH: ok (user alice)\n" in _result(b)


def test_xauth_wrong_password_refused(plain_topo: netns.Topology, workdir: Path,
                                     started: list[CfgIsakmpd]) -> None:
    a, b = _run(plain_topo, workdir, started, "guess")
    b.wait_log(r"XAUTH user 'alice' from 10\.77\.0\.1 refused", 30)
    a.wait_log(r"XAUTH as 'alice' with 10\.77\.0\.2 failed", 30)
    assert "mode-config from" not in a.log_path.read_text()


def test_xauth_password_file(plain_topo: netns.Topology, workdir: Path,
                             started: list[CfgIsakmpd]) -> None:
    """The server checks a password file (read through the privileged monitor)."""
    path = workdir / "b" / "xauth.passwd"
    path.parent.mkdir(parents=True)
    path.write_text("# user:password\nalice:wonderland\n")
    path.chmod(0o600)
    a, b = _run(plain_topo, workdir, started, "wonderland",
                source=f"XAUTH-Password-File=\t{path}\n")
    b.wait_log(r"XAUTH user 'alice' from 10\.77\.0\.1 accepted", 30)
    a.wait_log(r"mode-config from 10\.77\.0\.2: INTERNAL_IP4_ADDRESS=10\.99\.2\.7", 30)

"""Mode-config (the Transaction exchange) between charon and our daemon (issue 8).

charon as the client (``vips = 0.0.0.0``, pull mode) asks our daemon, which answers from the
IKECFG-ID section named after charon's Phase 1 ID; charon as the server (``pools``) answers our
daemon's REQUEST (``Flags=ikecfg``, ``Mode=REQ``) with an address from its pool.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from harness import charon, isakmpd, netns
from harness.scenario import pair

pytestmark = [pytest.mark.interop, pytest.mark.root]


@dataclass
class CfgCharon(charon.CharonPeer):
    """charon with mode-config: ``conn_extra`` goes into the connection, ``top_extra`` (pools)
    beside ``connections``."""

    conn_extra: str = ""
    top_extra: str = ""
    rounds: str = ""
    """Further authentication rounds (``local-xauth {...}``), after the first ones."""

    def strongswan_conf(self) -> str:
        """The harness's strongswan.conf, plus the XAUTH plugin (client and server)."""
        return super().strongswan_conf().replace(" vici ", " vici xauth-generic ", 1)

    def swanctl_conf(self) -> str:
        """The harness's swanctl.conf with our additions."""
        text = super().swanctl_conf()
        text = text.replace("        version = 1\n", f"        version = 1\n{self.conn_extra}", 1)
        text = text.replace("        children {\n", f"{self.rounds}        children {{\n", 1)
        return text + self.top_extra


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
def peers(plain_topo: netns.Topology, workdir: Path) -> Iterator[dict[str, object]]:
    """The connections of both sides, and a list the test fills with the peers to stop."""
    why = charon.available()
    if why is not None:
        pytest.skip(why)
    theirs, ours = pair(plain_topo)
    started: list[object] = []
    yield {"theirs": theirs, "ours": ours, "started": started, "dir": workdir}
    for p in started:
        p.stop()  # type: ignore[attr-defined]


def _up(peers: dict[str, object], ours: CfgIsakmpd, sw: CfgCharon) -> None:
    """Start both daemons (stopped by the fixture) and wait until they listen."""
    started = peers["started"]
    assert isinstance(started, list)
    started += [ours, sw]
    ours.launch()
    sw.launch()
    ours.ready()
    sw.ready()


def test_charon_client_gets_our_address_and_dns(plain_topo: netns.Topology,
                                                peers: dict[str, object]) -> None:
    d = peers["dir"]
    assert isinstance(d, Path)
    sw = CfgCharon("swa", plain_topo.a, d / "swa", [peers["theirs"]],  # type: ignore[list-item]
                   conn_extra="        vips = 0.0.0.0\n")
    ours = CfgIsakmpd("ours", plain_topo.b, d / "ours", [peers["ours"]],  # type: ignore[list-item]
                      sections=f"[ipv4/{plain_topo.a.addr}]\nAddress=\t\t10.99.0.5\n"
                               "Netmask=\t\t255.255.255.0\nNameserver=\t\t10.99.0.53\n")
    _up(peers, ours, sw)
    sw.initiate_ike("ki", timeout=15)
    sw.wait_log(r"installing new virtual IP 10\.99\.0\.5", 30)
    ours.wait_log(r"mode-config: 1 attributes for 10\.77\.0\.1 from \[ipv4/10\.77\.0\.1\]", 30)
    assert "[10.99.0.5]" in sw.list_sas()


def test_our_request_answered_from_charon_pool(plain_topo: netns.Topology,
                                               peers: dict[str, object]) -> None:
    d = peers["dir"]
    assert isinstance(d, Path)
    sw = CfgCharon("swa", plain_topo.a, d / "swa", [peers["theirs"]],  # type: ignore[list-item]
                   conn_extra="        pools = kipool\n",
                   top_extra="pools {\n    kipool {\n        addrs = 10.99.1.16/28\n"
                             "        dns = 10.99.1.53\n    }\n}\n")
    ours = CfgIsakmpd("ours", plain_topo.b, d / "ours", [peers["ours"]],  # type: ignore[list-item]
                      peer_extra="Flags=\t\t\tikecfg\n",
                      sections=f"[ipv4/{plain_topo.a.addr}]\nMode=\t\t\tREQ\n"
                               "Attributes=\t\tAddress,Nameserver\n")
    _up(peers, ours, sw)
    ours.command("c peer-ki")
    m = ours.wait_log(r"mode-config from 10\.77\.0\.1: (.*)", 30)
    # the pool's first host address (charon skips the network address)
    assert m.group(1) == "INTERNAL_IP4_ADDRESS=10.99.1.17, INTERNAL_IP4_DNS=10.99.1.53"
    assert "[10.99.1.17]" in sw.list_sas()


XAUTH_TRANSFORM = """[ki-xauth-psk]
ENCRYPTION_ALGORITHM=\tAES_CBC
KEY_LENGTH=\t\t128,128:128
HASH_ALGORITHM=\t\tSHA
AUTHENTICATION_METHOD=\tXAUTH_INIT_PRESHARED
GROUP_DESCRIPTION=\tMODP_2048
Life=\t\t\tLIFE_MAIN_MODE
"""


class XauthIsakmpd(CfgIsakmpd):
    """Our daemon proposing and accepting XAUTHInitPreShared (65001), as charon does when an
    XAUTH round follows the pre-shared key."""

    def conf_text(self) -> str:
        """Phase 1 with the XAUTH-PSK transform."""
        text = super().conf_text()
        start = text.index("Transforms=", text.index(f"[p1-{self.conns[0].name}]"))
        end = text.index("\n", start)
        return text[:start] + "Transforms=\t\tki-xauth-psk" + text[end:] + "\n" + XAUTH_TRANSFORM


@pytest.mark.parametrize("aggressive", [False, True], ids=["main", "aggressive"])
def test_charon_xauth_client_checked_by_us(plain_topo: netns.Topology,
                                           peers: dict[str, object], aggressive: bool) -> None:
    """The road warrior: charon authenticates with PSK (Main or Aggressive Mode, where its ID is
    the FQDN a.ki.test), then XAUTH, then pulls its address."""
    d = peers["dir"]
    assert isinstance(d, Path)
    if aggressive:
        peers["theirs"], peers["ours"] = pair(plain_topo, aggressive=True)
    cfg_id = "fqdn/a.ki.test" if aggressive else f"ipv4/{plain_topo.a.addr}"
    sw = CfgCharon("swa", plain_topo.a, d / "swa", [peers["theirs"]],  # type: ignore[list-item]
                   conn_extra="        vips = 0.0.0.0\n",
                   rounds="        local-xauth {\n            auth = xauth\n"
                          "            xauth_id = alice\n        }\n",
                   top_extra='secrets {\n    xauth-ki {\n        id = alice\n'
                             '        secret = "wonderland"\n    }\n}\n')
    ours = XauthIsakmpd("ours", plain_topo.b, d / "ours", [peers["ours"]],  # type: ignore[list-item]
                        peer_extra="XAUTH-Users=\t\tki-users\n",
                        sections=f"[ki-users]\nalice=\t\t\twonderland\n"
                                 f"[{cfg_id}]\nAddress=\t\t10.99.3.9\n")
    _up(peers, ours, sw)
    sw.initiate_ike("ki", timeout=15)
    ours.wait_log(r"XAUTH user 'alice' from 10\.77\.0\.1 accepted", 30)
    sw.wait_log(r"XAuth authentication of 'alice' \(myself\) successful", 30)
    sw.wait_log(r"installing new virtual IP 10\.99\.3\.9", 30)


def test_we_are_xauth_client_of_charon(plain_topo: netns.Topology,
                                       peers: dict[str, object]) -> None:
    d = peers["dir"]
    assert isinstance(d, Path)
    sw = CfgCharon("swa", plain_topo.a, d / "swa", [peers["theirs"]],  # type: ignore[list-item]
                   conn_extra="        pools = kipool\n",
                   rounds="        remote-xauth {\n            auth = xauth\n        }\n",
                   top_extra="pools {\n    kipool {\n        addrs = 10.99.4.16/28\n    }\n}\n"
                             'secrets {\n    xauth-ki {\n        id = alice\n'
                             '        secret = "wonderland"\n    }\n}\n')
    ours = XauthIsakmpd("ours", plain_topo.b, d / "ours", [peers["ours"]],  # type: ignore[list-item]
                        peer_extra="Flags=\t\t\tikecfg\nXAUTH-User=\t\talice\n"
                                   "XAUTH-Password=\t\twonderland\n",
                        sections=f"[ipv4/{plain_topo.a.addr}]\nMode=\t\t\tREQ\n"
                                 "Attributes=\t\tAddress\n")
    _up(peers, ours, sw)
    ours.command("c peer-ki")
    ours.wait_log(r"XAUTH as 'alice' with 10\.77\.0\.1 succeeded", 30)
    m = ours.wait_log(r"mode-config from 10\.77\.0\.1: (.*)", 30)
    assert m.group(1) == "INTERNAL_IP4_ADDRESS=10.99.4.17"

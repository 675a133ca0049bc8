"""NAT-keepalives in namespaces (issue 8): our daemon behind the masquerading NAT keeps its
mapping open towards charon with one 0xFF byte on the NAT-T port every ``NAT-T-Keepalive``
seconds, and its IPsec SA with charon's userspace ESP stays usable."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from harness import charon, isakmpd, netns
from harness.model import running
from harness.scenario import pair

pytestmark = [pytest.mark.interop, pytest.mark.root]


@dataclass
class KeepaliveIsakmpd(isakmpd.IsakmpdPeer):
    """Our daemon sending NAT-keepalives every second."""

    def conf_text(self) -> str:
        """The harness's isakmpd.conf with NAT-T-Keepalive in [General]."""
        return super().conf_text().replace("[General]\n", "[General]\nNAT-T-Keepalive=\t1\n", 1)


@pytest.fixture
def behind_nat(nat_topo: netns.Topology,
               workdir: Path) -> Iterator[tuple[KeepaliveIsakmpd, charon.CharonPeer]]:
    """Our daemon in a (behind the NAT) with its SA up to charon (userspace ESP) in b."""
    why = charon.available()
    if why is not None:
        pytest.skip(why)
    ours_conn, theirs = pair(nat_topo)
    ours = KeepaliveIsakmpd("ours", nat_topo.a, workdir / "ours", [ours_conn])
    sw = charon.CharonPeer("swb", nat_topo.b, workdir / "swb", [theirs], ipsec="libipsec")
    with running(ours, sw):
        assert ours.initiate("ki", timeout=20)
        yield ours, sw


def test_keepalives_cross_the_nat_to_port_4500(
        nat_topo: netns.Topology,
        behind_nat: tuple[KeepaliveIsakmpd, charon.CharonPeer]) -> None:
    _ours, sw = behind_nat
    # one-byte UDP payloads (UDP length 9) of 0xFF arriving at charon's NAT-T port; tcpdump
    # stops at the third, so the generous bound (a loaded machine starts tcpdump slowly, and one
    # a second left no room for that in 5 s) costs nothing when they come
    cap = nat_topo.b.run(["timeout", "30", "tcpdump", "-n", "-l", "-i", "b0", "-c", "3",
                          "udp dst port 4500 and udp[4:2] = 9 and udp[8] = 0xff"],
                         check=False, timeout=40)
    lines = [ln for ln in cap.stdout.splitlines() if "isakmp-nat-keep-alive" in ln]
    assert len(lines) == 3, cap.stdout + cap.stderr
    assert all(f" {nat_topo.a_seen_by_b}." in ln and ln.endswith(
        f"> {nat_topo.b.addr}.4500: isakmp-nat-keep-alive") for ln in lines)
    assert [c for c in sw.child_sas() if c.mode == "TUNNEL-in-UDP"]

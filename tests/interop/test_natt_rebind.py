"""A NAT mapping that changes under established SAs (issue 8): charon behind the masquerading
router, whose UDP mappings expire after a second (so every idle DPD probe leaves from a new
random port); our daemon follows charon to each new port, re-installs the UDP-encapsulated SAs
towards it with the same keys, and nothing is renegotiated or declared dead."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from harness import charon, isakmpd, netns
from harness.model import running
from harness.scenario import pair

pytestmark = [pytest.mark.interop, pytest.mark.root]


@pytest.fixture
def rebinding(nat_topo: netns.Topology,
              workdir: Path) -> Iterator[tuple[isakmpd.IsakmpdPeer, charon.CharonPeer]]:
    """charon (userspace ESP, DPD every 2 s) in a behind the NAT, our daemon in b, SA up."""
    why = charon.available()
    if why is not None:
        pytest.skip(why)
    theirs, ours_conn = pair(nat_topo, dpd_delay=2)
    sw = charon.CharonPeer("swa", nat_topo.a, workdir / "swa", [theirs], ipsec="libipsec")
    ours = isakmpd.IsakmpdPeer("ours", nat_topo.b, workdir / "ours", [ours_conn])
    with running(ours, sw):
        assert sw.initiate("ki", timeout=20)
        yield ours, sw


def test_sas_follow_a_new_nat_port(nat_topo: netns.Topology,
                                   rebinding: tuple[isakmpd.IsakmpdPeer,
                                                    charon.CharonPeer]) -> None:
    ours, sw = rebinding
    assert nat_topo.router is not None
    ours.wait_log(r"phase 2 done: ki", 30)
    before = ours.esp_keys()
    assert before and all(k.encap for k in before.values())
    old_port = {k.encap.split()[2] for k in before.values()}
    assert len(old_port) == 1
    # answered UDP flows count as streams: both timeouts go down to a second
    nat_topo.router.run(["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_udp_timeout=1",
                         "net.netfilter.nf_conntrack_udp_timeout_stream=1"])
    moves = r"peer 10\.77\.0\.3:(\d+) now at 10\.77\.0\.3:(\d+)"
    # the first move is the float to 4500 in Main Mode; the next ones are new mappings
    ours.wait_log(rf"(?s)({moves}.*){{2}}", 45)
    deadline = time.monotonic() + 30
    while True:
        after = ours.esp_keys()
        ports = {k.encap.split()[2] for k in after.values()}
        if (ports and ports != old_port) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert set(after) == set(before)  # same SPIs, same keys, only the port moved
    assert all(after[spi] == before[spi] for spi in before)
    last = re.findall(moves, ours.log_path.read_text())[-1]
    assert ports == {last[1]} and last[1] != last[0]
    assert [c for c in sw.child_sas() if c.state == "INSTALLED"]
    assert "DPD check timed out" not in sw.log_path.read_text()
    assert "is dead" not in ours.log_path.read_text()

"""Dead peer detection both ways with charon (issue 8, DPD acceptance): our daemon probes too.

Our daemon has ``DPD-check-interval = 3`` and charon ``dpd_delay = 1s``: on the idle IKE SA each
side's R-U-THERE is acknowledged by the other.  When the link is cut, charon gives us up after
its timeout (3 s) and our daemon gives charon up after the interval plus isakmpd's five probes
5 s apart (reference/isakmpd.md 6.6), removing the ISAKMP SA without a DELETE.

Our interval is the longer one on purpose: charon probes only after ``dpd_delay`` without
inbound traffic, counted in whole seconds, and our probes are such traffic.  With both at 1 s
ours could keep arriving just before charon's check, and charon then did not probe at all for
many seconds (seen under load); 3 s leaves it an idle second between two of ours.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from harness import charon, isakmpd, netns
from harness.model import running
from harness.scenario import pair

pytestmark = [pytest.mark.interop, pytest.mark.root]

INTERVAL = 3
"""Our DPD-check-interval, seconds."""
DPD_LIMIT = INTERVAL + 5 * 5.0
"""Our daemon's worst case: the check interval, then five unanswered probes 5 s apart."""


@dataclass
class DpdIsakmpd(isakmpd.IsakmpdPeer):
    """Our daemon probing its peer every INTERVAL seconds of silence."""

    def conf_text(self) -> str:
        """The harness's isakmpd.conf with DPD-check-interval in the peer section."""
        head = f"[peer-{self.conns[0].name}]\n"
        return super().conf_text().replace(head, head + f"DPD-check-interval=\t{INTERVAL}\n",
                                           1)


@pytest.fixture
def dpd_peers(plain_topo: netns.Topology,
              workdir: Path) -> Iterator[tuple[DpdIsakmpd, charon.CharonPeer]]:
    """charon (DPD after a second of silence) in a, our probing daemon in b, Phase 1 up."""
    why = charon.available()
    if why is not None:
        pytest.skip(why)
    theirs, ours_conn = pair(plain_topo, dpd_delay=1)
    peer = charon.CharonPeer("swa", plain_topo.a, workdir / "swa", [theirs])
    ours = DpdIsakmpd("ours", plain_topo.b, workdir / "ours", [ours_conn], kernel="none")
    with running(ours, peer):
        assert peer.initiate_ike("ki", timeout=10)
        yield ours, peer


def test_probes_both_ways_then_both_declare_the_other_dead(
        plain_topo: netns.Topology, dpd_peers: tuple[DpdIsakmpd, charon.CharonPeer]) -> None:
    ours, peer = dpd_peers
    # our R-U-THERE answered by charon, and charon's by us
    peer.wait_log(r"parsed INFORMATIONAL_V1 request \d+ \[ HASH N\(DPD\) \]", 20)
    peer.wait_log(r"generating INFORMATIONAL_V1 request \d+ \[ HASH N\(DPD_ACK\) \]", 20)
    peer.wait_log(r"parsed INFORMATIONAL_V1 request \d+ \[ HASH N\(DPD_ACK\) \]", 20)
    cut = time.monotonic()
    plain_topo.b.run(["ip", "link", "set", "b0", "down"])
    peer.wait_log(r"DPD check timed out, enforcing DPD action", 20)
    ours.wait_log(r"DPD: peer 10\.77\.0\.1 is dead", DPD_LIMIT + 3)
    assert time.monotonic() - cut <= DPD_LIMIT + 3

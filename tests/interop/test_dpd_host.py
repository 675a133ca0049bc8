"""Dead peer detection (RFC 3706) between charon and our daemon (issue 8, DPD acceptance).

charon with ``dpd_delay = 1s`` sends R-U-THERE on the idle IKE SA and our daemon answers each
with R-U-THERE-ACK; when the link is cut, charon declares us dead within its timeout
(3 x delay).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from harness import charon, isakmpd, netns
from harness.model import running
from harness.scenario import pair

pytestmark = [pytest.mark.interop, pytest.mark.root]


@pytest.fixture
def dpd_pair(plain_topo: netns.Topology, workdir: Path,
             fakesa_shim: Path) -> Iterator[tuple[isakmpd.IsakmpdPeer, charon.CharonPeer]]:
    """charon (DPD every second) in a, our daemon in b, Phase 1 up."""
    why = charon.available()
    if why is not None:
        pytest.skip(why)
    theirs, ours_conn = pair(plain_topo, dpd_delay=1)
    peer = charon.CharonPeer("swa", plain_topo.a, workdir / "swa", [theirs])
    ours = isakmpd.IsakmpdPeer("ours", plain_topo.b, workdir / "ours", [ours_conn])
    with running(ours, peer):
        assert peer.initiate_ike("ki", timeout=10)
        yield ours, peer


def test_idle_r_u_there_answered(dpd_pair: tuple[isakmpd.IsakmpdPeer,
                                                 charon.CharonPeer]) -> None:
    _ours, peer = dpd_pair
    peer.wait_log(r"received DPD vendor ID", 1)
    m = peer.wait_log(r"(?s)(parsed INFORMATIONAL_V1 request \d+ \[ HASH N\(DPD_ACK\) \].*){2}",
                      15)
    assert m is not None
    assert "DPD check timed out" not in peer.log_path.read_text()


def test_cut_link_peer_declared_dead(plain_topo: netns.Topology,
                                     dpd_pair: tuple[isakmpd.IsakmpdPeer,
                                                     charon.CharonPeer]) -> None:
    _ours, peer = dpd_pair
    peer.wait_log(r"N\(DPD_ACK\)", 15)
    plain_topo.b.run(["ip", "link", "set", "b0", "down"])
    peer.wait_log(r"DPD check timed out, enforcing DPD action", 20)

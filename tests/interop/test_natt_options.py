"""The daemon's NAT-T switches against charon (issue 8): ``-T`` turns NAT-T off (no NAT-T vendor
IDs, no encapsulation socket), ``-N port`` moves our end of the float to another port."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from harness import charon, isakmpd, netns
from harness.scenario import pair

pytestmark = [pytest.mark.interop, pytest.mark.root]


@pytest.fixture
def stop_after() -> Iterator[list[object]]:
    """Peers a test started, stopped afterwards (by PID)."""
    started: list[object] = []
    yield started
    for p in started:
        p.stop()  # type: ignore[attr-defined]


def _need_charon() -> None:
    why = charon.available()
    if why is not None:
        pytest.skip(why)


def test_minus_t_sends_no_nat_t_vendor_ids(plain_topo: netns.Topology, workdir: Path,
                                           stop_after: list[object]) -> None:
    _need_charon()
    theirs, ours_conn = pair(plain_topo)
    sw = charon.CharonPeer("swa", plain_topo.a, workdir / "swa", [theirs])
    ours = isakmpd.IsakmpdPeer("ours", plain_topo.b, workdir / "ours", [ours_conn],
                               kernel="none", extra_args=["-T"])
    stop_after += [ours, sw]
    ours.launch()
    sw.launch()
    ours.ready()
    sw.ready()
    assert sw.initiate_ike("ki", timeout=10)
    log = sw.log_path.read_text()
    assert "received DPD vendor ID" in log and "sending NAT-T (RFC 3947) vendor ID" in log
    assert "received NAT-T" not in log and "received draft-ietf-ipsec-nat-t" not in log
    assert "NAT-D" not in log
    sockets = plain_topo.b.run(["ss", "-Hnlu"], check=False).stdout
    assert ":500 " in sockets and ":4500 " not in sockets


def test_minus_n_floats_from_the_given_port(plain_topo: netns.Topology, workdir: Path,
                                            stop_after: list[object]) -> None:
    _need_charon()
    theirs, ours_conn = pair(plain_topo)
    # charon with userspace ESP always claims a NAT: the float happens on a plain link too
    sw = charon.CharonPeer("swa", plain_topo.a, workdir / "swa", [theirs], ipsec="libipsec")
    ours = isakmpd.IsakmpdPeer("ours", plain_topo.b, workdir / "ours", [ours_conn],
                               extra_args=["-N", "4511"])
    stop_after += [ours, sw]
    ours.launch()
    sw.launch()
    ours.ready()
    sw.ready()
    assert ours.initiate("ki", timeout=20)
    sw.wait_log(r"received packet: from 10\.77\.0\.2\[4511\] to 10\.77\.0\.1\[4500\]", 15)
    assert [c for c in sw.child_sas() if c.mode == "TUNNEL-in-UDP"]

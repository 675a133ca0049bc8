"""The harness proves itself with two charons: no daemon of ours takes part.

Main Mode PSK between charon peers completes Phase 1 and both log the same Phase 1 keys; behind
the NAT topology, charon with kernel-libipsec completes Main Mode with NAT-T and Quick Mode, the
two ends agree on SPIs and ESP keys, and a ping crosses the userspace ESP tunnel.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from harness import charon
from harness.model import SUITES, Connection
from harness.netns import Topology

pytestmark = [pytest.mark.interop, pytest.mark.root]


@pytest.fixture(autouse=True)
def _need_charon() -> None:
    why = charon.available()
    if why is not None:
        pytest.skip(why)


def _pair(topo: Topology, workdir: Path, ipsec: str, suite: str = "aes128-sha1-modp2048",
          tunnel: bool = False) -> tuple[charon.CharonPeer, charon.CharonPeer]:
    a, b = topo.a, topo.b
    a_id = a.addr
    a_conn = Connection("ki", a.addr, b.addr, a_id, b.addr, suite=SUITES[suite],
                        local_ts=f"{a.inner}/32" if tunnel else None,
                        remote_ts=f"{b.inner}/32" if tunnel else None)
    # behind the NAT b sees a's packets from the router; the IDs stay a's private address
    b_conn = Connection("ki", b.addr, "%any" if topo.router else a.addr, b.addr, a_id,
                        suite=SUITES[suite],
                        local_ts=f"{b.inner}/32" if tunnel else None,
                        remote_ts=f"{a.inner}/32" if tunnel else None)
    pa = charon.CharonPeer("swa", a, workdir / "swa", [a_conn], ipsec=ipsec)
    pb = charon.CharonPeer("swb", b, workdir / "swb", [b_conn], ipsec=ipsec)
    return pa, pb


def _start(*peers: charon.CharonPeer) -> None:
    for p in peers:
        p.launch()
    for p in peers:
        p.ready()


def test_charon_main_mode_psk_phase1_keys_agree(plain_topo: Topology, workdir: Path) -> None:
    pa, pb = _pair(plain_topo, workdir, "netlink")
    try:
        _start(pa, pb)
        assert pa.initiate_ike("ki", timeout=15), pa.log_path.read_text()[-3000:]
        pb.wait_log(r"IKE_SA ki\[\d+\] established", 10)
        [ike_a], [ike_b] = pa.ike_sas(), pb.ike_sas()
        assert (ike_a.cookie_i, ike_a.cookie_r) == (ike_b.cookie_i, ike_b.cookie_r)
        assert ike_a.state == ike_b.state == "ESTABLISHED"
        [keys_a], [keys_b] = pa.phase1_keys(), pb.phase1_keys()
        assert set(keys_a.values) >= {"SKEYID", "SKEYID_d", "SKEYID_a", "SKEYID_e",
                                      "encryption key Ka", "initial IV"}
        assert keys_a.values == keys_b.values
        assert len(keys_a.values["encryption key Ka"]) == 32  # AES-128
    finally:
        pa.stop()
        pb.stop()


def test_charon_behind_nat_libipsec_quick_mode_and_ping(nat_topo: Topology,
                                                       workdir: Path) -> None:
    pa, pb = _pair(nat_topo, workdir, "libipsec", tunnel=True)
    try:
        _start(pa, pb)
        assert pa.initiate("ki", timeout=15), pa.log_path.read_text()[-3000:]
        pb.wait_log(r"CHILD_SA ki\{\d+\} established", 10)
        pa.wait_log(r"local host is behind NAT", 1)
        [ca], [cb] = pa.child_sas(), pb.child_sas()
        assert (ca.spi_in, ca.spi_out) == (cb.spi_out, cb.spi_in)
        ka, kb = pa.esp_keys(), pb.esp_keys()
        assert set(ka) == {ca.spi_in, ca.spi_out}
        assert ka == kb
        assert all(len(k.enc) == 32 and len(k.integ) == 40 for k in ka.values())
        assert pa.keylog().children[0].we_initiated_qm
        assert not pb.keylog().children[0].we_initiated_qm
        ping = nat_topo.a.run(["ping", "-c", "2", "-i", "0.2", "-W", "2", "-I",
                               str(nat_topo.a.inner), str(nat_topo.b.inner)], check=False)
        assert ping.returncode == 0, ping.stdout
    finally:
        pa.stop()
        pb.stop()

"""The harness proves itself with two charons: no daemon of ours takes part.

Main Mode PSK, Aggressive Mode PSK with FQDN IDs and Main Mode RSA with certificates from the
test CA complete Phase 1 between charon peers, and both log the same Phase 1 keys; behind the
NAT topology, charon with kernel-libipsec completes Main Mode with NAT-T and Quick Mode, the two
ends agree on SPIs and ESP keys, and a ping crosses the userspace ESP tunnel.  Each case is a
reference row of the matrix (docs/interop.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import matrix
from harness import charon
from harness.model import Pki
from harness.netns import Topology
from harness.scenario import pair

pytestmark = [pytest.mark.interop, pytest.mark.root]

SW_NETLINK = "strongSwan 5.9 (kernel-netlink)"
SW_LIBIPSEC = "strongSwan 5.9 (kernel-libipsec)"


@pytest.fixture(autouse=True)
def _need_charon() -> None:
    why = charon.available()
    if why is not None:
        pytest.skip(why)


def _start(*peers: charon.CharonPeer) -> None:
    for p in peers:
        p.launch()
    for p in peers:
        p.ready()


@pytest.mark.parametrize("auth,aggressive", [("psk", False), ("psk", True), ("rsa", False)],
                         ids=["main-psk", "aggressive-psk-fqdn", "main-rsa"])
def test_charon_phase1_keys_agree(plain_topo: Topology, workdir: Path, auth: str,
                                  aggressive: bool, test_pki: dict[str, Pki],
                                  record_cell: matrix.Sink) -> None:
    conn_a, conn_b = pair(plain_topo, auth=auth, aggressive=aggressive, tunnel=False)
    pki_a, pki_b = (test_pki["a"], test_pki["b"]) if auth == "rsa" else (None, None)
    pa = charon.CharonPeer("swa", plain_topo.a, workdir / "swa", [conn_a], pki=pki_a)
    pb = charon.CharonPeer("swb", plain_topo.b, workdir / "swb", [conn_b], pki=pki_b)
    phase1 = f"{'aggressive' if aggressive else 'main'}-{auth}"
    try:
        with matrix.cell(record_cell, peer=SW_NETLINK, role="initiator", phase1=phase1,
                         phase2="none (Phase 1 only)", suite="aes128-sha1-modp2048",
                         under_test=SW_NETLINK, note="Phase 1 keys compared") as c:
            _start(pa, pb)
            assert pa.initiate_ike("ki", timeout=15), pa.log_path.read_text()[-3000:]
            pb.wait_log(r"IKE_SA ki\[\d+\] established", 30)
            [ike_a], [ike_b] = pa.ike_sas(), pb.ike_sas()
            c.spis_agree = (ike_a.cookie_i, ike_a.cookie_r) == (ike_b.cookie_i, ike_b.cookie_r)
            assert c.spis_agree
            assert ike_a.state == ike_b.state == "ESTABLISHED"
            [keys_a], [keys_b] = pa.phase1_keys(), pb.phase1_keys()
            assert set(keys_a.values) >= {"SKEYID", "SKEYID_d", "SKEYID_a", "SKEYID_e",
                                          "encryption key Ka", "initial IV"}
            c.keys_agree = keys_a.values == keys_b.values
            assert c.keys_agree
            assert len(keys_a.values["encryption key Ka"]) == 32  # AES-128
            if auth == "rsa":
                pb.wait_log(r"authentication of 'a\.ki\.test' with RSA_EMSA_PKCS1_NULL "
                            "successful", 1)
            elif aggressive:
                pa.wait_log(r"AGGRESSIVE request 0", 1)
    finally:
        pa.stop()
        pb.stop()


def test_charon_behind_nat_libipsec_quick_mode_and_ping(nat_topo: Topology, workdir: Path,
                                                       record_cell: matrix.Sink) -> None:
    conn_a, conn_b = pair(nat_topo, pfs=True)
    pa = charon.CharonPeer("swa", nat_topo.a, workdir / "swa", [conn_a], ipsec="libipsec")
    pb = charon.CharonPeer("swb", nat_topo.b, workdir / "swb", [conn_b], ipsec="libipsec")
    try:
        with matrix.cell(record_cell, peer=SW_LIBIPSEC, role="initiator", phase1="main-psk",
                         phase2="tunnel+pfs, behind NAT", suite="aes128-sha1-modp2048",
                         under_test=SW_LIBIPSEC) as c:
            _start(pa, pb)
            assert pa.initiate("ki", timeout=15), pa.log_path.read_text()[-3000:]
            pb.wait_log(r"CHILD_SA ki\{\d+\} established", 30)
            pa.wait_log(r"local host is behind NAT", 1)
            [ca], [cb] = pa.child_sas(), pb.child_sas()
            c.spis_agree = (ca.spi_in, ca.spi_out) == (cb.spi_out, cb.spi_in)
            assert c.spis_agree
            assert ca.mode == cb.mode == "TUNNEL-in-UDP"
            assert ca.proposal.endswith("/MODP_2048")  # PFS
            ka, kb = pa.esp_keys(), pb.esp_keys()
            assert set(ka) == {ca.spi_in, ca.spi_out}
            c.keys_agree = ka == kb
            assert c.keys_agree
            assert all(len(k.enc) == 32 and len(k.integ) == 40 for k in ka.values())
            assert pa.keylog().children[0].we_initiated_qm
            assert not pb.keylog().children[0].we_initiated_qm
            ping = nat_topo.a.run(["ping", "-c", "2", "-i", "0.2", "-W", "2", "-I",
                                   str(nat_topo.a.inner), str(nat_topo.b.inner)], check=False)
            c.ping = ping.returncode == 0
            assert c.ping, ping.stdout
    finally:
        pa.stop()
        pb.stop()

"""SA lifecycle between our daemon and the peers, on the host (issue 9 "Lifecycle").

- ``t name`` on our FIFO deletes the SAs on both sides; the peer's DELETE removes ours
  (pluto with the fakesa shim: each side's shim logs the SA deletions; charon with
  kernel-libipsec, which holds real userspace SAs on the host: its --list-sas empties).
- Restarting our daemon after a crash (SIGKILL: no DELETE leaves) sends INITIAL-CONTACT: charon
  drops the stale IKE_SA; pluto 4.10 receives it but ignores it in IKEv1 (its log says so),
  which the test pins down and records as an n/a row of the matrix.
- A KeyNote policy that refuses the peer's proposal ends the exchange with NO_PROPOSAL_CHOSEN
  on both sides, with the reason in our log (charon fails on the notify; pluto logs it received
  and, as IKEv1 pluto does with notifies, ignored, and gives the exchange up on its timeout).
- The rekey with a ping stream across it needs kernel ESP: harness/lifecycle.py, run inside
  User-Mode Linux by test_matrix_uml.py.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import matrix
from harness import charon, isakmpd, netns, pluto
from harness.cells import CHARON_LIBIPSEC, CHARON_NETLINK, PLUTO
from harness.model import PSK, SUITES, wait_for_log
from harness.scenario import pair

pytestmark = [pytest.mark.interop, pytest.mark.root]


@pytest.fixture
def peers(plain_topo: netns.Topology, workdir: Path, fakesa_shim: Path,
          request: pytest.FixtureRequest) -> Iterator[tuple[isakmpd.IsakmpdPeer, object]]:
    """Our daemon in b and the peer named by the test's parameter in a, both started."""
    kind = request.param
    their, our = pair(plain_topo)
    peer: pluto.PlutoPeer | charon.CharonPeer
    if kind == "pluto":
        if pluto.available() is not None:
            pytest.skip(str(pluto.available()))
        pluto.ensure_libreswan()
        peer = pluto.PlutoPeer("lsb", plain_topo.a, workdir / "lsb", [their])
    else:
        if charon.available() is not None:
            pytest.skip(str(charon.available()))
        # kernel-libipsec: charon installs its SAs in userspace, so they exist to be deleted
        ipsec = "libipsec" if kind == "libipsec" else "netlink"
        peer = charon.CharonPeer("swa", plain_topo.a, workdir / "swa", [their], ipsec=ipsec)
    ours = isakmpd.IsakmpdPeer("ours", plain_topo.b, workdir / "ours", [our])
    try:
        ours.launch()
        peer.launch()
        ours.ready()
        peer.ready()
        yield ours, peer
    finally:
        ours.stop()
        peer.stop()


def _deleted(log: Path, spis: set[str], timeout: float = 30) -> bool:
    """Whether the fakesa log shows DELSA for every SPI within ``timeout``."""
    pattern = "".join(rf"(?=[\s\S]*DELSA proto 50 spi {spi})" for spi in sorted(spis))
    try:
        wait_for_log(log, pattern, timeout)
    except netns.HarnessError:
        return False
    return True


#: what the peer logs when our DELETE for one of its SPIs arrives
PEER_GOT_DELETE = {PLUTO: r"received Delete SA\(0x({in_}|{out})\) payload",
                   CHARON_LIBIPSEC: r"received DELETE for ESP CHILD_SA with SPI ({in_}|{out})"}


def _peer_sas_gone(peer: pluto.PlutoPeer | charon.CharonPeer, spis: set[str]) -> bool:
    """Whether the peer no longer holds the SAs: pluto's shim logged DELSA for each SPI;
    charon (kernel-libipsec) lists no CHILD_SA any more."""
    if isinstance(peer, pluto.PlutoPeer):
        return _deleted(peer.dir / "fakesa.log", spis)
    for _ in range(300):
        if not peer.child_sas():
            return True
        time.sleep(0.1)
    return False


def _kind(peer: object) -> str:
    return PLUTO if isinstance(peer, pluto.PlutoPeer) else CHARON_LIBIPSEC


@pytest.mark.parametrize("peers", ["pluto", "libipsec"], indirect=True)
def test_teardown_deletes_on_both_sides(
        peers: tuple[isakmpd.IsakmpdPeer, pluto.PlutoPeer | charon.CharonPeer],
        record_cell: matrix.Sink) -> None:
    ours, peer = peers
    kind = _kind(peer)
    with matrix.cell(record_cell, peer=kind, role="initiator", phase1="main-psk",
                     phase2="tunnel, then t ki", suite="aes128-sha1-modp2048",
                     note="lifecycle: our DELETE removes the peer's SAs and ours") as c:
        assert ours.initiate("ki")
        [child] = ours.child_sas()
        spis = {child.spi_in, child.spi_out}
        if isinstance(peer, charon.CharonPeer):
            peer.wait_log(r"CHILD_SA ki\{\d+\} established", 30)
            assert len(peer.child_sas()) == 1
        ours.terminate("ki")
        peer.wait_log(PEER_GOT_DELETE[kind].format(in_=child.spi_in, out=child.spi_out), 30)
        c.spis_agree = _peer_sas_gone(peer, spis)
        assert c.spis_agree, peer.log_path.read_text()[-3000:]
        assert _deleted(ours.dir / "fakesa.log", spis)
        assert peer.child_sas() == []


@pytest.mark.parametrize("peers", ["pluto", "libipsec"], indirect=True)
def test_peer_delete_removes_ours(
        peers: tuple[isakmpd.IsakmpdPeer, pluto.PlutoPeer | charon.CharonPeer],
        record_cell: matrix.Sink) -> None:
    ours, peer = peers
    with matrix.cell(record_cell, peer=_kind(peer), role="responder", phase1="main-psk",
                     phase2="tunnel, then the peer deletes", suite="aes128-sha1-modp2048",
                     note="lifecycle: the peer's DELETE removes our SAs") as c:
        assert peer.initiate("ki")
        ours.wait_log(r"phase 2 done: ki,", 30)
        [child] = ours.child_sas()
        peer.terminate("ki")
        c.spis_agree = _deleted(ours.dir / "fakesa.log", {child.spi_in, child.spi_out})
        assert c.spis_agree, (ours.dir / "fakesa.log").read_text()


def _restart(ours: isakmpd.IsakmpdPeer) -> isakmpd.IsakmpdPeer:
    """Crash our daemon (no DELETE leaves) and start it again with the same configuration."""
    ours.crash()
    again = dataclasses.replace(ours, dir=ours.dir.with_name("ours-again"), pid=0)
    again.launch()
    again.ready()
    return again


@pytest.mark.parametrize("peers", ["charon"], indirect=True)
def test_restart_sends_initial_contact_and_charon_drops_stale_sa(
        peers: tuple[isakmpd.IsakmpdPeer, charon.CharonPeer], record_cell: matrix.Sink) -> None:
    ours, peer = peers
    with matrix.cell(record_cell, peer=CHARON_NETLINK, role="initiator", phase1="main-psk",
                     phase2="none (Phase 1 across a restart)", suite="aes128-sha1-modp2048",
                     note="lifecycle: INITIAL-CONTACT after our restart drops the stale "
                     "IKE_SA") as c:
        ours.initiate("ki", timeout=10)
        [old] = peer.ike_sas()
        ours = _restart(ours)
        try:
            ours.initiate("ki", timeout=10)
            peer.wait_log(r"destroying duplicate IKE_SA for peer .*, received INITIAL_CONTACT", 30)
            sas = peer.ike_sas()
            [new] = ours.ike_sas()
            c.spis_agree = [(s.cookie_i, s.cookie_r) for s in sas] == [(new.cookie_i,
                                                                        new.cookie_r)]
            assert c.spis_agree, (old, sas, new)
        finally:
            ours.stop()


@pytest.mark.parametrize("peers", ["pluto"], indirect=True)
def test_restart_sends_initial_contact_pluto_ignores_it(
        peers: tuple[isakmpd.IsakmpdPeer, pluto.PlutoPeer], record_cell: matrix.Sink) -> None:
    ours, peer = peers
    assert ours.initiate("ki")
    ours = _restart(ours)
    try:
        assert ours.initiate("ki")
        seen = re.findall(r"ignoring informational payload IPSEC_INITIAL_CONTACT",
                          peer.log_path.read_text())
        assert len(seen) == 2  # one per Main Mode we started: sent, and ignored by IKEv1 pluto
    finally:
        ours.stop()
    record_cell(matrix.CellResult(
        PLUTO, "initiator", "main-psk", "none (Phase 1 across a restart)",
        "aes128-sha1-modp2048", "n/a",
        note="lifecycle: we send INITIAL-CONTACT after a restart; libreswan 4.10 ignores it in "
        "IKEv1 (its log: ignoring informational payload IPSEC_INITIAL_CONTACT), so its stale "
        "SAs stay until they expire"))


AES_ONLY = f"""KeyNote-Version: 2
Comment: ESP must use AES; anything else is refused
Authorizer: "POLICY"
Licensees: "passphrase:{PSK}"
Conditions: app_domain == "IPsec policy" && esp_present == "yes" && esp_enc_alg == "aes" -> "true";
"""


#: what each peer logs when our NO_PROPOSAL_CHOSEN reaches it
PEER_GOT_NO_PROPOSAL = {"charon": r"received NO_PROPOSAL_CHOSEN error notify",
                        "pluto": r"received and ignored notification payload: "
                                 r"NO_PROPOSAL_CHOSEN"}


@pytest.mark.parametrize("kind", ["charon", "pluto"])
def test_policy_refusal_is_no_proposal_chosen(kind: str, plain_topo: netns.Topology,
                                              workdir: Path, fakesa_shim: Path,
                                              record_cell: matrix.Sink) -> None:
    why = charon.available() if kind == "charon" else pluto.available()
    if why is not None:
        pytest.skip(str(why))
    their, _ = pair(plain_topo, suite=dataclasses.replace(SUITES["aes128-sha1-modp2048"],
                                                          charon_esp="3des-sha1",
                                                          pluto_esp="3des-sha1"))
    _, our = pair(plain_topo)
    peer: charon.CharonPeer | pluto.PlutoPeer
    if kind == "charon":
        peer = charon.CharonPeer("swa", plain_topo.a, workdir / "swa", [their])
    else:
        pluto.ensure_libreswan()
        peer = pluto.PlutoPeer("lsb", plain_topo.a, workdir / "lsb", [their])
    ours = isakmpd.IsakmpdPeer("ours", plain_topo.b, workdir / "ours", [our], policy=AES_ONLY)
    try:
        with matrix.cell(record_cell, peer=CHARON_NETLINK if kind == "charon" else PLUTO,
                         role="responder", phase1="main-psk",
                         phase2="tunnel, 3DES refused by our policy",
                         suite="aes128-sha1-modp2048",
                         note="lifecycle: NO_PROPOSAL_CHOSEN on both sides") as c:
            ours.launch()
            peer.launch()
            ours.ready()
            peer.ready()
            assert not peer.initiate("ki", timeout=8)
            peer.wait_log(PEER_GOT_NO_PROPOSAL[kind], 30)
            ours.wait_log(r"quick exchange with \S+ failed: NO_PROPOSAL_CHOSEN: .*policy "
                          r"refused", 30)
            assert ours.child_sas() == []
            c.spis_agree = True
    finally:
        ours.stop()
        peer.stop()

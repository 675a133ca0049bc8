"""The interoperability matrix on the host kernel: our daemon against libreswan and strongSwan.

The host kernel has XFRM but no ESP, so SA installs are answered by the fakesa shim
(tests/interop/fakesa.c) preloaded into our daemon and into pluto, which logs the keys each
daemon hands the kernel; charon logs its keys at level 4.  Each cell checks that both sides
report the Phase 1 SA (same cookies where the peer shows them) and the Phase 2 SAs with the
same SPIs, and that the ESP keys we installed equal the peer's.  No ESP packet flows here (the
UML matrix carries pings).  Every cell is recorded for docs/interop.md.

charon with kernel-netlink cannot install SAs here (reference/interop.md 5.2): as responder it
deletes the SA after QM3, which still lets our keys be compared as initiator.  A complete
Quick Mode with charon on this kernel needs its kernel-libipsec, which forces NAT-T (issue 8).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import matrix
from harness import charon, isakmpd, netns, pluto
from harness.model import SUITES, Connection, EspKeys, Pki
from harness.scenario import pair

pytestmark = [pytest.mark.interop, pytest.mark.root]

PLUTO = "libreswan 4.10"
CHARON_NETLINK = "strongSwan 5.9 (kernel-netlink)"
CHARON_LIBIPSEC = "strongSwan 5.9 (kernel-libipsec)"
# Debian's libreswan 4.10 is built without MODP-1024 ("IKE DH algorithm 'modp1024' is not
# supported"): that cell is recorded as not applicable after checking the refusal.
PLUTO_LACKS = {"3des-sha1-modp1024": ("3des-sha1;modp1024", "modp1024")}
NAT_T_MISSING = "needs NAT-T in our daemon (issue 8): kernel-libipsec always encapsulates"


@dataclass(frozen=True)
class Case:
    """One cell: peer kind, our role, Phase 1, Phase 2, suite, topology."""

    peer: str
    role: str
    phase1: str = "main-psk"
    phase2: str = "tunnel"
    suite: str = "aes128-sha1-modp2048"
    topology: str = "plain"

    @property
    def id(self) -> str:
        """Test id."""
        peer = {PLUTO: "pluto", CHARON_NETLINK: "charon", CHARON_LIBIPSEC: "libipsec"}[self.peer]
        nat = "-nat" if self.topology != "plain" else ""
        return f"{peer}-{self.role}-{self.phase1}-{self.phase2}-{self.suite}{nat}"


def _cases() -> list[object]:
    out: list[object] = []
    for role in ("initiator", "responder"):
        for suite in SUITES:
            if suite not in PLUTO_LACKS:
                out.append(Case(PLUTO, role, suite=suite))
        out += [Case(PLUTO, role, phase2="tunnel+pfs", suite="aes256-sha256-modp3072"),
                Case(PLUTO, role, phase2="transport"),
                Case(PLUTO, role, phase1="aggressive-psk"),
                Case(PLUTO, role, phase1="main-rsa")]
    for suite in SUITES:
        out.append(Case(CHARON_NETLINK, "initiator", suite=suite))
    out += [Case(CHARON_NETLINK, "initiator", phase2="tunnel+pfs", suite="aes128-sha256-ecp256"),
            Case(CHARON_NETLINK, "initiator", phase2="transport"),
            Case(CHARON_NETLINK, "initiator", phase1="aggressive-psk"),
            Case(CHARON_NETLINK, "initiator", phase1="main-rsa")]
    xfail = pytest.mark.xfail(reason=NAT_T_MISSING, strict=False)
    for role in ("initiator", "responder"):
        for topo in ("plain", "nat"):
            out.append(pytest.param(Case(CHARON_LIBIPSEC, role, topology=topo), marks=xfail,
                                    id=Case(CHARON_LIBIPSEC, role, topology=topo).id))
    return [c if not isinstance(c, Case) else pytest.param(c, id=c.id) for c in out]


@pytest.fixture(scope="module")
def topologies() -> Iterator[dict[str, netns.Topology]]:
    """One plain and one NAT topology per worker, reused by the cells (each peer flushes the
    XFRM state of its namespace before it starts)."""
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    made: dict[str, netns.Topology] = {}
    try:
        made["plain"] = netns.create("plain")
        made["nat"] = netns.create("nat")
        yield made
    finally:
        for topo in made.values():
            topo.teardown()


@pytest.mark.parametrize("suite", sorted(PLUTO_LACKS))
def test_pluto_lacks_suite(suite: str, record_cell: matrix.Sink) -> None:
    """The suites libreswan cannot do: its own algorithm parser refuses them."""
    why = pluto.available()
    if why is not None:
        pytest.skip(why)
    root = pluto.ensure_libreswan()
    ike, missing = PLUTO_LACKS[suite]
    got = netns.run([str(root / "usr/libexec/ipsec/algparse"), "-v1", "-p1", f"ike={ike}"],
                    check=False)
    assert f"'{missing}' is not supported" in got.stdout + got.stderr
    for role in ("initiator", "responder"):
        record_cell(matrix.CellResult(PLUTO, role, "main-psk", "tunnel", suite, "n/a",
                                      note=f"libreswan 4.10 (Debian) has no {missing}"))


def _peer(case: Case, topo: netns.Topology, workdir: Path, conn: Connection,
          pki: Pki | None) -> charon.CharonPeer | pluto.PlutoPeer:
    if case.peer == PLUTO:
        return pluto.PlutoPeer("lsb", topo.a, workdir / "lsb", [conn], pki=pki)
    ipsec = "libipsec" if case.peer == CHARON_LIBIPSEC else "netlink"
    return charon.CharonPeer("swa", topo.a, workdir / "swa", [conn], ipsec=ipsec, pki=pki)


def _same_keys(ours: dict[str, EspKeys], theirs: dict[str, EspKeys], spis: set[str]) -> bool:
    return bool(spis) and all(spi in ours and spi in theirs and ours[spi] == theirs[spi]
                              for spi in spis)


@pytest.mark.parametrize("case", _cases())
def test_cell(case: Case, topologies: dict[str, netns.Topology], workdir: Path,
              test_pki: dict[str, Pki], record_cell: matrix.Sink) -> None:
    """Run one cell: the peer sits in namespace a, our daemon in b."""
    if case.peer == PLUTO:
        why = pluto.available()
        if why is not None:
            pytest.skip(why)
        pluto.ensure_libreswan()
    elif charon.available() is not None:
        pytest.skip(str(charon.available()))
    topo = topologies[case.topology]
    mode, auth = case.phase1.split("-")
    their_conn, our_conn = pair(topo, auth=auth, aggressive=mode == "aggressive",
                                suite=SUITES[case.suite], pfs=case.phase2.endswith("+pfs"),
                                tunnel=case.phase2 != "transport")
    rsa = auth == "rsa"
    peer = _peer(case, topo, workdir, their_conn, test_pki["a"] if rsa else None)
    ours = isakmpd.IsakmpdPeer("ours", topo.b, workdir / "ours", [our_conn],
                               pki=test_pki["b"] if rsa else None)
    netlink = case.peer == CHARON_NETLINK
    note = "charon cannot install here (no kernel ESP) and deletes the SA" if netlink else ""
    phase2 = case.phase2 + (", behind NAT" if case.topology == "nat" else "")
    try:
        with matrix.cell(record_cell, peer=case.peer, role=case.role, phase1=case.phase1,
                         phase2=phase2, suite=case.suite, note=note) as c:
            ours.launch()
            peer.launch()
            ours.ready()
            peer.ready()
            # the cells waiting for NAT-T fail fast instead of sitting out the retransmits
            limit = 4 if case.peer == CHARON_LIBIPSEC else 15
            if case.role == "initiator":
                assert ours.initiate("ki", timeout=limit), ours.log_path.read_text()[-3000:]
            else:
                peer.initiate("ki", timeout=limit)
                ours.wait_log(r"phase 2 done: ki,", min(limit, 10))
            if isinstance(peer, pluto.PlutoPeer):
                peer.wait_log(r"IPsec SA established", 5)
                theirs = peer.installed_keys()
                their_child = peer.child_sas()
            else:
                if not netlink:
                    peer.wait_log(r"CHILD_SA ki\{\d+\} established", 5)
                else:
                    peer.wait_log(r"unable to install inbound and outbound IPsec SA", 5)
                theirs = peer.esp_keys()
                their_child = peer.child_sas()
            [our_ike] = ours.ike_sas()
            [our_child] = ours.child_sas()
            spis = {our_child.spi_in, our_child.spi_out}
            if isinstance(peer, charon.CharonPeer):
                [their_ike] = peer.ike_sas()
                assert (their_ike.cookie_i, their_ike.cookie_r) == (our_ike.cookie_i,
                                                                    our_ike.cookie_r)
            if netlink:
                # charon's refused child has no --list-sas entry; its key log has the SPIs
                c.spis_agree = spis == set(theirs)
            else:
                [tc] = their_child
                c.spis_agree = (tc.spi_in, tc.spi_out) == (our_child.spi_out,
                                                           our_child.spi_in)
            assert c.spis_agree, (our_child, their_child, sorted(theirs))
            c.keys_agree = _same_keys(ours.esp_keys(), theirs, spis)
            assert c.keys_agree, (ours.esp_keys(), theirs)
    finally:
        ours.stop()
        peer.stop()

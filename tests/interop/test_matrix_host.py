"""The interoperability matrix on the host kernel: our daemon against libreswan and strongSwan.

The host kernel has XFRM but no ESP, so SA installs are answered by the fakesa shim
(tests/interop/fakesa.c) preloaded into our daemon and into pluto, which logs the keys each
daemon hands the kernel; charon logs its keys at level 4.  Each cell checks that both sides
report the Phase 1 SA (same cookies where the peer shows them) and the Phase 2 SAs with the
same SPIs, and that the ESP keys we installed equal the peer's.  No ESP packet flows here (the
UML matrix carries pings).  Every cell is recorded for docs/interop.md.

charon with kernel-netlink cannot install SAs here (reference/interop.md 5.2): as responder it
deletes the SA after QM3, which still lets our keys be compared as initiator.  A complete
Quick Mode with charon on this kernel needs its kernel-libipsec, which forces NAT-T: those cells
(with and without the masquerading NAT namespace, us inside or charon inside) are issue 8's
acceptance, and check the UDP encapsulation of the SAs we install.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import matrix
from harness import charon, netns, pluto
from harness.cells import CHARON_NETLINK, PLUTO, PLUTO_LACKS, Case, matrix_cases, run_cell
from harness.model import Pki

pytestmark = [pytest.mark.interop, pytest.mark.root]

def _cases() -> list[object]:
    # charon with kernel-netlink cannot install SAs here: it is a peer for our initiator only
    return [pytest.param(c, id=c.id) for c in matrix_cases()
            if not (c.peer == CHARON_NETLINK and c.role == "responder")]


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
    why = pluto.fakesa_available()  # our daemon's SA installs go through the shim here
    if why is not None:
        pytest.skip(why)
    run_cell(case, topologies[case.topology], workdir, test_pki, record_cell)

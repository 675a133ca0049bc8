"""One matrix cell, run the same way on the host and inside User-Mode Linux.

The peer (charon, pluto, or our own daemon again) sits in namespace a, our daemon in b; behind
the NAT the initiator sits inside (a), so there our daemon takes a when it initiates. A cell
checks that both sides report the Phase 1 SA (same cookies where the peer shows them) and the
Phase 2 SAs with the same SPIs, that the ESP keys our daemon installed equal the peer's, and,
where the kernel has ESP (``where="uml"``), that a ping between the inner addresses crosses the
tunnel with the ESP counters moving on both sides.

Host: SA installs are answered by the fakesa shim (ours and pluto), charon logs its keys;
charon with kernel-netlink refuses to install (reference/interop.md 5.2), which still lets our
keys be compared when we initiate.  UML: real XFRM SAs everywhere, keys read from
``ip xfrm state`` (ours) and from the peer's log (charon) or ``ip xfrm state`` (pluto, ours).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import matrix

from . import charon, isakmpd, netns, pluto
from .model import SUITES, Connection, EspKeys, Peer, Pki
from .scenario import pair

_T = TypeVar("_T")

PLUTO = "libreswan 4.10"
CHARON_NETLINK = "strongSwan 5.9 (kernel-netlink)"
CHARON_LIBIPSEC = "strongSwan 5.9 (kernel-libipsec)"
#: our own daemon as the peer (UML only: real XFRM on both sides; one role covers both)
SELF = matrix.OURS
LIBIPSEC_NOTE = "kernel-libipsec always encapsulates: NAT-T and UDP-encapsulated tunnel mode"
#: the three implementations; mypy checks here that each follows the Peer protocol
PEER_KINDS: tuple[type[Peer], ...] = (charon.CharonPeer, pluto.PlutoPeer, isakmpd.IsakmpdPeer)
NETLINK_ON_HOST = "charon cannot install here (no kernel ESP) and deletes the SA"


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
        peer = {PLUTO: "pluto", CHARON_NETLINK: "charon", CHARON_LIBIPSEC: "libipsec",
                SELF: "self"}[self.peer]
        nat = "-nat" if self.topology != "plain" else ""
        return f"{peer}-{self.role}-{self.phase1}-{self.phase2}-{self.suite}{nat}"


# Debian's libreswan 4.10 is built without MODP-1024 ("IKE DH algorithm 'modp1024' is not
# supported"): that cell is recorded as not applicable after checking the refusal.
PLUTO_LACKS = {"3des-sha1-modp1024": ("3des-sha1;modp1024", "modp1024")}


def matrix_cases() -> list[Case]:
    """Every cell of the matrix: with pluto both roles over the suites it has, PFS, transport,
    Aggressive Mode and RSA; the same with charon (kernel-netlink, on the host only as
    initiator: it cannot install SAs there); charon kernel-libipsec (host only) with NAT-T,
    without and with the masquerading NAT."""
    out: list[Case] = []
    for peer, roles in ((PLUTO, ("initiator", "responder")),
                        (CHARON_NETLINK, ("initiator", "responder"))):
        for role in roles:
            out += [Case(peer, role, suite=suite) for suite in SUITES
                    if peer != PLUTO or suite not in PLUTO_LACKS]
            out += [Case(peer, role, phase2="tunnel+pfs", suite="aes256-sha256-modp3072"),
                    Case(peer, role, phase2="tunnel+pfs", suite="aes128-sha256-ecp256"),
                    Case(peer, role, phase2="transport"),
                    Case(peer, role, phase1="aggressive-psk"),
                    Case(peer, role, phase1="main-rsa")]
    for role in ("initiator", "responder"):
        out += [Case(CHARON_LIBIPSEC, role), Case(CHARON_LIBIPSEC, role, topology="nat")]
    return out


#: isakmpd-py against itself (issue 9), UML only: each suite once in Main Mode PSK tunnel, then
#: Aggressive Mode PSK (FQDN IDs), Main Mode RSA (certificates of the test CA), PFS and
#: transport.  Ours initiates; the responder is ours too, so this role covers both sides.
SELF_CASES: list[Case] = [Case(SELF, "initiator", suite=suite) for suite in SUITES] + [
    Case(SELF, "initiator", phase2="tunnel+pfs", suite="aes256-sha256-modp3072"),
    Case(SELF, "initiator", phase2="tunnel+pfs", suite="aes128-sha256-ecp256"),
    Case(SELF, "initiator", phase2="transport"),
    Case(SELF, "initiator", phase1="aggressive-psk"),
    Case(SELF, "initiator", phase1="main-rsa")]


def _same_keys(ours: dict[str, EspKeys], theirs: dict[str, EspKeys], spis: set[str]) -> bool:
    return bool(spis) and all(spi in ours and spi in theirs and ours[spi] == theirs[spi]
                              for spi in spis)


def _esp_packets(ns: netns.Namespace) -> int:
    """Packets counted by the namespace's ESP SAs (``ip -s xfrm state``)."""
    text = ns.run(["ip", "-s", "xfrm", "state"], check=False).stdout
    return sum(int(p) for p in re.findall(r"\d+\(bytes\), (\d+)\(packets\)", text))


def _only(items: list[_T], what: str, *peers: Peer) -> _T:
    """The one SA a cell expects in a listing; more or none fails with the listing and the
    logs' tails (two SAs where one was expected is a duplicate negotiation to explain)."""
    if len(items) == 1:
        return items[0]
    logs = "\n".join(f"--- {p.log_path}\n{key_lines(p.log_path.read_text(errors='replace'))}"
                     f"--- its tail\n{p.log_path.read_text(errors='replace')[-3000:]}"
                     for p in peers if p.log_path.exists())
    raise AssertionError(f"expected one {what}, got {len(items)}: {items}\n{logs}")


#: log lines that say why an SA came or went (pluto's debug log is too long to print whole);
#: pluto's "terminating SAs using this connection" and its add-connection lines show a conn
#: re-added under a cell (its start-up addconn once ran after our SAs were up: two of each)
_KEY_LINE = re.compile(r"delet|Delete|DELETE|INITIAL.CONTACT|established|STATE_MAIN_R|"
                       r"STATE_QUICK_R|retransmi|replac|rekey|notify|connection_checker|"
                       r"terminating|add-connection|addconn helper|failed")


def key_lines(log: str, limit: int = 80) -> str:
    """The last ``limit`` lines of a log that say why an SA was made or removed."""
    lines = [line[:240] for line in log.splitlines() if _KEY_LINE.search(line)]
    return "".join(line + "\n" for line in lines[-limit:])


def run_cell(case: Case, topo: netns.Topology, workdir: Path, pki: dict[str, Pki],
             sink: matrix.Sink, *, where: str = "host") -> None:
    """Run one cell and send its result to ``sink``; AssertionError/HarnessError on failure
    (after the failure was recorded)."""
    uml = where == "uml"
    mode, auth = case.phase1.split("-")
    conn_a, conn_b = pair(topo, auth=auth, aggressive=mode == "aggressive",
                          suite=SUITES[case.suite], pfs=case.phase2.endswith("+pfs"),
                          tunnel=case.phase2 != "transport")
    # behind a NAT the initiator must be the side inside: there we are a when we initiate
    we_inside = case.topology == "nat" and case.role == "initiator"
    their_side, our_side = ("b", "a") if we_inside else ("a", "b")
    their_conn, our_conn = (conn_b, conn_a) if we_inside else (conn_a, conn_b)
    rsa = auth == "rsa"
    peer = _peer(case, topo.side(their_side), workdir, their_conn,
                 pki[their_side] if rsa else None, uml)
    ours = isakmpd.IsakmpdPeer("ours", topo.side(our_side), workdir / "ours", [our_conn],
                               pki=pki[our_side] if rsa else None,
                               kernel="xfrm" if uml else "fakesa",
                               transport_ids=case.peer != PLUTO)
    netlink_refuses = case.peer == CHARON_NETLINK and not uml
    note = NETLINK_ON_HOST if netlink_refuses else ""
    if case.peer == CHARON_LIBIPSEC:
        note = LIBIPSEC_NOTE
    if case.topology == "nat":
        phase2 = case.phase2 + (", we are behind NAT" if we_inside else ", peer behind NAT")
    else:
        phase2 = case.phase2
    # generous, on the host too: a loaded machine stretches a negotiation several times over
    limit = 40.0
    settle = 15.0  # for the other side to log what it did
    try:
        with matrix.cell(sink, peer=case.peer, role=case.role, phase1=case.phase1,
                         phase2=phase2, suite=case.suite, where=where, note=note) as c:
            ours.launch()
            peer.launch()
            ours.ready()
            peer.ready()
            if case.role == "initiator":
                assert ours.initiate("ki", timeout=limit), (
                    "our phase 2 did not finish\n" + ours.log_path.read_text()[-3000:])
            else:
                peer.initiate("ki", timeout=limit)  # returns once the peer is done
                ours.wait_log(r"phase 2 done: ki,", 2 * settle)
            if isinstance(peer, isakmpd.IsakmpdPeer):
                peer.wait_log(r"phase 2 done: ki,", settle)
                theirs = peer.esp_keys()
            elif isinstance(peer, pluto.PlutoPeer):
                peer.wait_log(r"IPsec SA established", settle)
                theirs = isakmpd.xfrm_state_keys(peer.ns) if uml else peer.installed_keys()
            elif netlink_refuses:
                peer.wait_log(r"unable to install inbound and outbound IPsec SA", settle)
                theirs = peer.esp_keys()
            else:
                peer.wait_log(r"CHILD_SA ki\{\d+\} established", settle)
                theirs = peer.esp_keys()
            # the peer's own listing (whack --status, swanctl --list-sas) may lag its log line
            # on a busy machine: poll it until the SA shows (charon's refused child never does)
            their_child = peer.child_sas()
            deadline = time.monotonic() + settle
            while not their_child and not netlink_refuses and time.monotonic() < deadline:
                time.sleep(0.5)
                their_child = peer.child_sas()
            our_ike = _only(ours.ike_sas(), "ISAKMP SA of ours", ours, peer)
            our_child = _only(ours.child_sas(), "IPsec SA of ours", ours, peer)
            spis = {our_child.spi_in, our_child.spi_out}
            if isinstance(peer, charon.CharonPeer | isakmpd.IsakmpdPeer):
                their_ike = _only(peer.ike_sas(), "ISAKMP SA of the peer's", ours, peer)
                assert (their_ike.cookie_i, their_ike.cookie_r) == (our_ike.cookie_i,
                                                                    our_ike.cookie_r)
            if netlink_refuses:
                # charon's refused child has no --list-sas entry; its key log has the SPIs
                c.spis_agree = spis == set(theirs)
            else:
                tc = _only(their_child, "IPsec SA of the peer's", ours, peer)
                c.spis_agree = (tc.spi_in, tc.spi_out) == (our_child.spi_out,
                                                           our_child.spi_in)
            assert c.spis_agree, (our_child, their_child, sorted(theirs))
            c.keys_agree = _same_keys(ours.esp_keys(), theirs, spis)
            assert c.keys_agree, (ours.esp_keys(), theirs)
            if case.peer == CHARON_LIBIPSEC:
                # NAT-T: charon floated to 4500 and runs UDP-encapsulated tunnel mode, and
                # our SAs are installed with UDP encapsulation (type 2, ESP-in-UDP) to match
                assert [t.mode for t in their_child] == ["TUNNEL-in-UDP"], their_child
                encaps = {k.encap.split(" ")[0] for k in ours.esp_keys().values()
                          if k.spi in spis}
                assert encaps == {"2"}, ours.esp_keys()
            if uml:
                c.ping = _ping(topo, case.phase2 != "transport", spis)
                assert c.ping, "no ping across the tunnel, or the ESP counters did not move"
    finally:
        ours.stop()
        peer.stop()


def _installed(topo: netns.Topology, spis: set[str], timeout: float = 30) -> bool:
    """Wait until both kernels hold the pair's two SAs and an inbound and an outbound policy:
    a side may log its SA done a moment before it has put its outbound SA and flow in (a
    responder does so when HASH(3) arrives), and a ping sent before then would be lost."""
    deadline = time.monotonic() + timeout
    while True:
        done = all(spis <= set(isakmpd.xfrm_state_keys(ns))
                   and {"in", "out"} <= set(re.findall(r"\bdir (in|out)\b", ns.run(
                       ["ip", "xfrm", "policy"], check=False).stdout))
                   for ns in (topo.a, topo.b))
        if done or time.monotonic() > deadline:
            return done
        time.sleep(0.1)


def _ping(topo: netns.Topology, tunnel: bool, spis: set[str]) -> bool:
    """Ping b from a (inner addresses in tunnel mode, outer in transport) once both kernels
    have the SAs in: replies arrive and both sides' ESP SAs counted the packets."""
    src, dst = (topo.a.inner, topo.b.inner) if tunnel else (topo.a.addr, topo.b.addr)
    if not _installed(topo, spis):
        return False
    got = topo.a.run(["ping", "-n", "-q", "-c", "3", "-i", "0.2", "-W", "2", "-I", str(src),
                      str(dst)], check=False)
    received = re.search(r"(\d+) received", got.stdout)
    return (received is not None and int(received.group(1)) >= 2
            and _esp_packets(topo.a) >= 4 and _esp_packets(topo.b) >= 4)


def _peer(case: Case, ns: netns.Namespace, workdir: Path, conn: Connection,
          pki: Pki | None, uml: bool) -> charon.CharonPeer | pluto.PlutoPeer | isakmpd.IsakmpdPeer:
    if case.peer == SELF:
        return isakmpd.IsakmpdPeer("peer", ns, workdir / "peer", [conn], pki=pki,
                                   kernel="xfrm" if uml else "fakesa")
    if case.peer == PLUTO:
        return pluto.PlutoPeer("lsb", ns, workdir / "lsb", [conn], pki=pki, fake_sa=not uml)
    ipsec = "libipsec" if case.peer == CHARON_LIBIPSEC else "netlink"
    return charon.CharonPeer("swa", ns, workdir / "swa", [conn], ipsec=ipsec, pki=pki)

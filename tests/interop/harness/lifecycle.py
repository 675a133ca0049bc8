"""Lifecycle cells that need kernel ESP, run inside User-Mode Linux with the matrix cells.

Rekey: our daemon initiates with a short Quick Mode lifetime (``REKEY_LIFE`` seconds, through
``Default-phase-2-lifetime``; the peer keeps its default) and renegotiates at its soft expiry
(85-95 % of the lifetime).  A ping stream runs across the rekey; the cell passes when no ping is
lost, the kernels on both sides end with exactly the new SA pair (the old SPIs gone: we retire
the old SA with a DELETE ``REKEY_RETIRE_GRACE`` seconds after the new one is in), the new SPIs
agree and the new ESP keys are equal on both sides.

One loss is not ours to prevent, and is accounted for exactly instead: libreswan 4.10, as Quick
Mode responder, adds its new *outbound* SA already at QUICK_R1, before its message 2 leaves (its
log: ``add_sa() ... outbound ... [SPI]`` before ``sent Quick Mode reply``), and its live policy
(same reqid) sends on it at once.  Our inbound SA cannot exist before message 2 brings the nonce
its keys need, so a ping pluto sends in that window (its own ~5-20 ms, and our handling of
message 2) hits our larval SPI and the kernel drops it (``XfrmAcquireError``).  The cell passes
such a loss only when every lost ping is one of those drops: our kernel counted exactly as many
AcquireErrors during the stream as pings were lost, no other XFRM error, and pluto's log shows
that order of its own.  Anything else -- a drop on our side's outbound, a missing SA, a policy
gap -- still fails it.

Peer rekey: the other way round, the peer (pluto or charon) initiates the whole connection and
rekeys its Phase 2 SAs itself, ``PEER_REKEY_MARGIN`` seconds (plus a little random spread) before
its ``PEER_REKEY_LIFE`` second lifetime ends; ours, Quick Mode responder, accepts that short
lifetime (its own is longer, ``OUR_LONG_LIFE``) and so never rekeys first.  Here the check is
strict, without any excuse: no ping lost across the rekey, and the stream goes on until both
kernels hold only the new pair (at the end of the old pair's lifetime each side's kernel and
daemon remove it and tell the other with a DELETE; charon drops its old outbound SA at once),
then the new SPIs agree and the new ESP keys are equal on both sides.  No loss has an excuse
here: both peers, as Quick Mode initiator, put both new SAs in before HASH(3) leaves (their
logs), and ours puts its inbound SA in before its message 2 and its outbound one when HASH(3)
arrives, so every packet sent on a new SA finds it.

The stream ends on events, not on a count fixed in advance: ``REKEY_TAIL`` seconds after both
kernels hold exactly the new pair (so its tail crossed the new SAs), or at a generous deadline.
A ping count fixed from the start left the swap only ~2 s before the stream's end (measured in
UML), which a loaded machine's slower rekey and slower kernel polling could use up.
"""

from __future__ import annotations

import re
import signal
import time
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path

import matrix

from ike.engine import REKEY_RETIRE_GRACE

from . import isakmpd, netns
from .cells import CHARON_NETLINK, PLUTO, Case, _peer
from .model import SUITES, Connection, Peer
from .scenario import pair

#: the Quick Mode lifetime we offer in the rekey cells, seconds (short: the cell waits for it)
REKEY_LIFE = 12
#: each peer's rekey cell; ``phase2`` names the lifecycle step
REKEY_CASES = [Case(PLUTO, "initiator", phase2="tunnel, rekey"),
               Case(CHARON_NETLINK, "initiator", phase2="tunnel, rekey")]
#: the peer's Phase 2 lifetime in the peer-rekey cells, and how long before its end it rekeys
#: (pluto 5-6.25 s, charon 5-6 s before): the old SAs go at the end of the lifetime, and the
#: new pair's own rekey (twice as late as the first) comes well after the stream's end
PEER_REKEY_LIFE = 20
PEER_REKEY_MARGIN = 5
#: our own Phase 2 lifetime there: longer than the peer's, whose shorter proposal we accept
OUR_LONG_LIFE = 600
#: each peer's cell where the peer rekeys and ours is Quick Mode responder
PEER_REKEY_CASES = [Case(PLUTO, "responder", phase2="tunnel, peer rekeys"),
                    Case(CHARON_NETLINK, "responder", phase2="tunnel, peer rekeys")]
#: seconds the ping stream goes on after the swap to the new SAs
REKEY_TAIL = 2.0
#: seconds from the start of the negotiation to the end of the stream at the latest: the soft
#: expiry, the rekey, the retirement and the tail, with room for a loaded machine
REKEY_DEADLINE = REKEY_LIFE + REKEY_RETIRE_GRACE + REKEY_TAIL + 45
#: the same when the peer rekeys: its lifetime (the old pair's end) and the tail, with room
PEER_REKEY_DEADLINE = PEER_REKEY_LIFE + REKEY_TAIL + 40
_REPLY = re.compile(r"icmp_seq=(\d+) ")


def _spis(ns: netns.Namespace) -> set[str]:
    return set(isakmpd.xfrm_state_keys(ns))


def _lost_pings(out: str) -> set[int] | None:
    """The echo requests of the stream left unanswered (None: no statistics, no reply at all).
    The last request -- sent just before we stopped ping with SIGINT, its reply maybe still on
    the way -- does not count as lost."""
    got = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    seqs = {int(m.group(1)) for m in _REPLY.finditer(out)}
    if got is None or not seqs:
        return None
    sent = int(got.group(1))
    return set(range(1, sent)) - seqs


def _xfrm_counters(ns: netns.Namespace) -> dict[str, int]:
    """The namespace's XFRM error counters (/proc/net/xfrm_stat)."""
    stat = ns.run(["cat", "/proc/net/xfrm_stat"], check=False).stdout
    return {k: int(v) for k, v in (line.split() for line in stat.splitlines()
                                   if len(line.split()) == 2 and line.split()[1].isdigit())}


def _pluto_sent_before_message_2(log: str, spi: str) -> bool:
    """Whether pluto's log shows its outbound SA ``spi`` (our inbound one) added before its
    Quick Mode message 2 left: from then on it may send on it, before we can have it."""
    lines = log.splitlines()
    added = next((i for i, line in enumerate(lines)
                  if "add_sa()" in line and " outbound " in line and f"[{spi}]" in line), None)
    sent = next((i for i, line in enumerate(lines)
                 if "sent Quick Mode reply" in line and f"ESP=>0x{spi}" in line), None)
    return added is not None and sent is not None and added < sent


def _early_drops(lost: set[int], before: dict[str, int], after: dict[str, int],
                 peer_log: str, spi_in: str) -> bool:
    """Whether every lost ping is a packet pluto sent on its new SA before its message 2
    reached us: as many AcquireErrors (a packet for our still larval SPI) as lost pings, no
    other XFRM drop during the stream, and pluto's own log showing that order."""
    grown = {k: after.get(k, 0) - v for k, v in before.items() if after.get(k, 0) != v}
    return (bool(lost) and grown == {"XfrmAcquireError": len(lost)}
            and _pluto_sent_before_message_2(peer_log, spi_in))


def _evidence(topo: netns.Topology, ours: isakmpd.IsakmpdPeer, peer: Peer) -> str:
    """What a lost ping leaves behind: each kernel's non-zero XFRM drop counters (an SPI not
    yet there, a policy missing), the SAs with their packet counts, and both daemons' logs."""
    parts = []
    for ns in (topo.a, topo.b):
        drops = " ".join(f"{k}={v}" for k, v in _xfrm_counters(ns).items() if v)
        states = ns.run(["ip", "-s", "xfrm", "state"], check=False).stdout
        parts.append(f"--- {ns.name}: xfrm_stat {drops or 'all 0'}\n{states}")
    for name, log in (("ours", ours.log_path), ("peer", peer.log_path)):
        if log.exists():
            parts.append(f"--- {name} log\n{log.read_text(errors='replace')[-4000:]}")
    return "\n".join(parts)


def _daemons(case: Case, topo: netns.Topology, workdir: Path, their_conn: Connection,
             our_conn: Connection) -> tuple[Peer, isakmpd.IsakmpdPeer]:
    """The peer in namespace a and ours in b, both on the kernel's XFRM."""
    return (_peer(case, topo.a, workdir, their_conn, None, True),
            isakmpd.IsakmpdPeer("ours", topo.b, workdir / "ours", [our_conn], kernel="xfrm"))


def _cell(sink: matrix.Sink, case: Case, note: str) -> AbstractContextManager[matrix.Cell]:
    """The matrix record of a lifecycle cell (UML)."""
    return matrix.cell(sink, peer=case.peer, role=case.role, phase1=case.phase1,
                       phase2=case.phase2, suite=case.suite, where="uml", note=note)


def _start(ours: isakmpd.IsakmpdPeer, peer: Peer) -> None:
    """Launch both daemons at once, then wait until each is ready."""
    ours.launch()
    peer.launch()
    ours.ready(timeout=60)
    peer.ready(timeout=60)


def _judge_new_pair(c: matrix.Cell, topo: netns.Topology, ours: isakmpd.IsakmpdPeer,
                    peer: Peer, old_spis: set[str], swapped_at: float | None,
                    ended: float) -> None:
    """After the stream: our log shows exactly the old and the new pair, the new SPIs are not
    the old ones, both kernels held only the new pair from the swap (at least 0.5 s before
    the stream's end) and still do, and both sides' new ESP keys are equal."""
    sas = ours.child_sas()
    assert len(sas) == 2, (sas, _evidence(topo, ours, peer))
    new_spis = {sas[-1].spi_in, sas[-1].spi_out}
    assert not new_spis & old_spis
    c.spis_agree = (swapped_at is not None and ended - swapped_at >= 0.5
                    and _spis(topo.a) == _spis(topo.b) == new_spis)
    assert c.spis_agree, (old_spis, new_spis, _spis(topo.a), _spis(topo.b), swapped_at, ended,
                          _evidence(topo, ours, peer))
    theirs = isakmpd.xfrm_state_keys(topo.a)
    mine = ours.esp_keys()
    c.keys_agree = all(mine[s] == theirs[s] for s in new_spis)
    assert c.keys_agree, (mine, theirs)


def _stream(topo: netns.Topology, ours: isakmpd.IsakmpdPeer, workdir: Path,
            deadline: float) -> tuple[str, float | None, float]:
    """Ping b from a every 0.2 s until both kernels have held exactly our second pair of SAs
    for ``REKEY_TAIL`` seconds (or until ``deadline``); (ping's output, when the swap was seen
    or None, when the stream ended)."""
    ping_log = workdir / "ping.log"
    # one reply line per packet (no -q): which ones came back is read from them
    ping = topo.a.popen(["ping", "-n", "-i", "0.2", "-W", "2", "-c", "100000",
                         "-I", str(topo.a.inner), str(topo.b.inner)], log=str(ping_log))
    swapped_at = None
    while ping.poll() is None and time.monotonic() < deadline:
        if swapped_at is None and len(sas := ours.child_sas()) == 2:
            new_spis = {sas[1].spi_in, sas[1].spi_out}
            if _spis(topo.a) == new_spis and _spis(topo.b) == new_spis:
                swapped_at = time.monotonic()
        if swapped_at is not None and time.monotonic() - swapped_at >= REKEY_TAIL:
            break
        time.sleep(0.2)
    ended = time.monotonic()
    if ping.poll() is None:
        ping.send_signal(signal.SIGINT)  # ping prints its statistics and exits
    ping.wait(timeout=30)
    return ping_log.read_text(errors="replace"), swapped_at, ended


def run_rekey_cell(case: Case, topo: netns.Topology, workdir: Path, sink: matrix.Sink) -> None:
    """One rekey cell (UML only: real XFRM SAs on both sides); the result goes to ``sink``,
    AssertionError/HarnessError on failure after it was recorded."""
    their_conn, _ = pair(topo, suite=SUITES[case.suite])
    _, our_conn = pair(topo, suite=SUITES[case.suite], ipsec_lifetime=REKEY_LIFE)
    peer, ours = _daemons(case, topo, workdir, their_conn, our_conn)
    note = (f"lifecycle: our {REKEY_LIFE} s Quick Mode lifetime; rekey at the soft expiry, "
            "a ping every 0.2 s across it, none lost")
    if case.peer == PLUTO:
        note += (" (pluto adds its new outbound SA at QUICK_R1: a ping it sends on it before "
                 "its message 2 reaches us is dropped by our kernel, counted and excused)")
    try:
        with _cell(sink, case, note) as c:
            _start(ours, peer)
            start = time.monotonic()
            assert ours.initiate("ki", timeout=40), ours.log_path.read_text()[-3000:]
            established = (r"IPsec SA established" if case.peer == PLUTO
                           else r"CHILD_SA ki\{\d+\} established")
            peer.wait_log(established, 30)
            [old] = ours.child_sas()
            old_spis = {old.spi_in, old.spi_out}
            counters = _xfrm_counters(topo.b)
            out, swapped_at, ended = _stream(topo, ours, workdir, start + REKEY_DEADLINE)
            lost = _lost_pings(out)
            sas = ours.child_sas()
            new = sas[-1]
            early = (case.peer == PLUTO and lost is not None and len(sas) == 2
                     and _early_drops(lost, counters, _xfrm_counters(topo.b),
                                      peer.log_path.read_text(errors="replace")
                                      if peer.log_path.exists() else "", new.spi_in))
            c.ping = lost is not None and (not lost or early)
            assert c.ping, (f"ping lost packets across the rekey:\n{out}\n"
                            + _evidence(topo, ours, peer))
            if early:
                assert lost is not None
                c.note = c.note.replace("none lost", (
                    f"none lost but {len(lost)} that pluto sent on its new SA before its message 2 "
                    "reached us (it adds its outbound SA at QUICK_R1; our kernel counted them)"))
            _judge_new_pair(c, topo, ours, peer, old_spis, swapped_at, ended)
    finally:
        ours.stop()
        peer.stop()


def run_peer_rekey_cell(case: Case, topo: netns.Topology, workdir: Path,
                        sink: matrix.Sink) -> None:
    """One cell where the peer initiates and rekeys (UML only); strict: no ping may be lost.
    The result goes to ``sink``; AssertionError/HarnessError on failure after it was
    recorded."""
    their_conn, _ = pair(topo, suite=SUITES[case.suite], ipsec_lifetime=PEER_REKEY_LIFE)
    their_conn = replace(their_conn, rekey_margin=PEER_REKEY_MARGIN)
    _, our_conn = pair(topo, suite=SUITES[case.suite], ipsec_lifetime=OUR_LONG_LIFE)
    peer, ours = _daemons(case, topo, workdir, their_conn, our_conn)
    note = (f"lifecycle: the peer's {PEER_REKEY_LIFE} s Quick Mode lifetime (ours "
            f"{OUR_LONG_LIFE} s); it rekeys {PEER_REKEY_MARGIN} s or a little more before the "
            "end, we answer; a ping every 0.2 s across it, none lost")
    try:
        with _cell(sink, case, note) as c:
            _start(ours, peer)
            start = time.monotonic()
            assert peer.initiate("ki", timeout=40), peer.log_path.read_text()[-3000:]
            ours.wait_log(r"phase 2 done: ki,", 30)
            [old] = ours.child_sas()
            old_spis = {old.spi_in, old.spi_out}
            out, swapped_at, ended = _stream(topo, ours, workdir, start + PEER_REKEY_DEADLINE)
            lost = _lost_pings(out)
            c.ping = lost == set()
            assert c.ping, (f"ping lost packets across the peer's rekey:\n{out}\n"
                            + _evidence(topo, ours, peer))
            # the peer rekeyed, not we: our log has no rekey of our own
            assert "rekeying ki" not in ours.log_path.read_text(errors="replace")
            _judge_new_pair(c, topo, ours, peer, old_spis, swapped_at, ended)
    finally:
        ours.stop()
        peer.stop()

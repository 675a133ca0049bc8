"""The deadline heaps behind Engine.get_timer/handle_timer (ike.timers): stale entries skipped,
re-set fields, removed objects, equal deadlines, nothing lost and nothing fired twice -- and a
random walk checked against a plain scan of every deadline, as get_timer used to do."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from ike.sa import IPsecSA, IPsecTable, IsakmpSA, SATable
from ike.timers import NEVER, Timed, TimedDict, TimedPart, TimerHeap, timed, timed_part


@timed("soft", "hard")
class Box(Timed):
    """A timed object with two deadlines, like an SA's soft and hard expiry."""

    soft: float | None
    hard: float | None

    def __init__(self, soft: float | None = None, hard: float | None = None) -> None:
        self.soft = soft
        self.hard = hard

    def timer_values(self) -> list[float]:
        return [t for t in (self.soft, self.hard) if t is not None]

    def timer_min(self) -> float:
        return min(self.timer_values(), default=NEVER)


def due(d: TimedDict[int, Box], now: float) -> list[Box]:
    """One whole timer run that handles nothing: the due boxes."""
    with d.timers.run(now) as run:
        return run.take(Box)


HEAP, SCAN = -1, 1000
"""A heap that is always in use, or never (a plain scan of the table)."""
MODES = pytest.mark.parametrize("mode", [HEAP, SCAN], ids=["heap", "scan"])


def table(*boxes: Box, mode: int = HEAP) -> TimedDict[int, Box]:
    d: TimedDict[int, Box] = TimedDict(TimerHeap(scan_max=mode))
    for i, box in enumerate(boxes):
        d[i] = box
    return d


@MODES
def test_empty_heap_has_no_timer(mode: int) -> None:
    assert table(mode=mode).timers.first() is None
    assert table(Box(), mode=mode).timers.first() is None


@MODES
def test_first_is_the_earliest_deadline_of_any_object(mode: int) -> None:
    d = table(Box(30, 40), Box(None, 20), Box(50), mode=mode)
    assert d.timers.first() == 20


@MODES
def test_values_set_before_registration_count_and_later_sets_push(mode: int) -> None:
    box = Box(10)
    box.hard = 5  # not in a table yet: nothing pushed anywhere
    d = table(box, mode=mode)
    assert d.timers.first() == 5
    box.hard = None
    assert d.timers.first() == 10


def test_stale_entries_are_skipped_and_dropped() -> None:
    box = Box(10)
    d = table(box)
    box.soft = 20  # later: the entry for 10 stays, now early (a lower bound)
    assert len(d.timers) == 1
    assert d.timers.first() == 20  # the early entry gave way to one at 20
    assert len(d.timers) == 1
    box.soft = 5  # earlier: a new entry; the one at 20 is stale
    assert len(d.timers) == 2
    assert d.timers.first() == 5
    box.soft = None
    assert d.timers.first() is None
    assert len(d.timers) == 0


@MODES
def test_a_field_moved_earlier_and_later(mode: int) -> None:
    box = Box(10)
    d = table(box, mode=mode)
    box.soft = 5
    assert d.timers.first() == 5
    box.soft = 15
    assert d.timers.first() == 15
    box.soft = 10  # back to a value with an old entry: still right, and only once due
    assert d.timers.first() == 10
    with d.timers.run(12) as run:
        assert run.take(Box) == [box]
        assert run.take(Box) == []  # handed out once per run
        box.soft = None
    assert d.timers.first() is None


@MODES
def test_removed_objects_no_longer_count(mode: int) -> None:
    a, b, c = Box(10), Box(20), Box(30)
    d = table(a, b, c, mode=mode)
    del d[0]
    assert d.timers.first() == 20
    d.pop(1)
    assert d.timers.first() == 30
    d.clear()
    assert d.timers.first() is None
    assert due(d, 100) == []
    c.soft = 1  # an object out of its table pushes nothing that could count
    assert d.timers.first() is None


@MODES
def test_an_object_moved_to_another_key_counts_once(mode: int) -> None:
    box = Box(10)
    d = table(box, mode=mode)
    del d[0]
    d[7] = box
    assert d.timers.first() == 10
    with d.timers.run(10) as run:
        assert run.take(Box) == [box]
        assert run.take(Box) == []


@MODES
def test_equal_deadlines_come_out_together_in_table_order(mode: int) -> None:
    a, b, c = Box(5), Box(5), Box(5, 5)
    d = table(c, a, b, mode=mode)
    assert d.timers.first() == 5
    with d.timers.run(5) as run:
        assert run.take(Box) == [c, a, b]
        assert run.take(Box) == []  # nothing fires twice
        a.soft = b.soft = c.soft = c.hard = None
    assert d.timers.first() is None


@MODES
def test_only_due_objects_are_taken(mode: int) -> None:
    a, b = Box(5), Box(6)
    d = table(a, b, mode=mode)
    assert due(d, 4.999) == []
    assert due(d, 5) == [a]
    assert d.timers.first() == 5  # its handler left the deadline in the past: still due
    with d.timers.run(5) as run:
        assert run.take(Box) == [a]
        a.soft = None
    assert d.timers.first() == 6


@MODES
def test_a_handler_re_setting_its_deadline(mode: int) -> None:
    a = Box(5, 100)
    d = table(a, mode=mode)
    with d.timers.run(5) as run:
        assert run.take(Box) == [a]
        a.soft = 8  # re-armed, as a retransmission or a DPD check is
    assert d.timers.first() == 8
    with d.timers.run(8) as run:
        assert run.take(Box) == [a]
        a.soft = None
    assert d.timers.first() == 100


@MODES
def test_a_failing_handler_loses_no_deadline(mode: int) -> None:
    a, b = Box(5), Box(5)
    d = table(a, b, mode=mode)
    with pytest.raises(RuntimeError), d.timers.run(5) as run:
        assert run.take(Box) == [a, b]
        b.soft = None
        raise RuntimeError("handler failed")
    assert d.timers.first() == 5
    assert due(d, 5) == [a]


@MODES
def test_a_handler_removing_another_due_object(mode: int) -> None:
    a, b = Box(5), Box(5)
    d = table(a, b, mode=mode)
    with d.timers.run(5) as run:
        assert run.take(Box) == [a, b]
        del d[1]  # b goes while due: not put back; a's deadline, left in place, is
    assert d.timers.first() == 5
    assert due(d, 5) == [a]


def test_stale_entries_are_rebuilt_away() -> None:
    boxes = [Box(float(i)) for i in range(10)]
    d = table(*boxes)
    for n in range(20000):
        boxes[n % 10].soft = 1000.0 + n
    assert len(d.timers) <= 2048
    assert d.timers.first() == 1000.0 + 19990


@timed_part("next_at")
@dataclass
class Probe(TimedPart):
    next_at: float


def test_parts_push_for_their_owner() -> None:
    sas = SATable(TimerHeap(scan_max=HEAP))
    sa = IsakmpSA("peer", True, bytes(8), ("10.0.0.1", 500), ("10.0.0.2", 500), rcookie=b"r" * 8)
    sas.add_isakmp(sa)
    assert sas.isakmp.timers.first() is None
    sa.soft_at = 100.0
    from ike.exchange.dpd import DpdState
    from ike.exchange.natt import NatState
    sa.dpd = DpdState(30.0, 50.0, 1)
    assert sas.isakmp.timers.first() == 50.0
    sa.dpd.next_at = 40.0
    assert sas.isakmp.timers.first() == 40.0
    sa.nat = NatState(draft=False, keepalive_at=20.0)
    assert sas.isakmp.timers.first() == 20.0
    sa.nat.keepalive_at = None
    sa.dpd = None  # DPD turned off (a replaced SA): its entries go stale
    assert sas.isakmp.timers.first() == 100.0
    probe = Probe(7.0)
    probe.next_at = 3.0  # owned by nobody: pushes nowhere
    old = sa.cookies
    sa.rcookie = b"s" * 8
    sas.rekey_isakmp(sa, old)
    with sas.timers.run(100.0) as run:
        assert run.take(IsakmpSA) == [sa]
    sas.remove_isakmp(sa)
    sa.hard_at = 10.0
    assert sas.isakmp.timers.first() is None


def ipsec(name: str, soft: float | None = None) -> IPsecSA:
    sa = IPsecSA(name, bytes(16), 1, True, "10.0.0.1", "10.0.0.2")
    sa.soft_at = soft
    return sa


def test_ipsec_table_keeps_order_identity_and_names() -> None:
    t = IPsecTable(TimerHeap(scan_max=HEAP))
    a, b, c = ipsec("x", 30.0), ipsec("y", 10.0), ipsec("x", 20.0)
    for s in (a, b, c):
        t.append(s)
    assert t == [a, b, c] and list(t) == [a, b, c] and len(t) == 3 and t[1] is b
    assert t.by_name("x") == [a, c] and t.by_name("z") == []
    twin = ipsec("x", 30.0)
    assert twin == a and twin not in t  # by identity, not by equal fields
    with pytest.raises(ValueError):
        t.remove(twin)
    assert t.timers.first() == 10.0
    t.remove(b)
    assert t == [a, c] and b not in t and t.by_name("y") == []
    assert t.timers.first() == 20.0
    for s in t:  # a snapshot: removing while walking is safe
        t.remove(s)
    assert not t and t.timers.first() is None
    t.append(a)
    t.clear()
    assert t == [] and t.by_name("x") == [] and t.timers.first() is None


def test_ipsec_table_finds_an_sa_by_either_spi_oldest_first() -> None:
    """A DELETE or a kernel EXPIRE names an SPI: the table answers from its index, as the old
    walk did (the oldest SA using that SPI on either side, for that protocol only)."""
    from ike.policy import ChosenProtocol
    from ike.sa import ProtoSA

    def bundle(name: str, *spis: tuple[int, int, int]) -> IPsecSA:
        sa = ipsec(name)
        sa.protocols = [ProtoSA(ChosenProtocol(proto, 12, ()), spi_in, spi_out)
                        for proto, spi_in, spi_out in spis]
        return sa

    t = IPsecTable()
    a = bundle("a", (3, 0x1000, 0x2000))
    b = bundle("b", (3, 0x3000, 0x1000), (2, 0x4000, 0x4001))  # its outbound SPI is a's inbound
    c = bundle("c", (3, 0x5000, 0x5000))  # the same number both ways
    for s in (a, b, c):
        t.append(s)
    assert t.by_spi(3, 0x2000) is a and t.by_spi(3, 0x3000) is b and t.by_spi(2, 0x4001) is b
    assert t.by_spi(3, 0x1000) is a  # oldest first
    assert t.by_spi(2, 0x1000) is None and t.by_spi(3, 0x4000) is None  # per protocol
    assert t.by_spi(3, 0x5000) is c
    t.remove(a)
    assert t.by_spi(3, 0x1000) is b and t.by_spi(3, 0x2000) is None
    t.remove(c)
    assert t.by_spi(3, 0x5000) is None
    sas = SATable()
    sas.ipsec.append(b)
    assert sas.ipsec_by_spi(2, 0x4000) is b
    sas.remove_ipsec(b)
    assert sas.ipsec_by_spi(2, 0x4000) is None and sas.ipsec_by_spi(3, 0x1000) is None
    t.clear()
    assert t.by_spi(3, 0x3000) is None


def test_sa_table_by_name_skips_dead_sas() -> None:
    sas = SATable()
    a, b = ipsec("x"), ipsec("x")
    sas.ipsec.append(a)
    sas.ipsec.append(b)
    sas.remove_ipsec(a)
    assert sas.ipsec_by_name("x") == [b] and a.state.value == "dead"


@pytest.mark.parametrize("mode", [HEAP, SCAN, 20], ids=["heap", "scan", "both"])
@pytest.mark.parametrize("seed", range(6))
def test_random_walk_matches_a_full_scan(seed: int, mode: int) -> None:
    """Random sets, removals, re-insertions and timer runs: the heap always agrees with a
    scan of every live deadline, each due object is handled exactly once per run, and a
    deadline left in the past is due again in the next one -- with the heap, with a scan,
    and switching between them as the table grows past 20 objects and shrinks below 5."""
    rng = random.Random(seed)
    boxes = [Box() for _ in range(40)]
    d: TimedDict[int, Box] = TimedDict(TimerHeap(scan_max=mode))
    modes = set()
    now = 0.0

    def scan() -> float | None:
        values = [t for box in d.values() for t in box.timer_values()]
        return min(values, default=None)

    def deadline() -> float | None:
        return None if rng.random() < 0.2 else now + rng.choice((0.0, 1.0, 2.5, 7.0, 40.0))

    for step in range(3000):
        grow = 0.1 if step // 500 % 2 else -0.1  # the table fills up and empties in turn
        op = rng.random()
        box_id = rng.randrange(len(boxes))
        box = boxes[box_id]
        if op < 0.45:
            setattr(box, rng.choice(("soft", "hard")), deadline())
        elif op < 0.55 + grow:
            d.pop(box_id, None)
        elif op < 0.7:
            d[box_id] = box
        else:
            now += rng.choice((0.0, 0.5, 1.0, 3.0))
            expected = [b for b in d.values() if any(t <= now for t in b.timer_values())]
            with d.timers.run(now) as run:
                got = run.take(Box)
                assert got == expected  # each once, in table order
                for b in got:
                    if rng.random() < 0.7:  # handled: re-armed or cleared
                        b.soft, b.hard = deadline(), None
                    if rng.random() < 0.1:
                        d.pop(rng.randrange(len(boxes)), None)
        assert d.timers.first() == scan()
        modes.add(d.timers.large)
    assert modes == ({True} if mode == HEAP else {False} if mode == SCAN else {True, False})


def test_objects_are_hooked_only_while_the_heap_is_in_use() -> None:
    """Scanning, an SA is a plain object and its tables plain dicts (a handshake pays nothing
    for the heap); once the heap takes over, its deadlines and its parts' are hooked, and it
    still equals and prints as a plain SA with the same fields; once the tables shrink again
    it is plain again, with the values it had."""
    from ike.exchange.dpd import DpdState

    sas = SATable(TimerHeap(scan_max=8))
    sa = IsakmpSA("peer", True, bytes(8), ("10.0.0.1", 500), ("10.0.0.2", 500), rcookie=b"r" * 8)
    twin = IsakmpSA("peer", True, bytes(8), ("10.0.0.1", 500), ("10.0.0.2", 500),
                    rcookie=b"r" * 8)
    sas.add_isakmp(sa)
    sa.dpd, twin.dpd = DpdState(30.0, 50.0, 1), DpdState(30.0, 50.0, 1)
    sa.soft_at = twin.soft_at = 80.0
    assert sas.timers.first() == 50.0 and not sas.timers.large
    assert type(sa) is IsakmpSA and type(sa.dpd) is DpdState and type(sas.isakmp) is TimedDict
    others = [ipsec("x", 60.0 + i) for i in range(8)]
    for other in others:
        sas.ipsec.append(other)
    assert sas.timers.first() == 50.0 and sas.timers.large
    assert type(sa) is not IsakmpSA and isinstance(sa, IsakmpSA) and sa.soft_at == 80.0
    assert type(sa.dpd) is not DpdState and sa.dpd._owner is sa
    assert sa == twin and twin == sa and repr(sa) == repr(twin) and sa.dpd == twin.dpd
    late = ipsec("y", 1.0)
    sas.ipsec.append(late)  # put in while the heap is in use: registered and hooked at once
    assert type(late) is not IPsecSA and sas.timers.first() == 1.0
    late.soft_at = None
    sa.dpd.next_at = 5.0  # a hooked part pushes for its SA
    assert sas.timers.first() == 5.0
    twin.dpd.next_at = 5.0
    for other in [*others, late]:
        sas.ipsec.remove(other)
    assert sas.timers.first() == 5.0 and not sas.timers.large
    assert type(sa) is IsakmpSA and type(sa.dpd) is DpdState and type(sas.isakmp) is TimedDict
    assert sa == twin and sa.soft_at == 80.0 and sa.dpd.next_at == 5.0
    sa.soft_at = 2.0  # plain again: scanned
    assert sas.timers.first() == 2.0

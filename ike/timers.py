"""The engine's deadlines: its next timer in O(log n) per change, not a scan of every table.

The runtime asks ``Engine.get_timer()`` after every datagram, and a gateway holds thousands of
SAs.  The engine's timed tables (:class:`TimedDict` of exchanges and of ISAKMP SAs,
ike.sa.IPsecTable) share one :class:`TimerHeap`.  While they hold few objects (``scan_max``)
the engine simply scans them, as it always did, and the timer machinery does nothing at all:
the tables are plain dicts (C insertion), the SAs' deadlines plain attributes (C stores),
nothing is registered, pushed or referenced weakly -- in Python that is the cheapest way to
look after a handful of objects, and a handshake pays nothing for the heap.  Beyond that
(:meth:`TimerHeap.first` sees more) the heap takes over in one pass over the tables, keeping
``(when, seq, weakref)`` entries, until the objects are fewer than a quarter of ``scan_max``
again; then the objects are let go in one pass too.

While the heap is in use its tables register what is put in them (their class is switched
to one whose ``__setitem__`` does), and the registered objects of a :func:`timed` class are
switched to its hooked twin: a subclass whose deadline attributes are properties, so that
assigning one earlier than the object's entry pushes a new entry and no call site can forget
to.  Reads stay C attribute reads, under a private name.  An ISAKMP SA's DPD and NAT-T states
are parts (:func:`timed_part`), hooked with their SA, whose deadlines are pushed for it.  (An
exchange's deadlines, set on every message and only by its own lifecycle methods, are pushed
by hand there instead: ike.exchange.base.)  A hooked object equals, prints and copies as a
plain one; out of heap use it is switched back.

Entries are never removed when a deadline moves or its object goes; they are dropped when they
reach the top and turn out stale (lazy invalidation).  The invariant, while the heap is in
use: every object live in its table with a deadline has an entry at or before its earliest
deadline (``timer_min()``); the value of one such entry is its ``_tmin``, so only a deadline
set earlier than that needs a new entry.  The top entry is *valid* when its object is live and
its value is that object's earliest deadline -- then it is the earliest deadline of all.  A
stale top is popped; if it was the object's ``_tmin`` entry, one at its (later) earliest
deadline replaces it.  A timer run (:meth:`TimerHeap.run`) takes the due objects out phase by
phase and at its end gives each live one its entry back (:meth:`TimerHeap.settle`), even when
a handler raised: nothing due is lost, and a due object is handed out once per run.  While it
is not in use there are no entries and nothing to keep true: the tables are scanned.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from itertools import count
from operator import attrgetter
from typing import Any, TypeVar
from weakref import ReferenceType, ref

__all__ = ["NEVER", "SCAN_MAX", "Timed", "TimedDict", "TimedPart", "TimerHeap", "TimerRun",
           "timed", "timed_part"]

K = TypeVar("K")
T = TypeVar("T", bound="Timed")
C = TypeVar("C", bound=type)

NEVER = float("inf")
"""No deadline."""
SCAN_MAX = 16
"""Up to this many SAs and exchanges, get_timer scans them (cheaper than keeping a heap, in
Python); beyond it the heap is used, until they are fewer than a quarter of it again."""
_COMPACT_MIN = 64
"""Slack of stale entries before a compaction is considered (entries hold their objects
weakly: a stale one costs a few bytes, not the SA it named)."""
_stamps = count(1)
"""Table order: each registration takes the next stamp, so due objects run in table order."""


class Timed:
    """An object with deadlines, kept in a timed table (a mixin: no dataclass fields).  The
    bookkeeping below is set when the heap is in use (class defaults until then)."""

    _timers: TimerHeap | None = None
    """The heap of the table holding it; None until it is put in one in heap use."""
    _table: dict[Any, Any] | None = None
    """That table's dict; liveness is ``_table.get(_tkey) is self``."""
    _tkey: object = None
    """Its key in that dict."""
    _order: int = 0
    """Its registration stamp: its place in the table's order."""
    _tmin: float = NEVER
    """The value of its entry known to be at or before its earliest deadline (NEVER: none)."""

    def timer_min(self) -> float:
        """The earliest deadline the engine's timer counts now (NEVER: none), as
        ``Engine.get_timer`` always counted them."""
        raise NotImplementedError


class TimedPart:
    """A part of a timed object with deadlines of its own (an ISAKMP SA's DPD, NAT-T state)."""

    _owner: Timed | None = None
    """The object it belongs to, while hooked; its deadlines are pushed for that one."""


def _deadline(private: str) -> Callable[[Timed, float | None], None]:
    def store(obj: Timed, value: float | None) -> None:
        setattr(obj, private, value)
        if value is not None and value < obj._tmin and (heap := obj._timers) is not None:
            heap.push(value, obj)
    return store


def _part_deadline(private: str) -> Callable[[TimedPart, float | None], None]:
    def store(obj: TimedPart, value: float | None) -> None:
        setattr(obj, private, value)
        if value is not None and (owner := obj._owner) is not None and value < owner._tmin \
                and (heap := owner._timers) is not None:
            heap.push(value, owner)
    return store


def _part(private: str) -> Callable[[Timed, Any], None]:
    def store(obj: Timed, value: Any) -> None:
        setattr(obj, private, value)
        if value is not None:
            _hook_in(value)
            value._owner = obj
            if (heap := obj._timers) is not None and (when := obj.timer_min()) < obj._tmin:
                heap.push(when, obj)
    return store


_HOOKED: dict[type, type] = {}
"""A timed class -> its hooked twin."""
_PLAIN: dict[type, type] = {}
"""A hooked twin -> its timed class."""
_MAKERS: dict[str, Callable[[str], Callable[[Any, Any], None]]] = {
    "deadline": _deadline, "part": _part, "part-deadline": _part_deadline}


def _hooked_class(cls: type) -> type | None:
    """The hooked twin of ``cls`` (made for a subclass of a timed class on first use); None
    when ``cls`` is a twin already or has nothing hooked."""
    hooked = _HOOKED.get(cls)
    if hooked is None and cls not in _PLAIN:
        hooks: tuple[tuple[str, str], ...] | None = getattr(cls, "_timed_hooks", None)
        if hooks is None:
            return None
        namespace: dict[str, Any] = {"__module__": cls.__module__,
                                     "__qualname__": cls.__qualname__}
        for kind, name in hooks:
            # A property: the value lives under a private name, read back by a C getter (no
            # Python call per read) and stored by a plain setattr.
            private = "_t_" + name
            namespace[private] = None
            namespace[name] = property(attrgetter(private), _MAKERS[kind](private))
        if is_dataclass(cls) and cls.__dataclass_params__.eq:  # type: ignore[attr-defined]
            namespace["__eq__"] = _equal_as(cls)
        hooked = type(cls.__name__, (cls,), namespace)
        _HOOKED[cls] = hooked
        _PLAIN[hooked] = cls
    return hooked


def _equal_as(cls: type) -> Callable[[object, object], bool]:
    """A dataclass's ``__eq__`` for its hooked twin: a hooked object equals a plain one with
    equal fields (the generated one wants both of one class)."""
    names = [f.name for f in fields(cls) if f.compare]

    def __eq__(self: object, other: object) -> bool:
        if not isinstance(other, cls):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in names)
    return __eq__


def _hook(cls: C, kind: str, names: tuple[str, ...]) -> C:
    hooks = getattr(cls, "_timed_hooks", ())
    cls._timed_hooks = hooks + tuple((kind, name) for name in names)  # type: ignore[attr-defined]
    return cls


def timed(*deadlines: str, parts: tuple[str, ...] = ()) -> Callable[[C], C]:
    """Class decorator (above ``@dataclass``) of a :class:`Timed` class: these deadline
    attributes, and the attributes holding parts, are hooked while the heap is in use
    (assigning one pushes on the heap when needed); plain attributes otherwise."""
    return lambda cls: _hook(_hook(cls, "deadline", deadlines), "part", parts)


def timed_part(*deadlines: str) -> Callable[[C], C]:
    """Class decorator (above ``@dataclass``) of a :class:`TimedPart` class: these deadline
    attributes are hooked (pushed for its owner) while the owner is."""
    return lambda cls: _hook(cls, "part-deadline", deadlines)


def _hook_in(obj: Any) -> None:
    """Switch ``obj`` to its class's hooked twin (its values moved under the private names),
    and its parts with it."""
    hooked = _hooked_class(type(obj))
    if hooked is not None:
        _switch(obj, hooked, hooked=True)


def _hook_out(obj: Any) -> None:
    """Switch a hooked ``obj`` (and its parts) back to its plain class."""
    plain = _PLAIN.get(type(obj))
    if plain is not None:
        vars(obj).pop("_owner", None)
        _switch(obj, plain, hooked=False)


def _switch(obj: Any, cls: type, *, hooked: bool) -> None:
    hooks: tuple[tuple[str, str], ...] = cls._timed_hooks  # type: ignore[attr-defined]
    values = [getattr(obj, name) for _kind, name in hooks]
    obj.__class__ = cls
    own = vars(obj)
    for (kind, name), value in zip(hooks, values, strict=True):
        old, new = (name, "_t_" + name) if hooked else ("_t_" + name, name)
        own.pop(old, None)
        setattr(obj, new, value)
        if kind == "part" and value is not None:
            if hooked:
                _hook_in(value)
                value._owner = obj
            else:
                _hook_out(value)


def _live(obj: Timed) -> bool:
    table = obj._table
    return table is not None and table.get(obj._tkey) is obj


class TimerHeap:
    """The deadlines of an engine's timed tables: a plain scan of the tables while they are
    small, a heap with lazy invalidation once they are not (module docstring)."""

    __slots__ = ("_heap", "_limit", "_seq", "_tables", "large", "scan_limit", "scan_max")

    def __init__(self, scan_max: int | None = None) -> None:
        self._heap: list[tuple[float, int, ReferenceType[Timed]]] = []
        """Entries hold their objects weakly: an SA or exchange gone from its table is freed
        then, not when its last entry comes out."""
        self._seq = count()
        self._limit = _COMPACT_MIN
        self._tables: list[TimedDict[Any, Any]] = []
        """The tables' dicts, in the order of the engine's timer phases."""
        self.scan_max = SCAN_MAX if scan_max is None else scan_max
        """Up to this many objects in the tables, they are scanned (the engine's get_timer
        scans them itself, without a call)."""
        self.large = self.scan_max < 0
        """The heap is in use (more than ``scan_max`` objects in the tables at some look,
        and not yet fewer than a quarter of that)."""
        self.scan_limit = -1 if self.large else self.scan_max
        """While the tables hold no more objects than this, get_timer scans them itself:
        ``scan_max`` while scanning, -1 while the heap is in use (one comparison for both)."""

    def __len__(self) -> int:
        return len(self._heap)

    def attach(self, table: TimedDict[Any, Any]) -> None:
        """Count ``table``'s objects too (registering what goes in, if the heap is in use)."""
        self._tables.append(table)
        if self.large:
            table.__class__ = _RegisteringDict

    def push(self, when: float, obj: Timed) -> None:
        """Give ``obj`` an entry at ``when``, at or before its earliest deadline (while the
        heap is in use: an object that left its table before a switch to scanning still
        knows the heap)."""
        if self.large:
            heapq.heappush(self._heap, (when, next(self._seq), ref(obj)))
            obj._tmin = when

    def register(self, obj: Timed, table: dict[Any, Any], key: object,
                 order: int | None = None) -> None:
        """``obj`` was put in ``table`` under ``key`` (at the place of stamp ``order``, else
        at the end) while the heap is in use: its deadlines count from now on."""
        _hook_in(obj)
        obj._timers = self
        obj._table = table
        obj._tkey = key
        obj._order = next(_stamps) if order is None else order
        obj._tmin = when = obj.timer_min()
        if when < NEVER:
            heapq.heappush(self._heap, (when, next(self._seq), ref(obj)))

    def first(self) -> float | None:
        """The earliest deadline of an object in the tables (None: nothing scheduled)."""
        return None if (when := self.earliest()) == NEVER else when

    def earliest(self) -> float:
        """The earliest deadline of an object in the tables (NEVER: none)."""
        live = sum(map(len, self._tables))
        if not self.large:
            if live <= self.scan_max:
                best = NEVER
                for objs in self._tables:
                    for obj in objs.values():
                        if (when := obj.timer_min()) < best:
                            best = when
                return best
            self._use_heap()
        elif 4 * live < self.scan_max:
            self._use_scan()
            return self.earliest()
        heap = self._heap
        if len(heap) > self._limit:
            self._compact(live)
            heap = self._heap
        while heap:
            when, _seq, entry = heap[0]
            obj = entry()
            if obj is None:  # gone
                heapq.heappop(heap)
                continue
            table = obj._table  # (_live inlined: this runs after every datagram)
            alive = table is not None and table.get(obj._tkey) is obj
            if not alive:
                heapq.heappop(heap)
                continue
            earliest = obj.timer_min()
            if earliest == when:
                return when
            heapq.heappop(heap)
            if when == obj._tmin:  # its deadlines moved later: one entry for the earliest
                obj._tmin = earliest
                if earliest < NEVER:
                    heapq.heappush(heap, (earliest, next(self._seq), entry))
        return NEVER

    def _use_heap(self) -> None:
        """The tables grew: register everything in them (table order), build the heap, and
        let the tables register what goes in from now on."""
        self.large, self.scan_limit = True, -1
        for table in self._tables:
            table.__class__ = _RegisteringDict
            for key, obj in table.items():
                _hook_in(obj)
                obj._timers = self
                obj._table = table
                obj._tkey = key
                obj._order = next(_stamps)
        self._rebuild()

    def _use_scan(self) -> None:
        """The tables shrank: back to scanning them; their objects are plain again and push
        nothing any more (one that left its table in heap use may still call :meth:`push`)."""
        self.large, self.scan_limit = False, self.scan_max
        self._heap = []
        for table in self._tables:
            table.__class__ = TimedDict
            for obj in table.values():
                _hook_out(obj)
                obj._timers = None
                obj._tmin = NEVER

    def run(self, now: float) -> TimerRun:
        """``with heap.run(now) as due: due.take(Kind)...`` -- one timer run (TimerRun)."""
        return TimerRun(self, now)

    def pop_due(self, now: float) -> list[Timed]:
        """With the heap: take out the entries due at ``now``: the live objects with a
        deadline due, each once (their entry is gone until :meth:`settle`)."""
        heap = self._heap
        found: dict[int, Timed] = {}
        while heap and heap[0][0] <= now:
            when, _seq, entry = heapq.heappop(heap)
            obj = entry()
            if obj is None or id(obj) in found or not _live(obj):
                continue
            earliest = obj.timer_min()
            if earliest <= now:
                found[id(obj)] = obj
                obj._tmin = NEVER
            elif when == obj._tmin:  # not due after all: moved later
                if earliest < NEVER:
                    self.push(earliest, obj)
                else:
                    obj._tmin = NEVER
        return list(found.values())

    def settle(self, objs: list[Timed]) -> None:
        """After the handlers of due objects ran: each live one gets its entry back, unless a
        deadline its handler set pushed one at least as early (nothing due is lost)."""
        for obj in objs:
            if _live(obj) and (when := obj.timer_min()) < obj._tmin:
                self.push(when, obj)

    def _compact(self, live: int) -> None:
        """Past the limit (looked at per get_timer): drop the stale entries once they may
        outnumber the live objects, else raise the limit.  Either way the next look is twice
        the live objects away: amortised O(1) per push."""
        if len(self._heap) > 2 * live:
            self._rebuild()
        self._limit = len(self._heap) + 2 * live + _COMPACT_MIN

    def _rebuild(self) -> None:
        """One entry per live object with a deadline, in O(n)."""
        seq = self._seq
        fresh = []
        for table in self._tables:
            for obj in table.values():
                obj._tmin = when = obj.timer_min()
                if when < NEVER:
                    fresh.append((when, next(seq), ref(obj)))
        heapq.heapify(fresh)
        self._heap = fresh


def _order_of(obj: Timed) -> int:
    return obj._order


class TimerRun:
    """One run of the engine's timer: the due objects handed out kind by kind, each phase
    seeing what became due before it (as a scan of each table in turn would), and every due
    object's entry put back at the end, even when a handler raised."""

    __slots__ = ("handed", "heap", "now", "pending", "seen")

    def __init__(self, heap: TimerHeap, now: float) -> None:
        self.heap = heap
        self.now = now
        self.pending: dict[int, Timed] = {}
        """Due objects not handed out yet, by identity (heap)."""
        self.seen: list[Timed] = []
        """Every due object of this run (heap)."""
        self.handed: set[int] = set()
        """The objects handed out, by identity (scan)."""

    def __enter__(self) -> TimerRun:
        return self

    def take(self, kind: type[T]) -> list[T]:
        """The live due objects of class ``kind``, in table order (each once per run)."""
        heap = self.heap
        if not heap.large:  # a scan of the kind's table, as the engine always did
            now, handed = self.now, self.handed
            found_now: list[T] = []
            for table in heap._tables:
                for obj in table.values():
                    if not isinstance(obj, kind):
                        break  # a table holds one kind of object
                    if obj.timer_min() <= now and id(obj) not in handed:
                        found_now.append(obj)
            if found_now:
                handed.update(map(id, found_now))
            return found_now
        pending = self.pending
        for obj in heap.pop_due(self.now):
            self.seen.append(obj)
            pending[id(obj)] = obj
        if not pending:
            return []
        found: list[T] = []
        for key, obj in list(pending.items()):
            if isinstance(obj, kind):
                del pending[key]
                if _live(obj):
                    found.append(obj)
        if len(found) > 1:
            found.sort(key=_order_of)
        return found

    def __exit__(self, *exc: object) -> None:
        if self.seen:
            self.heap.settle(self.seen)


class TimedDict(dict[K, T]):
    """A dict of timed objects (by cookies, by exchange key) whose deadlines go on ``heap``.

    While the heap is in use it is a :class:`_RegisteringDict`: putting an object in
    (``d[key] = obj``) registers it; removing it in any way ends its entries' validity, since
    liveness is looked up (``d.get(obj._tkey) is obj``).  Otherwise it is a dict as fast as
    any (no Python-level method)."""

    def __init__(self, heap: TimerHeap | None = None) -> None:
        super().__init__()
        self.view = self.values()
        """Its objects: a live view, walked without a method call (a method of a dict
        subclass is not specialised by the interpreter: each call is a generic one)."""
        self.timers = heap if heap is not None else TimerHeap()
        self.timers.attach(self)


class _RegisteringDict(TimedDict[K, T]):
    """A :class:`TimedDict` while its heap is in use (module docstring)."""

    def __setitem__(self, key: K, obj: T) -> None:
        prev = dict.get(self, key)  # a replaced value keeps its key's place in the order
        dict.__setitem__(self, key, obj)
        self.timers.register(obj, self, key, None if prev is None else prev._order)

"""Determinism (same seed, same bytes) and robustness (no datagram makes the engine fail)."""

from __future__ import annotations

import logging
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def _run(h: Any, seed: int, mode: str) -> list[tuple[str, bytes]]:
    pair = h.make_pair(h.make_conf("a", mode=mode, suites="QM-ESP-AES-128-SHA-PFS-GRP14-SUITE"),
                       h.make_conf("b", mode=mode, suites="QM-ESP-AES-128-SHA-PFS-GRP14-SUITE"),
                       seed=seed, use_keynote=False)
    pair.a.start(pair.now)
    pair.flush()
    return list(pair.wire)


def test_same_seed_same_bytes(h: Any) -> None:
    for mode in ("ID_PROT", "AGGRESSIVE"):
        first, second = _run(h, 7, mode), _run(h, 7, mode)
        assert first == second and len(first) in (9, 6)
        assert _run(h, 8, mode) != first


_STAGES: dict[str, Any] = {}


def _stage(h: Any) -> Any:
    """An established pair plus every datagram it exchanged (built once)."""
    if "pair" not in _STAGES:
        pair = h.make_pair(h.make_conf("a"), h.make_conf("b"), use_keynote=False)
        pair.a.start(pair.now)
        pair.flush()
        _STAGES["pair"] = pair
    return _STAGES["pair"]


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_engine_never_fails_on_any_datagram(h: Any, data: st.DataObject) -> None:
    pair = _stage(h)
    handler = _Errors()
    logging.getLogger("ike").addHandler(handler)
    try:
        base = data.draw(st.sampled_from([d for _s, d in pair.wire] + [b""]))
        kind = data.draw(st.sampled_from(["random", "flip", "cut", "splice"]))
        if kind == "random":
            blob = data.draw(st.binary(max_size=400))
        elif kind == "flip" and base:
            pos = data.draw(st.integers(0, len(base) - 1))
            blob = base[:pos] + bytes([base[pos] ^ data.draw(st.integers(1, 255))]) + \
                base[pos + 1:]
        elif kind == "cut":
            blob = base[: data.draw(st.integers(0, len(base)))]
        else:
            blob = base[:28] + data.draw(st.binary(max_size=300))
        for engine, src, dst in ((pair.b, (h.A, 500), (h.B, 500)),
                                 (pair.a, (h.B, 500), (h.A, 500))):
            engine.receive_datagram(blob, src, dst, pair.now)
            engine.datagrams_to_send(pair.now)
            while engine.next_event() is not None:
                pass
    finally:
        logging.getLogger("ike").removeHandler(handler)
    assert not handler.records, handler.records[0].getMessage()


def _partial(h: Any, steps: int, mode: str) -> Any:
    """A pair that exchanged only its first ``steps`` datagrams."""
    pair = h.make_pair(h.make_conf("a", mode=mode, p1="3DES-SHA-GRP14"),
                       h.make_conf("b", mode=mode, p1="3DES-SHA-GRP14"), use_keynote=False,
                       nat_traversal=True)
    pair.drop = lambda side, n, data: n > steps
    pair.a.start(pair.now)
    pair.flush()
    return pair


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_engine_never_fails_mid_exchange(h: Any, data: st.DataObject) -> None:
    mode = data.draw(st.sampled_from(["ID_PROT", "AGGRESSIVE"]))
    steps = data.draw(st.integers(0, 8 if mode == "ID_PROT" else 5))
    pair = _partial(h, steps, mode)
    if not pair.wire:
        return
    handler = _Errors()
    logging.getLogger("ike").addHandler(handler)
    try:
        index = data.draw(st.integers(0, len(pair.wire) - 1))
        side, base = pair.wire[index]
        pos = data.draw(st.integers(0, len(base) - 1))
        how = data.draw(st.sampled_from(["flip", "cut", "tail"]))
        if how == "flip":
            blob = base[:pos] + bytes([base[pos] ^ data.draw(st.integers(1, 255))]) + \
                base[pos + 1:]
        elif how == "cut":
            blob = base[:pos]
        else:
            blob = base[:max(pos, 28)] + data.draw(st.binary(max_size=64))
        target = pair.b if side == "a" else pair.a
        src = (h.A, 500) if side == "a" else (h.B, 500)
        dst = (h.B, 500) if side == "a" else (h.A, 500)
        target.receive_datagram(blob, src, dst, pair.now)
        pair.drop = None
        pair.flush()
        pair.advance(130)
    finally:
        logging.getLogger("ike").removeHandler(handler)
    assert not handler.records, handler.records[0].getMessage()

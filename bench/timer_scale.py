"""timer_scale.py - what the engine's per-datagram timer work costs as a gateway's SAs grow.

    .venv/bin/python bench/timer_scale.py

After every datagram the runtime asks ``Engine.get_timer()`` for the next deadline, and
``handle_timer`` runs when it fires.  A responder completes one Main Mode + Quick Mode
handshake (bench/handshake_bench.py's set-up) and keeps its SAs; then N distinct IPsec SAs,
each with its own soft and hard deadlines, are added to its table the way the engine adds an
established one (``sas.ipsec.append``), and timed: ``get_timer``, ``handle_timer`` with nothing
due, and ``handle_timer`` with one SA's soft deadline due (a rekey check; the deadline is set
outside the timed call, as a FIFO command or the kernel would).  Anchor, measured in the same
run: the whole responder handshake (``responder_ms_modp2048`` of handshake_bench.py, 3 turns
of get_timer included) with one SA; ``get_timer_share_of_handshake_pct_N`` says what one
get_timer call at N SAs adds to it.  The script runs unchanged against an engine without the
deadline heap (for the before figures).
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import handshake_bench as hb

from ike.crypto.rand import RandomSource
from ike.engine import Engine
from ike.kernel.fake import FakeKernel
from ike.sa import SAState

SIZES = (1, 100, 1000, 10000)
CALLS = 200


def main() -> int:
    """Print ``name: value`` lines."""
    conf_a, conf_b = hb.confs("-GRP14")
    b = Engine(conf_b, rand=RandomSource.seeded(1), kernel=FakeKernel(), use_keynote=False)
    handshake_ms = min(hb.handshake(conf_a, b, seed) for seed in range(2, 12)) * 1000
    hb.forget(b)
    keep = hb.forget
    hb.forget = lambda engine: None  # this time the SAs stay in the tables
    try:
        hb.handshake(conf_a, b, 99)
    finally:
        hb.forget = keep
    [first] = b.sas.ipsec
    now = (first.soft_at or 0.0) - 500.0  # before every SA's deadlines
    print(f"responder_ms_modp2048: {handshake_ms:.3f}")
    sas = [first]
    for n in SIZES:
        while len(sas) < n:  # distinct SAs, distinct deadlines, added as the engine does
            sa = replace(first)
            sa.soft_at = now + 1000.0 + len(sas) * 0.25
            sa.hard_at = now + 2000.0 + len(sas) * 0.25
            sa.set_state(SAState.READY)
            b.sas.ipsec.append(sa)
            sas.append(sa)
        b.get_timer()  # settle whatever the additions left to do
        t0 = time.perf_counter()
        for _ in range(CALLS):
            b.get_timer()
        us = (time.perf_counter() - t0) / CALLS * 1e6
        print(f"get_timer_us_{n}: {us:.1f}")
        print(f"get_timer_share_of_handshake_pct_{n}: {us / 10 / handshake_ms:.1f}")
        t0 = time.perf_counter()
        for _ in range(CALLS):
            b.handle_timer(now)
        print(f"handle_timer_idle_us_{n}: {(time.perf_counter() - t0) / CALLS * 1e6:.1f}")
        spent = 0.0
        for i in range(CALLS):
            sa = sas[i % n]
            sa.state = SAState.READY  # its rekey check runs again (passive: no renegotiation)
            soft, sa.soft_at = sa.soft_at, now
            t0 = time.perf_counter()
            b.handle_timer(now)
            spent += time.perf_counter() - t0
            sa.soft_at = soft
        print(f"handle_timer_one_due_us_{n}: {spent / CALLS * 1e6:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

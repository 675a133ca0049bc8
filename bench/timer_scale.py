"""timer_scale.py - what the engine's per-datagram timer work costs as a gateway's SAs grow.

    .venv/bin/python bench/timer_scale.py

After every datagram the runtime asks ``Engine.get_timer()`` for the next deadline, and
``handle_timer`` walks the tables when it fires.  Both scan every ISAKMP and IPsec SA, so their
cost grows with the number of tunnels.  A responder completes one Main Mode + Quick Mode
handshake (bench/handshake_bench.py's set-up), then its IPsec SA table is filled to N entries
and ``get_timer`` is timed.  Anchor, measured in the same run: the whole responder handshake
(``responder_ms_modp2048`` of handshake_bench.py, 3 turns of get_timer included) with one SA;
``get_timer_share_of_handshake_pct_N`` says what one get_timer call at N SAs adds to it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import handshake_bench as hb

from ike.crypto.rand import RandomSource
from ike.engine import Engine
from ike.kernel.fake import FakeKernel

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
    [ipsa] = b.sas.ipsec
    print(f"responder_ms_modp2048: {handshake_ms:.3f}")
    for n in SIZES:
        b.sas.ipsec[:] = [ipsa] * n  # the scan reads each entry's deadlines: one object will do
        t0 = time.perf_counter()
        for _ in range(CALLS):
            b.get_timer()
        us = (time.perf_counter() - t0) / CALLS * 1e6
        print(f"get_timer_us_{n}: {us:.1f}")
        print(f"get_timer_share_of_handshake_pct_{n}: {us / 10 / handshake_ms:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

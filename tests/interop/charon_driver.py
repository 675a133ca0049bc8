"""A small UDP driver around the engine, run inside a network namespace by the charon tests.

    python charon_driver.py CONF LOCAL_ADDR initiator|responder SECONDS OUT.json
                            [nat-t [LINGER [NOTIFY,...]]]

It binds LOCAL_ADDR:500 (and :4500 with nat-t, the non-ESP marker added and removed there),
runs the engine (fake kernel, no policy) until the Quick Mode ended one way or the other, and
writes what it derived (Phase 1 keys, per-SPI ESP keys) and the events it
saw as JSON, for the test to compare with charon's key log.  After the Quick Mode it lingers
LINGER seconds; with NOTIFY types listed, the LINGER seconds start only once each of them was
received (SECONDS bounds the whole run), so a test waits for the messages it needs rather than
for a guessed time.
"""

from __future__ import annotations

import json
import select
import socket
import sys
import time
from typing import Any

from ike.conf import Conf
from ike.crypto.rand import RandomSource
from ike.engine import Engine
from ike.events import ExchangeFailed, NotifyReceived, Phase2Done, SADeleted
from ike.exchange.quick import QuickMode
from ike.kernel.fake import FakeKernel
from ike.sa import IPsecSA


def _bundle(b: IPsecSA) -> list[dict[str, str | int]]:
    return [{"spi_in": p.spi_in, "spi_out": p.spi_out, "enc_in": p.enc_in.hex(),
             "auth_in": p.auth_in.hex(), "enc_out": p.enc_out.hex(),
             "auth_out": p.auth_out.hex(),
             "encapsulation": dict(p.choice.attributes).get(4, 0)} for p in b.protocols]


def main() -> int:
    conf_path, local, role, seconds, out_path = sys.argv[1:6]
    nat_t = len(sys.argv) > 6 and sys.argv[6] == "nat-t"
    linger = float(sys.argv[7]) if len(sys.argv) > 7 else 3.0
    awaited = {int(n) for n in sys.argv[8].split(",")} if len(sys.argv) > 8 else set()
    with open(conf_path) as f:
        conf = Conf.from_text(f.read(), source=conf_path)
    engine = Engine(conf, rand=RandomSource(), kernel=FakeKernel(), use_keynote=False,
                    local_address=local, tag="driver", nat_traversal=nat_t)
    socks: dict[int, socket.socket] = {}
    for port in (500, 4500) if nat_t else (500,):
        socks[port] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        socks[port].bind((local, port))
    by_fd = {s.fileno(): port for port, s in socks.items()}
    result: dict[str, Any] = {"events": [], "phase2": [], "phase1": {}}
    start = time.monotonic()
    if role == "initiator":
        engine.connect("conn", time.monotonic())
    done_at: float | None = None
    settled_at: float | None = None
    while time.monotonic() - start < float(seconds):
        now = time.monotonic()
        for data, src, dst in engine.datagrams_to_send(now):
            # from port 4500, IKE carries the 4-byte non-ESP marker (RFC 3948)
            marker = bytes(4) if src[1] == 4500 else b""
            socks[src[1] if src[1] in socks else 500].sendto(marker + data, dst)
        timer = engine.get_timer()
        wait = 0.2 if timer is None else max(0.0, min(0.2, timer - now))
        ready, _w, _x = select.select(list(socks.values()), [], [], wait)
        now = time.monotonic()
        for ready_sock in ready:
            port = by_fd[ready_sock.fileno()]
            data, src = ready_sock.recvfrom(65535)
            if port == 4500:
                if data[:4] != bytes(4):
                    continue  # ESP in UDP or a keepalive: not for IKE
                data = data[4:]
            engine.receive_datagram(data, src, (local, port), now)
        engine.handle_timer(now)
        for ex in engine.exchanges.values():
            if isinstance(ex, QuickMode) and ex.bundle is not None:
                entry = _bundle(ex.bundle)
                if entry not in result["phase2"]:
                    result["phase2"].append(entry)
        while (ev := engine.next_event()) is not None:
            result["events"].append([type(ev).__name__, getattr(ev, "notify", 0),
                                     getattr(ev, "reason", "")])
            if isinstance(ev, Phase2Done | ExchangeFailed | SADeleted) and done_at is None:
                done_at = now
            if isinstance(ev, NotifyReceived):
                awaited.discard(ev.notify)
        for sa in engine.sas.isakmp.values():
            if sa.keys is not None:
                k = sa.keys
                result["phase1"] = {"cookies": sa.cookies.hex(), "SKEYID": k.skeyid.hex(),
                                    "SKEYID_d": k.skeyid_d.hex(), "SKEYID_a": k.skeyid_a.hex(),
                                    "SKEYID_e": k.skeyid_e.hex(),
                                    "encryption key Ka": k.enc_key.hex(),
                                    "initial IV": k.iv.hex()}
        for ipsa in engine.sas.ipsec:
            entry = _bundle(ipsa)
            if entry not in result["phase2"]:
                result["phase2"].append(entry)
        if done_at is not None and not awaited and settled_at is None:
            settled_at = now
        if settled_at is not None and now - settled_at > linger:
            break
    for data, src, dst in engine.datagrams_to_send(time.monotonic()):
        marker = bytes(4) if src[1] == 4500 else b""
        socks[src[1] if src[1] in socks else 500].sendto(marker + data, dst)
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

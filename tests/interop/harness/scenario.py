"""Both sides' :class:`Connection` for one matrix cell, so every test spells a cell the same way.

IDs: Main Mode PSK uses the outer IPv4 addresses (ID_IPV4_ADDR); Aggressive Mode PSK and RSA use
ID_FQDN "@a.ki.test"/"@b.ki.test" (the certificates carry those names, pki.py).  Behind the NAT
b accepts any source address (the router's, with random ports) while the IDs stay private.
"""

from __future__ import annotations

from dataclasses import replace

from .model import SUITES, Connection, Suite
from .netns import Topology


def pair(topo: Topology, *, auth: str = "psk", aggressive: bool = False,
         suite: Suite = SUITES["aes128-sha1-modp2048"], pfs: bool = False,
         tunnel: bool = True, name: str = "ki", ike_lifetime: int = 3600,
         ipsec_lifetime: int = 1200, dpd_delay: int = 0) -> tuple[Connection, Connection]:
    """(connection of side a, connection of side b) for one cell."""
    a, b = topo.a, topo.b
    if auth == "psk" and not aggressive:
        a_id, b_id = a.addr, b.addr
    else:
        a_id, b_id = "@a.ki.test", "@b.ki.test"
    a_ts = f"{a.inner}/32" if tunnel else None
    b_ts = f"{b.inner}/32" if tunnel else None
    conn_a = Connection(name, a.addr, b.addr, a_id, b_id, suite=suite, auth=auth,
                        aggressive=aggressive, pfs=pfs, local_ts=a_ts, remote_ts=b_ts,
                        ike_lifetime=ike_lifetime, ipsec_lifetime=ipsec_lifetime,
                        dpd_delay=dpd_delay)
    conn_b = replace(conn_a, local=b.addr,
                     remote="%any" if topo.router is not None else a.addr,
                     local_id=b_id, remote_id=a_id, local_ts=b_ts, remote_ts=a_ts)
    return conn_a, conn_b

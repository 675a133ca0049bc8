"""Quick Mode without client IDs (RFC 2409 5.5): the IDs are then the ISAKMP peers' addresses.

pluto sends no IDs in transport mode.  As responder the engine treats the absent IDs as the
peers' addresses: a connection whose Local-ID/Remote-ID name exactly those addresses is the one
chosen (as isakmpd's faked IDs do), one without IDs to that peer also answers, and a connection
for other networks does not; the answer carries no IDs either, and the kernel selectors are the
two addresses."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from ike.events import Phase2Done
from ike.exchange.connections import implied_id
from ike.kernel.interface import AddSA
from ike.wire import Identification

HOSTS = """[host-a]
ID-type=                IPV4_ADDR
Address=                10.0.0.1
[host-b]
ID-type=                IPV4_ADDR
Address=                10.0.0.2
"""


def _pair(h: Any, responder_ids: tuple[str, str] | None) -> Any:
    """Initiator a sends no client IDs; responder b's conn has ``responder_ids``
    (Local-ID, Remote-ID) or none."""
    conf_a = h.make_conf("a", suites="QM-ESP-TRP-AES-128-SHA-SUITE", more=HOSTS)
    conf_b = h.make_conf("b", suites="QM-ESP-TRP-AES-128-SHA-SUITE", more=HOSTS)
    with conf_a.transaction() as t:
        t.remove("conn", "Local-ID")
        t.remove("conn", "Remote-ID")
    with conf_b.transaction() as t:
        if responder_ids is None:
            t.remove("conn", "Local-ID")
            t.remove("conn", "Remote-ID")
        else:
            t.set("conn", "Local-ID", responder_ids[0], override=True)
            t.set("conn", "Remote-ID", responder_ids[1], override=True)
    pair = h.make_pair(conf_a, conf_b, use_keynote=False)
    pair.a.start(pair.now)
    pair.flush()
    return pair


def test_implied_id_is_the_address() -> None:
    ident = implied_id("10.0.0.7")
    assert isinstance(ident, Identification)
    assert (int(ident.id_type), bytes(ident.data), ident.protocol, ident.port) == (
        1, bytes([10, 0, 0, 7]), 0, 0)
    assert int(implied_id("2001:db8::1").id_type) == 5


@pytest.mark.parametrize("responder_ids", [("host-b", "host-a"), None],
                         ids=["ids-name-the-addresses", "no-ids"])
def test_responder_implies_the_peer_addresses(h: Any,
                                              responder_ids: tuple[str, str] | None) -> None:
    pair = _pair(h, responder_ids)
    done = [e for e in pair.events("b") if isinstance(e, Phase2Done)]
    assert [e.name for e in done] == ["conn"]
    assert any(isinstance(e, Phase2Done) for e in pair.events("a"))
    for kernel, (src, dst) in ((pair.kb, (h.B, h.A)), (pair.ka, (h.A, h.B))):
        [out] = [c for c in kernel.commands if isinstance(c, AddSA) and not c.inbound]
        assert not out.tunnel and out.selector is not None
        assert (out.selector.src, out.selector.dst) == (ipaddress.ip_network(f"{src}/32"),
                                                        ipaddress.ip_network(f"{dst}/32"))
    [ia] = pair.a.sas.ipsec
    [ib] = pair.b.sas.ipsec
    # nothing was sent, so nothing is mirrored: both bundles keep the IDs absent
    assert (ia.local_ids, ia.remote_ids, ib.local_ids, ib.remote_ids) == (None,) * 4


def test_responder_refuses_ids_for_other_networks(h: Any) -> None:
    """b's connection is for the 192.168 networks: the implied host IDs do not match it."""
    pair = _pair(h, ("net-b", "net-a"))
    assert not [e for e in pair.events("b") if isinstance(e, Phase2Done)]
    assert not pair.b.sas.ipsec

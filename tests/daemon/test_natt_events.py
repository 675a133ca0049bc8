"""The kernel's NAT mapping events cross the privilege separation like ACQUIRE and EXPIRE."""

from __future__ import annotations

import ipaddress
import json

from ike.daemon import wire_codec
from ike.kernel import interface as k


def test_nat_mapping_round_trips_through_the_monitor_codec() -> None:
    a = ipaddress.ip_address("10.0.0.2")
    old, new = ipaddress.ip_address("192.0.2.99"), ipaddress.ip_address("192.0.2.77")
    event = k.NatMapping(3, 0x1234, a, 7, old, new, 31001, 31005)
    assert wire_codec.decode(json.loads(json.dumps(wire_codec.encode(event)))) == event

"""Our decoders read bytes the kernel really sent, captured once by
tests/kernel/capture_events.py in a throw-away namespace: on the host kernel 6.18 (no ESP;
kernel_events.json) and inside User-Mode Linux 6.1 (with ESP; kernel_events_uml61.json, via
``tests/kernel/uml.py .venv/bin/python tests/kernel/capture_events.py``)."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from ike.doi.constants import ProtocolId
from ike.kernel import netlink
from ike.kernel.interface import (
    Acquire,
    Direction,
    Expire,
    NatMapping,
    PolicyExpire,
    TrafficSelector,
    address,
    network,
)

FIXTURES = Path(__file__).parent / "fixtures"
KERNELS: dict[str, dict[str, str]] = {
    name: json.loads((FIXTURES / f"{name}.json").read_text())["messages"]
    for name in ("kernel_events", "kernel_events_uml61")
}
MSGS = KERNELS["kernel_events"]
ESP = ProtocolId.IPSEC_ESP


@pytest.fixture(params=sorted(KERNELS))
def kernel(request: pytest.FixtureRequest) -> dict[str, str]:
    """The captured messages of one kernel (6.18 host, 6.1 UML)."""
    msgs: dict[str, str] = KERNELS[request.param]
    return msgs


def one(name: str, msgs: dict[str, str] = MSGS) -> netlink.NlMsg:
    found = list(netlink.split_messages(bytes.fromhex(msgs[name])))
    assert len(found) == 1
    return found[0]


def test_acquire_transport(kernel: dict[str, str]) -> None:
    ev = netlink.decode_event(one("acquire_transport_udp", kernel))
    assert isinstance(ev, Acquire)
    assert ev.seq >= 1 and ev.reqid == 7 and not ev.tunnel and ev.proto == ESP
    assert (ev.src, ev.dst) == (address("10.88.0.1"), address("10.88.0.2"))
    assert ev.selector == TrafficSelector(network("10.88.0.1/32"), network("10.88.0.2/32"))
    assert ev.packet == TrafficSelector(network("10.88.0.1/32"), network("10.88.0.2/32"),
                                        17, 4242, 9999)
    assert ev.policy_index & 7 == Direction.OUT


def test_acquire_tunnel_uses_policy_selector(kernel: dict[str, str]) -> None:
    ev = netlink.decode_event(one("acquire_tunnel_udp", kernel))
    assert isinstance(ev, Acquire)
    assert ev.tunnel and ev.reqid == 11
    assert (ev.src, ev.dst) == (address("10.88.0.1"), address("10.88.0.9"))
    assert ev.selector == TrafficSelector(network("10.88.0.0/24"), network("10.2.0.0/24"))
    assert ev.packet.dst == network("10.2.0.5/32") and ev.packet.dport == 7777


def test_larval_expiries(kernel: dict[str, str]) -> None:
    acq = netlink.decode_event(one("expire_larval_acquire", kernel))
    assert isinstance(acq, Expire) and acq.hard and acq.larval and acq.reqid == 7
    assert acq.dst == address("10.88.0.2")
    spi = netlink.decode_event(one("expire_larval_allocspi", kernel))
    assert isinstance(spi, Expire) and spi.hard and not spi.larval
    assert spi.spi == 0x12345678 and spi.dst == address("10.88.0.1") and spi.proto == ESP


def test_policy_expiries(kernel: dict[str, str]) -> None:
    soft = netlink.decode_event(one("polexpire_soft", kernel))
    hard = netlink.decode_event(one("polexpire_hard", kernel))
    assert isinstance(soft, PolicyExpire) and isinstance(hard, PolicyExpire)
    assert not soft.hard and hard.hard and soft.direction == Direction.IN
    assert soft.selector == TrafficSelector(network("10.3.0.0/16"), network("10.4.0.0/16"))


def test_allocspi_reply(kernel: dict[str, str]) -> None:
    msg = one("newsa_reply_allocspi", kernel)
    assert msg.kind == netlink.XfrmMsg.NEWSA and msg.seq == 99
    sa = netlink.decode_usersa_info(msg.body)
    assert sa.spi == 0x12345678 and sa.dst == address("10.88.0.1") and sa.reqid == 4
    assert netlink.decode_event(msg) is None


def test_nat_mapping_from_uml() -> None:
    ev = netlink.decode_event(one("mapping", KERNELS["kernel_events_uml61"]))
    assert ev == NatMapping(ESP, 0x4242, address("10.89.0.2"), 5, address("10.89.0.1"),
                            address("10.89.0.1"), 4500, 4600)


def test_uml_kernel_acked_the_esp_newsa() -> None:
    err, text = netlink.decode_error(one("error_newsa", KERNELS["kernel_events_uml61"]))
    assert (err, text) == (0, "")


def test_error_with_extack() -> None:
    msg = one("error_newsa")
    assert msg.kind == netlink.NLMSG_ERROR and msg.seq == 100
    err, text = netlink.decode_error(msg)
    assert err == errno.EPROTONOSUPPORT and text == "Requested type not found"
    assert netlink.error_message(err, text).startswith(
        "EPROTONOSUPPORT (93): Requested type not found")


@pytest.mark.parametrize("name", sorted(KERNELS["kernel_events_uml61"]))
def test_truncated_input_raises_decode_error_only(name: str, kernel: dict[str, str]) -> None:
    if name not in kernel:
        name = "acquire_transport_udp"  # the host kernel has no ESP, hence no MAPPING
    data = bytes.fromhex(kernel[name])
    for cut in (3, 17, 40, 100, len(data) - 1):
        raw = bytearray(data[:cut])
        if len(raw) >= 4:
            raw[0:4] = len(raw).to_bytes(4, "little")
        try:
            for msg in netlink.split_messages(bytes(raw)):
                if msg.kind == netlink.NLMSG_ERROR:
                    netlink.decode_error(msg)
                else:
                    netlink.decode_event(msg)
        except netlink.NetlinkDecodeError:
            pass

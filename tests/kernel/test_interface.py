"""The command interface and the fake/none backends the engine tests run against."""

from __future__ import annotations

import errno

import pytest

from ike.doi.constants import ProtocolId
from ike.kernel.fake import FakeKernel
from ike.kernel.interface import (
    Acquire,
    AddFlow,
    AddSA,
    DeleteFlow,
    DeleteSA,
    Direction,
    Expire,
    Flush,
    GetSPI,
    KernelBackend,
    KernelError,
    KernelEvent,
    Lifetime,
    QuerySA,
    SAStats,
    TrafficSelector,
    address,
    execute,
    network,
)
from ike.kernel.none import NoneKernel

A = address("10.88.0.1")
B = address("10.88.0.2")
ESP = ProtocolId.IPSEC_ESP


def _sa(spi: int, inbound: bool) -> AddSA:
    return AddSA(
        proto=ESP, spi=spi, src=B if inbound else A, dst=A if inbound else B, inbound=inbound,
        transform_id=12, auth_alg=5, key_length=128, enc_key=bytes(16), auth_key=bytes(32),
    )


def test_backends_satisfy_protocol() -> None:
    assert isinstance(FakeKernel(), KernelBackend)
    assert isinstance(NoneKernel(), KernelBackend)


def test_fake_records_and_enforces_kernel_rules() -> None:
    k = FakeKernel()
    spi = k.get_spi(GetSPI(src=B, dst=A))
    assert spi == 0x1000 and (A, spi, ESP) in k.larval
    assert k.get_spi(GetSPI(src=B, dst=A)) == 0x1001
    k.add_sa(_sa(spi, inbound=True))
    assert (A, spi, ESP) not in k.larval and (A, spi, ESP) in k.sas
    with pytest.raises(KernelError) as e:
        k.add_sa(_sa(spi, inbound=True))
    assert e.value.errno == errno.EEXIST and e.value.errno_name == "EEXIST"
    assert k.query_sa(QuerySA(ESP, spi, B, A)) == SAStats(0, 0, 0, 0)
    k.delete_sa(DeleteSA(ESP, spi, B, A))
    assert k.query_sa(QuerySA(ESP, spi, B, A)) is None
    with pytest.raises(KernelError) as e:
        k.delete_sa(DeleteSA(ESP, spi, B, A))
    assert e.value.errno_name == "ESRCH"
    sel = TrafficSelector(network("10.1.0.0/24"), network("10.2.0.0/24"))
    k.add_flow(AddFlow(sel, Direction.OUT, A, B, tunnel=True))
    with pytest.raises(KernelError):
        k.add_flow(AddFlow(sel, Direction.OUT, A, B, tunnel=True))
    k.delete_flow(DeleteFlow(sel, Direction.OUT))
    with pytest.raises(KernelError) as e:
        k.delete_flow(DeleteFlow(sel, Direction.OUT))
    assert e.value.errno_name == "ENOENT"
    k.add_sa(_sa(0x5000, inbound=False))
    k.flush(Flush())
    assert not k.sas and not k.flows
    assert [type(c).__name__ for c in k.commands] == [
        "GetSPI", "GetSPI", "AddSA", "AddSA", "QuerySA", "DeleteSA", "QuerySA", "DeleteSA",
        "AddFlow", "AddFlow", "DeleteFlow", "DeleteFlow", "AddSA", "Flush",
    ]
    assert len(k.of_type(AddSA)) == 3


def test_fake_spi_range_and_injection() -> None:
    k = FakeKernel()
    assert k.get_spi(GetSPI(src=B, dst=A, spi_min=0x1234, spi_max=0x1234)) == 0x1234
    with pytest.raises(KernelError):
        k.get_spi(GetSPI(src=B, dst=A, spi_min=0x1234, spi_max=0x1234))
    with pytest.raises(KernelError, match="min > max"):
        k.get_spi(GetSPI(src=B, dst=A, spi_min=2, spi_max=1))
    seen: list[KernelEvent] = []
    k.set_event_handler(seen.append)
    sel = TrafficSelector.host_pair(A, B)
    acq = Acquire(seq=7, selector=sel, packet=sel, src=A, dst=B, proto=ESP, reqid=3)
    k.inject(acq)
    k.inject(Expire(ESP, 0, A, B, hard=True))
    assert seen[0] == acq
    assert isinstance(seen[1], Expire) and seen[1].larval


def test_execute_dispatches_by_type() -> None:
    k = FakeKernel()
    spi = execute(k, GetSPI(src=B, dst=A))
    assert spi == 0x1000
    assert execute(k, _sa(0x1000, inbound=True)) is None
    assert execute(k, QuerySA(ESP, 0x1000, B, A)) == SAStats(0, 0, 0, 0)
    assert execute(k, Flush()) is None and not k.sas


def test_none_kernel_accepts_everything() -> None:
    k = NoneKernel()
    spis = {k.get_spi(GetSPI(src=B, dst=A)) for _ in range(20)}
    assert all(0x100 <= s <= 0xFFFFFFFF for s in spis) and len(spis) > 1
    assert k.get_spi(GetSPI(src=B, dst=A, spi_min=9, spi_max=9)) == 9
    k.add_sa(_sa(1, inbound=False))
    assert k.query_sa(QuerySA(ESP, 1, A, B)) is None


def test_selector_and_lifetime_helpers() -> None:
    sel = TrafficSelector(network("10.1.0.5/24"), network("10.2.0.0/24"), 17, 500, 4500)
    assert str(sel.src) == "10.1.0.0/24"
    r = sel.reversed()
    assert (r.src, r.dst, r.sport, r.dport) == (sel.dst, sel.src, 4500, 500)
    with pytest.raises(ValueError):
        TrafficSelector(network("10.0.0.0/8"), network("::/0"))
    with pytest.raises(ValueError):
        TrafficSelector(network("10.0.0.0/8"), network("10.0.0.0/8"), sport=70000)
    assert Lifetime.from_negotiated(seconds=1200, kilobytes=1000) == Lifetime(
        1080, 1200, 921600, 1024000
    )


def test_ipcomp_gets_the_cpi_range() -> None:
    assert GetSPI(src=B, dst=A, proto=ProtocolId.IPCOMP).spi_range() == (0x100, 0xEFFF)
    assert GetSPI(src=B, dst=A, proto=ProtocolId.IPCOMP, spi_min=5, spi_max=9).spi_range() == (
        5, 9)
    assert GetSPI(src=B, dst=A).spi_range() == (0x100, 0xFFFFFFFF)
    assert NoneKernel().get_spi(GetSPI(src=B, dst=A, proto=ProtocolId.IPCOMP)) <= 0xEFFF

"""Two engines negotiate Phase 1 and Quick Mode in memory; both sides must agree on everything."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ike.events import Phase1Done, Phase2Done
from ike.kernel.interface import AddFlow, AddSA
from ike.sa import SAState


def _check_agreement(pair: object) -> None:
    a, b = pair.a, pair.b  # type: ignore[attr-defined]
    ka, kb = pair.ka, pair.kb  # type: ignore[attr-defined]
    [sa_a] = a.sas.isakmp.values()
    [sa_b] = b.sas.isakmp.values()
    assert sa_a.cookies == sa_b.cookies
    assert sa_a.state is SAState.READY and sa_b.state is SAState.READY
    assert sa_a.keys is not None and sa_b.keys is not None
    assert sa_a.keys.skeyid == sa_b.keys.skeyid
    assert sa_a.keys.enc_key == sa_b.keys.enc_key
    assert sa_a.iv == sa_b.iv
    [ip_a] = a.sas.ipsec
    [ip_b] = b.sas.ipsec
    for pa, pb in zip(ip_a.protocols, ip_b.protocols, strict=True):
        assert pa.spi_in == pb.spi_out and pa.spi_out == pb.spi_in
        assert pa.enc_in == pb.enc_out and pa.auth_in == pb.auth_out
        assert pa.enc_out == pb.enc_in and pa.auth_out == pb.auth_in
        assert pa.enc_in != pa.enc_out
    sas_a = [c for c in ka.commands if isinstance(c, AddSA)]
    sas_b = [c for c in kb.commands if isinstance(c, AddSA)]
    assert len(sas_a) == len(sas_b) == 2 * len(ip_a.protocols)
    by_spi_b = {c.spi: c for c in sas_b}
    for c in sas_a:
        other = by_spi_b[c.spi]
        assert (c.src, c.dst) == (other.src, other.dst)
        assert c.inbound != other.inbound
        assert (c.enc_key, c.auth_key) == (other.enc_key, other.auth_key)
        assert c.transform_id == other.transform_id and c.tunnel
    assert len([c for c in ka.commands if isinstance(c, AddFlow)]) == 2


@pytest.mark.parametrize("suite", ["QM-ESP-AES-128-SHA-SUITE", "QM-ESP-AES-128-SHA-PFS-SUITE"])
def test_main_mode_psk_quick_mode(pair_factory: Callable[..., object], suite: str) -> None:
    pair = pair_factory(suites=suite)
    pair.a.start(pair.now)  # type: ignore[attr-defined]
    pair.flush()  # type: ignore[attr-defined]
    ev_a, ev_b = pair.events("a"), pair.events("b")  # type: ignore[attr-defined]
    assert [type(e) for e in ev_a] == [Phase1Done, Phase2Done]
    assert [type(e) for e in ev_b] == [Phase1Done, Phase2Done]
    assert ev_a[0].initiator and not ev_b[0].initiator
    assert ev_a[0].exchange == "main"
    _check_agreement(pair)
    exchange_types = [data[18] for _side, data in pair.wire]  # type: ignore[attr-defined]
    assert exchange_types == [2] * 6 + [32] * 3
    if "PFS" in suite:
        [ip_a] = pair.a.sas.ipsec  # type: ignore[attr-defined]
        assert (3, 2) in ip_a.protocols[0].choice.attributes  # MODP_1024, the suite default

"""libreswan's pluto driven by the harness against charon: no daemon of ours takes part.

charon (kernel-libipsec, so it completes Quick Mode and forces NAT-T) initiates Main Mode PSK
and Quick Mode to pluto (fakesa shim: its SA installs are answered in userspace); both report
the SAs, the SPIs agree, and pluto's logged KEYMAT equals charon's encryption||integrity keys.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from harness import charon, pluto
from harness.model import Connection
from harness.netns import Topology

pytestmark = [pytest.mark.interop, pytest.mark.root]


def test_charon_initiates_main_mode_psk_to_pluto(plain_topo: Topology, workdir: Path,
                                                 libreswan: Path) -> None:
    if charon.available() is not None:
        pytest.skip(str(charon.available()))
    a, b = plain_topo.a, plain_topo.b
    pa = charon.CharonPeer("swa", a, workdir / "swa", [Connection(
        "ki", a.addr, b.addr, a.addr, b.addr, local_ts=f"{a.inner}/32",
        remote_ts=f"{b.inner}/32")], ipsec="libipsec")
    pb = pluto.PlutoPeer("lsb", b, workdir / "lsb", [Connection(
        "ki", b.addr, a.addr, b.addr, a.addr, local_ts=f"{b.inner}/32",
        remote_ts=f"{a.inner}/32")])
    try:
        pa.launch()
        pb.launch()
        pa.ready()
        pb.ready()
        assert pa.initiate("ki", timeout=15), pa.log_path.read_text()[-3000:]
        pb.wait_log(r"IPsec SA established tunnel mode", 10)
        [ike_a] = pa.ike_sas()
        assert ike_a.state == "ESTABLISHED"
        assert [s.state for s in pb.ike_sas()] == ["STATE_MAIN_R3"]
        [ca], [cb] = pa.child_sas(), pb.child_sas()
        assert (ca.spi_in, ca.spi_out) == (cb.spi_out, cb.spi_in)
        assert ca.mode == "TUNNEL-in-UDP"
        charon_keys = pa.esp_keys()
        keymats = pb.keymats()
        assert set(keymats) == {ca.spi_in, ca.spi_out}
        for spi, km in keymats.items():
            assert km == charon_keys[spi].enc + charon_keys[spi].integ, spi
        assert pb.esp_keys(enc_len=16) == charon_keys
        assert "NEWSA proto 50" in (pb.dir / "fakesa.log").read_text()
    finally:
        pa.stop()
        pb.stop()

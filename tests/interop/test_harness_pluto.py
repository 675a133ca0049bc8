"""libreswan's pluto driven by the harness against charon: no daemon of ours takes part.

charon uses kernel-libipsec (so it completes Quick Mode; it forces NAT-T), pluto the fakesa shim
(its SA installs are answered in userspace).  In each role and Phase 1 mode both report the
SAs, the SPIs agree, and pluto's logged KEYMAT equals charon's encryption||integrity keys.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import matrix
from harness import charon, pluto
from harness.keylog import charon_child_key_lines, parse_pluto_log
from harness.model import SUITES, ChildSaInfo, EspKeys, Pki
from harness.netns import Topology
from harness.scenario import pair

pytestmark = [pytest.mark.interop, pytest.mark.root]


@pytest.mark.parametrize("initiator,auth,aggressive,pfs,suite", [
    ("charon", "psk", False, False, "aes128-sha1-modp2048"),
    ("charon", "rsa", False, False, "aes256-sha256-modp3072"),
    ("pluto", "psk", True, True, "aes128-sha256-ecp256"),
], ids=["charon-main-psk", "charon-main-rsa", "pluto-aggressive-psk-pfs"])
def test_charon_and_pluto(plain_topo: Topology, workdir: Path, libreswan: Path,
                          test_pki: dict[str, Pki], initiator: str, auth: str,
                          aggressive: bool, pfs: bool, suite: str,
                          record_cell: matrix.Sink) -> None:
    if charon.available() is not None:
        pytest.skip(str(charon.available()))
    conn_a, conn_b = pair(plain_topo, auth=auth, aggressive=aggressive, pfs=pfs,
                          suite=SUITES[suite])
    rsa = auth == "rsa"
    pa = charon.CharonPeer("swa", plain_topo.a, workdir / "swa", [conn_a], ipsec="libipsec",
                           pki=test_pki["a"] if rsa else None, aggressive_psk_ok=aggressive)
    pb = pluto.PlutoPeer("lsb", plain_topo.b, workdir / "lsb", [conn_b],
                         pki=test_pki["b"] if rsa else None)
    phase1 = f"{'aggressive' if aggressive else 'main'}-{auth}"
    try:
        with matrix.cell(record_cell, peer="strongSwan 5.9 (kernel-libipsec)",
                         role="initiator" if initiator == "pluto" else "responder",
                         phase1=phase1, phase2="tunnel+pfs" if pfs else "tunnel", suite=suite,
                         under_test="libreswan 4.10 (fakesa)") as c:
            pa.launch()
            pb.launch()
            pa.ready()
            pb.ready()
            if initiator == "charon":
                assert pa.initiate("ki", timeout=15), pa.log_path.read_text()[-3000:]
                pb.wait_log(r"IPsec SA established tunnel mode", 30)
            else:
                assert pb.initiate("ki", timeout=15), pb.log_path.read_text()[-3000:]
                pa.wait_log(r"CHILD_SA ki\{\d+\} established", 30)
            [ike_a] = pa.ike_sas()
            assert ike_a.state == "ESTABLISHED"
            [ike_b] = pb.ike_sas()
            assert ike_b.state.startswith("STATE_AGGR" if aggressive else "STATE_MAIN")
            [ca], [cb] = pa.child_sas(), pb.child_sas()
            c.spis_agree = (ca.spi_in, ca.spi_out) == (cb.spi_out, cb.spi_in)
            assert c.spis_agree
            assert ca.mode == "TUNNEL-in-UDP"
            charon_keys = pa.esp_keys()
            keymats = pb.keymats()
            # (the message, read from both logs, is built only when an assertion fails)
            assert set(keymats) == {ca.spi_in, ca.spi_out}, _key_lines(pa, pb, keymats,
                                                                       charon_keys, ca, cb)
            c.keys_agree = all(km == charon_keys[spi].enc + charon_keys[spi].integ
                               for spi, km in keymats.items())
            assert c.keys_agree, _key_lines(pa, pb, keymats, charon_keys, ca, cb)
            enc_len = len(next(iter(charon_keys.values())).enc) // 2
            assert pb.esp_keys(enc_len=enc_len) == charon_keys
            assert pa.keylog().children[0].we_initiated_qm == (initiator == "charon")
            if rsa:
                pa.wait_log(r"authentication of 'b\.ki\.test' with RSA_EMSA_PKCS1_NULL "
                            "successful", 1)
            # the keys pluto handed the (faked) kernel are the ones it logged
            assert pb.installed_keys() == charon_keys
            c.note = "pluto carries no ESP (fakesa)"
    finally:
        pa.stop()
        pb.stop()


def _key_lines(pa: charon.CharonPeer, pb: pluto.PlutoPeer, keymats: dict[str, str],
               charon_keys: dict[str, EspKeys], ca: ChildSaInfo, cb: ChildSaInfo) -> str:
    """What a key mismatch is judged by: both sides' keys by SPI as compared, the SPIs each
    side reports, and the log lines the keys were read from (a string: pytest cuts a tuple's
    repr in the middle, where the difference is)."""
    plog = parse_pluto_log(pb.log_path.read_text(errors="replace"))
    clines = charon_child_key_lines(pa.log_path.read_text(errors="replace"))
    return (f"pluto KEYMAT by SPI {keymats}\ncharon keys by SPI {charon_keys}\n"
            f"charon's child: in {ca.spi_in} out {ca.spi_out}; pluto's: in {cb.spi_in} "
            f"out {cb.spi_out}\n--- charon's child key lines\n"
            + "".join(line[:200] + "\n" for line in clines)
            + "--- pluto's KEYMAT lines, per computation\n"
            + "".join(line[:200] + "\n" for k in plog for line in [f"[{k.spi}]", *k.lines]))

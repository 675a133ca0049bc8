"""{Main, Aggressive} x {PSK, RSA signature} x {PFS, no PFS} x three suites, in memory."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from ike.events import Phase1Done, Phase2Done

SUITES = {
    "aes128-sha1-modp2048": ("AES-128-SHA-GRP14", "QM-ESP-AES-128-SHA{pfs}-SUITE", "-GRP14"),
    "aes256-sha256-ecp256": ("AES-256-SHA2-256-GRP19", "QM-ESP-AES-256-SHA2-256{pfs}-SUITE",
                             "-GRP19"),
    "3des-md5-modp1024": ("3DES-MD5", "QM-ESP-3DES-MD5{pfs}-SUITE", ""),
}


@pytest.mark.parametrize(("mode", "auth", "pfs", "suite"), list(itertools.product(
    ["ID_PROT", "AGGRESSIVE"], ["psk", "rsa"], [False, True], sorted(SUITES))))
def test_matrix(h: Any, mode: str, auth: str, pfs: bool, suite: str) -> None:
    p1, qm, grp = SUITES[suite]
    if auth == "rsa":
        p1 += "-RSA_SIG"
    qm = qm.format(pfs=f"-PFS{grp}" if pfs else "")
    conf_a = h.make_conf("a", mode=mode, p1=p1, suites=qm)
    conf_b = h.make_conf("b", mode=mode, p1=p1, suites=qm)
    if auth == "rsa":
        auth_a, auth_b = h.rsa_auth_pair()
        pair = h.make_pair(conf_a, conf_b, use_keynote=False)
        pair.a.auth, pair.b.auth = auth_a, auth_b
    else:
        pair = h.make_pair(conf_a, conf_b, use_keynote=False)
    pair.a.start(pair.now)
    pair.flush()
    ev_a, ev_b = pair.events("a"), pair.events("b")
    assert [type(e) for e in ev_a] == [Phase1Done, Phase2Done], ev_a
    assert [type(e) for e in ev_b] == [Phase1Done, Phase2Done], ev_b
    assert ev_a[0].exchange == ("main" if mode == "ID_PROT" else "aggressive")
    [sa_a], [sa_b] = pair.a.sas.isakmp.values(), pair.b.sas.isakmp.values()
    assert sa_a.keys.skeyid_d == sa_b.keys.skeyid_d
    assert sa_a.keys.enc_key == sa_b.keys.enc_key
    [ip_a], [ip_b] = pair.a.sas.ipsec, pair.b.sas.ipsec
    pa, pb = ip_a.protocols[0], ip_b.protocols[0]
    assert (pa.enc_in, pa.auth_in, pa.enc_out, pa.auth_out) == (
        pb.enc_out, pb.auth_out, pb.enc_in, pb.auth_in)
    assert any(t == 3 for t, _v in pa.choice.attributes) == pfs
    expected_exchanges = 6 if mode == "ID_PROT" else 3
    phase1_type = 2 if mode == "ID_PROT" else 4
    assert [d[18] for _s, d in pair.wire] == [phase1_type] * expected_exchanges + [32] * 3

"""SA lifecycle in real daemon processes: the ISAKMP SA of an active connection renegotiated
before it expires (old one deleted, Phase 2 kept), FIFO ``d`` on one Phase 2 SA, and the
policy names in the ``r`` report's exchange lines."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

SHORT_LIFE = """
[P1-short]
ENCRYPTION_ALGORITHM=\tAES_CBC
KEY_LENGTH=\t\t128
HASH_ALGORITHM=\t\tSHA
AUTHENTICATION_METHOD=\tPRE_SHARED
GROUP_DESCRIPTION=\tMODP_2048
Life=\t\t\tLife-short
[Life-short]
LIFE_TYPE=\t\tSECONDS
LIFE_DURATION=\t\t8,4:60
"""


def _short_phase1(proc: Any) -> None:
    conf = proc.dir / "isakmpd.conf"
    text = conf.read_text().replace("Transforms=\t\tAES-128-SHA-GRP14", "Transforms=\t\tP1-short")
    conf.write_text(text + SHORT_LIFE)


def _phase1_cookies(sas: str) -> list[str]:
    return [a + b for a, b in re.findall(r"icookie (\w+) rcookie (\w+)", sas)]


def test_active_phase1_renegotiated_before_expiry(
    wait: Callable[..., bool], make_pair: Callable[..., Any]
) -> None:
    pair = make_pair(east_args=("-D", "6=30"), west_args=("-D", "6=30"))
    for proc in (pair.east, pair.west):
        _short_phase1(proc)
    pair.negotiate()
    east, west = pair.east, pair.west
    [first] = _phase1_cookies(east.sas())
    east.wait_log(r"renegotiating ISAKMP SA " + first, timeout=15)
    west.wait_log(r"isakmp SA ISAKMP-peer-east deleted: peer DELETE")
    east.wait_log(r"isakmp SA ISAKMP-peer-west deleted: replaced by rekey")

    def one_new_phase1() -> bool:
        cookies = _phase1_cookies(east.sas())
        return len(cookies) == 1 and cookies[0] != first

    assert wait(one_new_phase1)
    assert _phase1_cookies(west.sas()) == _phase1_cookies(east.sas())
    # the Phase 2 SAs did not move
    assert east.sas().count("(Phase 2)") == 1 and west.sas().count("(Phase 2)") == 1
    assert "phase 2 done" not in east.log().split("renegotiating ISAKMP SA")[1]


def test_d_deletes_one_phase2_sa_and_report_names_policies(
    wait: Callable[..., bool], make_pair: Callable[..., Any]
) -> None:
    pair = make_pair(west_args=("-D", "6=30"))
    pair.negotiate()
    east, west = pair.east, pair.west
    # east's ISAKMP SA carried its active connection: READY | STAYALIVE; west's is passive
    assert re.search(r"\(Phase 1/Initiator\)\n(?:.*\n)*?Flags 0x00000003\n", east.sas())
    assert re.search(r"\(Phase 1/Responder\)\n(?:.*\n)*?Flags 0x00000001\n", west.sas())
    east.command("r")
    # the finished exchanges linger (to answer retransmissions) and show their policies
    east.wait_log(r"Report> exchange_report: 0x[0-9a-f]+ ISAKMP-peer-west Default-main-mode "
                  r"policy initiator phase 1 doi 1 exchange 2 ")
    east.wait_log(r"Report> exchange_report: 0x[0-9a-f]+ IPsec-east-west Default-quick-mode "
                  r"policy initiator phase 2 doi 1 exchange 32 ")
    east.wait_log(r"Report> exchange_report: msgid [0-9a-f]{8} sa_list 0x[0-9a-f]+ \n")
    report = east.dir / "isakmpd.report"  # the man page: `r` reports to the -R file too
    assert wait(report.exists)
    assert re.search(r"(?m)^\d{6}\.\d{6} Report> exchange_report: 0x[0-9a-f]+ ISAKMP-peer-west ",
                     report.read_text())
    west.command("r")
    west.wait_log(r"Report> exchange_report: 0x[0-9a-f]+ ISAKMP-peer-east Default-main-mode "
                  r"policy responder phase 1 ")
    west.wait_log(r"Report> exchange_report: 0x[0-9a-f]+ IPsec-west-east <no policy> "
                  r"policy responder phase 2 ")
    m = east.wait_log(r"sa_report: 0x[0-9a-f]+ IPsec-east-west phase 2 .*\n.*"
                      r"icookie (\w+) rcookie (\w+)\n.*msgid (\w+) ")
    cookies, msgid = m.group(1) + m.group(2), m.group(3)
    east.command(f"d {cookies} 00000000")
    east.wait_log(rf'ui_delete: command "d {cookies} 00000000" found no SA')
    east.command(f"d {cookies} {msgid}")
    west.wait_log(r"ipsec SA IPsec-west-east deleted: peer DELETE")
    assert wait(lambda: "(Phase 2)" not in east.sas())
    # only that SA: the ISAKMP SA stays on both sides, and the connection comes back
    assert "(Phase 1/Initiator)" in east.sas() and "(Phase 1/Responder)" in west.sas()
    east.command("c IPsec-east-west")
    assert wait(lambda: "(Phase 2)" in east.sas())


def test_passive_mode_initiates_nothing(
    wait: Callable[..., bool], make_pair: Callable[..., Any]
) -> None:
    pair = make_pair(east_args=("-S", "-D", "6=30"))
    for proc in (pair.east, pair.west):
        _short_phase1(proc)
    east, west = pair.east, pair.west
    west.start()
    east.start()
    east.command("c IPsec-east-west")  # -S: the connection checker does nothing
    assert "Phase" not in east.sas()
    east.command("M active")
    east.command("c IPsec-east-west")
    east.wait_log(r"phase 2 done")
    east.command("M passive")
    # the ISAKMP SA reaches its soft and hard limits (8 s) with no successor
    # (both limits fall together: east's own expiry or west's DELETE removes it)
    east.wait_log(r"isakmp SA ISAKMP-peer-west deleted: (expired|peer DELETE)", timeout=15)
    assert "renegotiating ISAKMP SA" not in east.log()
    assert "(Phase 1" not in east.sas() and "(Phase 2)" in east.sas()

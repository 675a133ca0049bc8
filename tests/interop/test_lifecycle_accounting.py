"""The rekey cell's accounting of lost pings (harness/lifecycle.py), on recorded output.

The cell allows a lost ping only when it is exactly one of the packets libreswan 4.10 sends on
its new outbound SA before its Quick Mode message 2 reaches us; these tests pin that every other
loss still fails the cell.  The log lines are pluto's own, from a UML run of the cell.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness.lifecycle import _early_drops, _lost_pings, _pluto_sent_before_message_2

ADD_OUT = ("Nov 28 11:49:17.715216: | kernel: add_sa() level=0 outbound tunnel "
           "10.77.0.201/32-ALL->10.77.0.1[9036cef3]==>10.77.0.2-ALL->10.77.0.202/32 "
           "replay_window=128 HMAC_SHA1_96:20 AES_CBC:16")
ADD_IN = ("Nov 28 11:49:17.716045: | kernel: add_sa() level=0 inbound tunnel "
          "10.77.0.202/32-ALL->10.77.0.2[dd6a93cd]==>10.77.0.1-ALL->10.77.0.201/32 "
          "replay_window=128 HMAC_SHA1_96:20 AES_CBC:16")
SENT = ('Nov 28 11:49:17.722229: "ki" #3: sent Quick Mode reply, inbound IPsec SA installed, '
        "expecting confirmation tunnel mode {ESP=>0x9036cef3 <0xdd6a93cd "
        "xfrm=AES_CBC_128-HMAC_SHA1_96 DPD=passive}")
PLUTO_LOG = "\n".join([ADD_OUT, ADD_IN, SENT])


def ping_output(replies: list[int], sent: int) -> str:
    lines = [f"64 bytes from 10.77.0.202: icmp_seq={n} ttl=64 time=0.1 ms" for n in replies]
    lines.append(f"{sent} packets transmitted, {len(replies)} received, 0% packet loss")
    return "\n".join(lines)


def test_lost_pings_are_the_unanswered_requests_but_the_last() -> None:
    assert _lost_pings(ping_output([1, 2, 3], 3)) == set()
    assert _lost_pings(ping_output([1, 2], 3)) == set()  # the last one may still be on its way
    assert _lost_pings(ping_output([1, 3, 4], 4)) == {2}
    assert _lost_pings(ping_output([2, 3, 5], 6)) == {1, 4}
    assert _lost_pings("ping: connect: Network is unreachable") is None
    assert _lost_pings("3 packets transmitted, 0 received") is None


def test_pluto_log_order_is_read_for_the_spi_in_question() -> None:
    assert _pluto_sent_before_message_2(PLUTO_LOG, "9036cef3")
    # the SA went in after the reply left: a loss then would be ours
    assert not _pluto_sent_before_message_2("\n".join([SENT, ADD_OUT]), "9036cef3")
    # another SPI, or only the inbound SA's line
    assert not _pluto_sent_before_message_2(PLUTO_LOG, "167fe108")
    assert not _pluto_sent_before_message_2("\n".join([ADD_IN, SENT]), "dd6a93cd")
    assert not _pluto_sent_before_message_2("", "9036cef3")


def test_only_larval_drops_matching_the_lost_pings_are_excused() -> None:
    before = {"XfrmInNoStates": 2, "XfrmAcquireError": 3, "XfrmOutNoStates": 0}
    acq = {**before, "XfrmAcquireError": 4}
    assert _early_drops({7}, before, acq, PLUTO_LOG, "9036cef3")
    # nothing lost: nothing to excuse (the cell passes on its own)
    assert not _early_drops(set(), before, before, PLUTO_LOG, "9036cef3")
    # two pings lost, one larval drop: the other loss is unexplained
    assert not _early_drops({7, 8}, before, acq, PLUTO_LOG, "9036cef3")
    # a drop of another kind besides (an SPI not there at all, our outbound missing)
    assert not _early_drops({7}, before, {**acq, "XfrmInNoStates": 3}, PLUTO_LOG, "9036cef3")
    assert not _early_drops({7}, before, {**acq, "XfrmOutNoStates": 1}, PLUTO_LOG, "9036cef3")
    # no larval drop at all
    assert not _early_drops({7}, before, before, PLUTO_LOG, "9036cef3")
    # the peer's log does not show it sent before its message 2
    assert not _early_drops({7}, before, acq, "\n".join([SENT, ADD_OUT]), "9036cef3")

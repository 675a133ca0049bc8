"""How the harness tells each peer to rekey early (Connection.rekey_margin), checked on the
configuration text alone: the peer-rekey lifecycle cells depend on these spellings, and a
misspelt keyword would only show up as a UML cell where the peer never rekeys."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness.charon import CharonPeer
from harness.model import Connection
from harness.netns import Namespace
from harness.pluto import PlutoPeer

NS = Namespace("prtest", "10.77.0.1", "10.77.0.201")
CONN = Connection("ki", "10.77.0.1", "10.77.0.2", "10.77.0.1", "10.77.0.2",
                  local_ts="10.77.0.201/32", remote_ts="10.77.0.202/32", ipsec_lifetime=20)


def _child(conf: str) -> list[str]:
    """The lines of swanctl.conf's child section that set its lifetimes."""
    return [line.strip() for line in conf.splitlines()
            if line.strip().split(" ")[0] in ("rekey_time", "life_time", "rand_time")
            and line.startswith("                ")]


def test_pluto_margin_and_small_fuzz() -> None:
    """pluto: lifetime, margin and a 25 % fuzz (its default 100 % would double the spread)."""
    text = PlutoPeer("lsb", NS, Path("/nonexistent"), [replace(CONN, rekey_margin=5)],
                     fake_sa=False).ipsec_conf()
    assert "    salifetime=20s\n" in text
    assert "    rekeymargin=5s\n" in text
    assert "    rekeyfuzz=25%\n" in text


def test_pluto_default_keeps_its_own_margin() -> None:
    """Without a margin, pluto's defaults stay (the other cells rely on them)."""
    text = PlutoPeer("lsb", NS, Path("/nonexistent"), [CONN], fake_sa=False).ipsec_conf()
    assert "rekeymargin" not in text and "rekeyfuzz" not in text


def test_charon_child_rekeys_margin_before_its_life() -> None:
    """charon: the child lives ``ipsec_lifetime`` and rekeys ``rekey_margin`` before that,
    up to a quarter of the margin (at least 1 s) earlier."""
    conf = CharonPeer("swa", NS, Path("/nonexistent"),
                      [replace(CONN, rekey_margin=5)]).swanctl_conf()
    assert _child(conf) == ["rekey_time = 15s", "life_time = 20s", "rand_time = 1s"]


def test_charon_default_rekeys_at_the_lifetime() -> None:
    """Without a margin the child rekeys at ``ipsec_lifetime`` as before."""
    conf = CharonPeer("swa", NS, Path("/nonexistent"), [CONN]).swanctl_conf()
    assert _child(conf) == ["rekey_time = 20s"]

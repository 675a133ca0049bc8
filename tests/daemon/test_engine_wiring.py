"""What the runtime hands the engine: -N, -T, the local UTC offset, the active connections."""

from __future__ import annotations

import time
from pathlib import Path

from ike.conf import Conf
from ike.daemon.log import DebugLevels
from ike.daemon.options import parse_args
from ike.daemon.runtime import Daemon, DirectFiles, local_utc_offset
from ike.kernel.none import NoneKernel

CONF = "[Phase 2]\nConnections=\tconn-a\n"


def _daemon(tmp_path: Path, *args: str) -> Daemon:
    options = parse_args(["-d", "-n", "-K", "--run-dir", str(tmp_path), *args])
    return Daemon(options, Conf.from_text(CONF), DirectFiles(), NoneKernel(), DebugLevels())


def test_natt_options_reach_the_engine(tmp_path: Path) -> None:
    d = _daemon(tmp_path, "-N", "4600")
    assert d.engine.natt_port == 4600 and d.engine.nat_traversal
    assert not _daemon(tmp_path, "-T").engine.nat_traversal


def test_policy_time_of_day_is_local(tmp_path: Path) -> None:
    d = _daemon(tmp_path)
    assert d.engine.utc_offset == time.localtime().tm_gmtoff == local_utc_offset()


def test_fifo_c_connections_are_active_for_the_engine(tmp_path: Path) -> None:
    d = _daemon(tmp_path)
    assert not d.engine.is_active("conn-b")
    d.active = ["conn-b"]
    assert d.engine.is_active("conn-b")
    assert d.engine.is_active("conn-a")  # configured ones always are


def test_passive_mode_reaches_the_engine(tmp_path: Path) -> None:
    from ike.daemon import control, fifo

    assert _daemon(tmp_path, "-S").engine.passive
    d = _daemon(tmp_path)
    modes = []
    for passive in (True, False):
        control.handle(d, fifo.Mode(passive))
        modes.append((d.passive_mode, d.engine.passive))
    assert modes == [(True, True), (False, False)]

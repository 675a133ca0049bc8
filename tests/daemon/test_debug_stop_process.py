"""``-dd`` as isakmpd does it: both processes stop (SIGSTOP) right after the split for a
debugger, SIGCONT to the parent resumes both; SIGINT is then not a clean shutdown."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _stopped(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


def test_dd_stops_both_processes_until_sigcont(
    wait: Callable[..., bool], make_pair: Callable[..., Any]
) -> None:
    pair = make_pair()
    west = pair.west
    west.extra = ["-d", "-K"]  # with the harness's own -d: -dd
    west.start()
    priv = int(west.wait_log(r"monitor_init: stopped priv PID (\d+) fd \d+, waiting for "
                             r"SIGCONT").group(1))
    child = int(west.wait_log(r"monitor_init: stopped child PID (\d+) fd \d+").group(1))
    assert priv == west.pid() and child == west.child_pid()
    assert wait(lambda: _stopped(priv) and _stopped(child))
    os.kill(priv, signal.SIGCONT)  # the parent goes on and continues the child
    assert wait(lambda: not _stopped(priv) and not _stopped(child))
    assert "Phase" not in west.sas()  # the child serves the FIFO
    # with -dd, SIGINT keeps its default action: the child dies at once, no clean shutdown
    os.kill(child, signal.SIGINT)
    assert west.proc is not None
    assert west.proc.wait(timeout=15) == 128 + signal.SIGINT  # the monitor reports how
    assert "shutting down" not in west.log()
    assert not west.fifo.exists()  # the monitor still removes its files

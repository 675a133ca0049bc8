"""The result file of ``S`` and ``C get`` appears whole: a script (or a test) that waits for it
after writing the FIFO command reads the answer, never an empty file.  The daemon used to open
it with truncation and write afterwards; at a load of 15 one answer in a hundred was still empty
50 ms after the file appeared, and most were when read at once."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any


def test_result_appears_complete(make_pair: Callable[..., Any]) -> None:
    daemon = make_pair().east
    daemon.start()
    expected = daemon.query("C get [General]:Retransmits")
    assert expected.strip().isdigit()
    seen = []
    for _ in range(40):
        daemon.result.unlink()
        daemon.command("C get [General]:Retransmits")
        deadline = time.monotonic() + 30
        while not daemon.result.exists():
            assert time.monotonic() < deadline, daemon.log()
            time.sleep(0.001)
        seen.append(daemon.result.read_text())  # at once: no settling pause
    assert seen == [expected] * 40
    assert not [n for n in os.listdir(daemon.dir) if n.endswith(".tmp")]

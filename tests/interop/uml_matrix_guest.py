"""The matrix cells that need a kernel with ESP, run inside User-Mode Linux (as root, by
tests/interop/test_matrix_uml.py through tests/kernel/uml.py).

    python uml_matrix_guest.py CASES-JSON

CASES-JSON is a JSON list of harness.cells.Case fields.  One plain topology is made; for each case
our daemon (XFRM backend, real SAs) and the peer (charon kernel-netlink, pluto without the
fakesa shim, or our daemon again) negotiate, then a ping crosses the tunnel; the lifecycle cases of
harness.lifecycle (a rekey by either side with a ping stream across it) run the same way.
Prints one JSON object per line: the CellResult of each case ("where": "uml"), failures
included.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import matrix
from harness import netns
from harness.cells import Case, key_lines, run_cell
from harness.certs import make_pki
from harness.lifecycle import (
    PEER_REKEY_CASES,
    REKEY_CASES,
    run_peer_rekey_cell,
    run_rekey_cell,
)
from harness.netns import HarnessError


def _evidence(workdir: Path) -> str:
    """Where a failed cell raised, and of every log of the cell's daemons (ours, and the
    peer's: pluto.log, charon.log) the lines that say why an SA came or went, then its last
    lines: what CI needs to tell a bug from a slow machine; the guest's files vanish with it
    (pluto's tail is debug noise: a conn its late start-up addconn re-added under a cell showed
    only in the key lines)."""
    parts = [traceback.format_exc(limit=-3)]
    for log in sorted(workdir.rglob("*.log")):
        text = log.read_text(errors="replace")
        tail = text.splitlines()[-25:]
        parts.append(f"--- {log.relative_to(workdir)}\n{key_lines(text, 40)}--- its tail\n"
                     + "\n".join(line[:300] for line in tail))
    return "\n".join(parts)


def main() -> int:
    """Run every case, print the results."""
    cases = [Case(**c) for c in json.loads(sys.argv[1])]
    base = Path(tempfile.mkdtemp(prefix="ki-uml-"))
    pki = make_pki(base / "pki", {"a": [f"{netns.NET}.1"], "b": [f"{netns.NET}.2"]})
    results: list[matrix.CellResult] = []
    with netns.topology("plain") as topo:
        for n, case in enumerate(cases):
            start = time.monotonic()
            try:
                if case in REKEY_CASES:
                    run_rekey_cell(case, topo, base / f"cell{n}", results.append)
                elif case in PEER_REKEY_CASES:
                    run_peer_rekey_cell(case, topo, base / f"cell{n}", results.append)
                else:
                    run_cell(case, topo, base / f"cell{n}", pki, results.append, where="uml")
            except (AssertionError, HarnessError, OSError, ValueError) as e:
                print(f"{case.id}: {e}"[:6000], file=sys.stderr)
                print(_evidence(base / f"cell{n}"), file=sys.stderr)
            print(f"{case.id}: {time.monotonic() - start:.1f} s", file=sys.stderr)
    for r in results:
        print(json.dumps(asdict(r), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The interoperability matrix inside User-Mode Linux: real kernel ESP on both sides, so each
cell also carries a ping through the tunnel (ESP counters checked on both sides).

One boot runs every cell (tests/interop/uml_matrix_guest.py); each test judges one cell and
records it for docs/interop.md.  Needs root, the Debian package user-mode-linux, and libreswan
(fetched into the cache on the host first, since the guest sees the host's files read-only).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "kernel"))
import matrix  # noqa: E402  (modules beside the tests, not in a package)
import uml  # noqa: E402  (tests/kernel/uml.py boots the guest)
from harness import charon, pluto  # noqa: E402
from harness.cells import (  # noqa: E402
    CHARON_LIBIPSEC,
    CHARON_NETLINK,
    PLUTO,
    SELF_CASES,
    Case,
    matrix_cases,
)
from harness.lifecycle import PEER_REKEY_CASES, REKEY_CASES  # noqa: E402

pytestmark = [pytest.mark.interop, pytest.mark.uml, pytest.mark.root, pytest.mark.slow]

# A sample (both peers, both roles, tunnel, transport, GCM, PFS) that stays within the test
# budget (~10 s per cell in UML); KI_UML_FULL=1 runs every cell of the matrix that needs no NAT
# (38 cells, about 5 minutes) and our daemon against itself (SELF_CASES, 10 cells).
SAMPLE = [Case(CHARON_NETLINK, "initiator", suite="aes128gcm16"),
          Case(CHARON_NETLINK, "responder", phase2="transport"),
          Case(PLUTO, "initiator"), Case(PLUTO, "responder", phase2="tunnel+pfs",
                                                   suite="aes256-sha256-modp3072")]
# The lifecycle's rekey cells (harness/lifecycle.py, ~20-30 s each: ours rekeys, the peer
# rekeys) run in both.  KI_UML_ONLY=a,b (substrings of test ids, e.g. "peer rekeys") keeps only
# the matching cells: one boot for the cells under work.
CASES = ([c for c in matrix_cases() if c.peer != CHARON_LIBIPSEC] + SELF_CASES
         if os.environ.get("KI_UML_FULL") == "1" else SAMPLE) + REKEY_CASES + PEER_REKEY_CASES
if os.environ.get("KI_UML_ONLY"):
    CASES = [c for c in CASES
             if any(part in c.id for part in os.environ["KI_UML_ONLY"].split(","))]
#: the boot runs every cell (~7-15 s each in UML, ~20 s on a loaded machine) in the first
#: test's setup
BOOT_TIMEOUT = 90 + 40 * len(CASES)  # generous: a loaded machine doubles the time
pytestmark.append(pytest.mark.timeout(BOOT_TIMEOUT + 60))


def _boot_once(shared: Path) -> dict[str, Any]:
    """Boot UML once per run even with several xdist workers (the first boots, the others
    wait on the lock and read its results)."""
    path = shared / "ki-uml-matrix.json"
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            result: dict[str, Any] = json.loads(path.read_text())
            return result
        # the cases travel on the command line: the guest's /tmp is its own tmpfs
        cases = json.dumps([dataclasses.asdict(c) for c in CASES])
        res = uml.run_in_uml([sys.executable, str(HERE / "uml_matrix_guest.py"), cases],
                             timeout=BOOT_TIMEOUT, mem="512M",
                             modules=[*uml.IPSEC_MODULES, "overlay"],
                             cwd=str(HERE.parent.parent))
        result = {"rc": res.rc, "stdout": res.stdout, "stderr": res.stderr,
                  "console": res.console[-3000:], "wall": res.wall_seconds}
        path.write_text(json.dumps(result))
        return result


@pytest.fixture(scope="module")
def uml_results(tmp_path_factory: pytest.TempPathFactory, libreswan: Path) -> dict[str, Any]:
    """The guest's results by case id."""
    why = uml.available() or charon.available() or pluto.available()
    if why:
        pytest.skip(why)
    base = tmp_path_factory.getbasetemp()
    res = _boot_once(base.parent if "PYTEST_XDIST_WORKER" in os.environ else base)
    assert res["rc"] == 0, f"rc {res['rc']}\n{res['stderr'][-3000:]}\n{res['console']}"
    out: dict[str, Any] = {"_stderr": res["stderr"], "_wall": res["wall"]}
    for line in res["stdout"].splitlines():
        r = matrix.CellResult.from_json(json.loads(line))
        out[Case(r.peer, r.role, r.phase1, r.phase2, r.suite).id] = r
    return out


def _guest_said(stderr: str, case_id: str) -> str:
    """What the guest printed about one cell: the failure, the tails of both daemons' logs and
    its time, so that a failed cell in CI can be understood from the test's output alone."""
    said: list[str] = []
    for line in stderr.splitlines():
        if said or line.startswith(case_id + ": "):
            said.append(line)
            if re.fullmatch(re.escape(case_id) + r": [\d.]+ s", line):
                break
    return "\n".join(said)[-20000:]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_uml_cell(case: Case, uml_results: dict[str, Any], record_cell: matrix.Sink) -> None:
    """The cell ran in the guest: SPIs and keys agree and a ping crossed ESP."""
    r = uml_results.get(case.id)
    assert isinstance(r, matrix.CellResult), (case.id, uml_results["_stderr"][-3000:])
    record_cell(r)
    # a string message: pytest prints it whole (a tuple would be cut to one line)
    assert r.outcome == "pass", f"{r}\n{_guest_said(uml_results['_stderr'], case.id)}"
    assert r.spis_agree and r.keys_agree and r.ping, r

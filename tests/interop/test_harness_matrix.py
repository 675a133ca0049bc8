"""The matrix report: records in, Markdown out (no daemon, no root)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import matrix


def test_cell_records_pass_and_fail(tmp_path: Path) -> None:
    got: list[matrix.CellResult] = []
    with matrix.cell(got.append, peer="libreswan 4.10", role="initiator", phase1="main-psk",
                     phase2="tunnel", suite="aes128-sha1-modp2048") as c:
        c.spis_agree = c.keys_agree = True
    with pytest.raises(AssertionError), matrix.cell(
            got.append, peer="libreswan 4.10", role="responder", phase1="main-rsa",
            phase2="transport", suite="3des-sha1-modp1024", where="uml") as c:
        c.spis_agree = True
        raise AssertionError("keys differ\nlong detail")
    assert [r.outcome for r in got] == ["pass", "fail"]
    assert got[1].note == "keys differ" and got[1].keys_agree is None
    path = tmp_path / "r.jsonl"
    for r in got:
        matrix.record(r, path)
    assert matrix.load(path) == got


def test_render_table(tmp_path: Path) -> None:
    rows = [matrix.CellResult("strongSwan 5.9", "responder", "main-rsa", "tunnel",
                              "aes128-sha1-modp2048", "pass", True, True, True, "uml"),
            matrix.CellResult("strongSwan 5.9", "initiator", "main-psk", "tunnel|pfs",
                              "aes128-sha1-modp2048", "fail", True, False, None),
            matrix.CellResult("strongSwan 5.9", "initiator", "main-psk", "tunnel",
                              "x", "pass", under_test="libreswan 4.10")]
    text = matrix.render(rows, "2026-11-28 05:00 UTC", "Environment: test.")
    assert "interop test run of 2026-11-28 05:00 UTC" in text
    lines = [ln for ln in text.splitlines() if ln.startswith("| strongSwan")]
    # host rows sort before uml rows; "|" inside a cell is escaped; failures stand out
    assert lines[0] == ("| strongSwan 5.9 | host | initiator | main-psk | tunnel\\|pfs | "
                        "aes128-sha1-modp2048 | **fail** | yes | **no** | — |  |")
    assert lines[1].startswith("| strongSwan 5.9 | uml | responder | main-rsa |")
    assert "Totals: fail 1, pass 1" in text
    assert "| libreswan 4.10 | strongSwan 5.9 | host |" in text


def test_cli_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "r.jsonl"
    good = {"peer": "p", "role": "initiator", "phase1": "main-psk", "phase2": "tunnel",
            "suite": "s", "outcome": "pass"}
    results.write_text(json.dumps(good) + "\n\n" + json.dumps({**good, "typo": 1}) + "\n")
    out = tmp_path / "docs" / "interop.md"
    assert matrix.main([str(results), "-o", str(out), "--date", "D"]) == 1
    assert f"{results}:3: unknown result fields ['typo']" in capsys.readouterr().err
    results.write_text(json.dumps(good) + "\n")
    assert matrix.main([str(results), "-o", str(out), "--date", "D"]) == 0
    assert "| p | host | initiator | main-psk | tunnel | s | pass |" in out.read_text()


def test_every_peer_implements_the_daemon_base() -> None:
    """Each peer class supplies log_path/launch/ready (DaemonBase's abstract members), so none
    can be instantiated half-done; a class missing one stays abstract."""
    import abc

    from harness.cells import PEER_KINDS
    from harness.model import DaemonBase

    assert {k.__name__ for k in PEER_KINDS} == {"CharonPeer", "PlutoPeer", "IsakmpdPeer"}
    for kind in PEER_KINDS:
        assert issubclass(kind, DaemonBase)
        assert not getattr(kind, "__abstractmethods__", frozenset()), kind
    assert DaemonBase.__abstractmethods__ == {"log_path", "launch", "ready"}

    class Partial(DaemonBase):
        def launch(self) -> None:
            """Only one of the three."""

    assert isinstance(Partial, abc.ABCMeta)
    with pytest.raises(TypeError, match="abstract"):
        Partial()  # type: ignore[abstract]

"""The pid file appears whole: a reader that sees it exist reads the full pid (a daemon that
opened it and then wrote left a moment in which it existed empty; a test read "" there once,
under load)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ike.daemon import cli


def test_pid_file_is_never_seen_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "isakmpd.pid"
    seen: list[tuple[bool, str]] = []
    real_replace = os.replace

    def replace(src: str, dst: str) -> None:
        # the moment before the pid file appears (or changes): what would a reader see?
        seen.append((Path(dst).exists(), Path(src).read_text()))
        real_replace(src, dst)

    monkeypatch.setattr(cli.os, "replace", replace)
    cli.write_pid_file(str(path), 4242)
    assert seen == [(False, "4242\n")]  # absent until it is complete
    assert path.read_text() == "4242\n"
    cli.write_pid_file(str(path), 4343)  # a stale file is swapped, never truncated first
    assert seen[1] == (True, "4343\n")
    assert path.read_text() == "4343\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["isakmpd.pid"]


def test_unwritable_pid_file_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "dir-in-the-way"
    target.mkdir()
    (target / "x").write_text("")  # a non-empty directory cannot be replaced by a file
    with pytest.raises(OSError):
        cli.write_pid_file(str(target), 4242)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir-in-the-way"]

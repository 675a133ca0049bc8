"""XAUTH secrets in the daemon: the conf report hides passwords, and the password file is a
credential source of the XAUTH server."""

from __future__ import annotations

from pathlib import Path

from ike.conf import Conf
from ike.daemon.report import conf_report_lines
from ike.engine import Engine
from ike.exchange.transaction import check_password
from ike.sa import IsakmpSA

CONF = """
[peer]
XAUTH-Users=        users
XAUTH-Password=     hunter2
[users]
alice=              wonderland
[file-peer]
XAUTH-Password-File= {path}
"""


def test_conf_report_hides_xauth_passwords(tmp_path: Path) -> None:
    conf = Conf.from_text(CONF.format(path=tmp_path / "pw"))
    text = "\n".join(conf_report_lines(conf))
    assert "wonderland" not in text and "hunter2" not in text
    assert "alice=\t<secret>" in text and "XAUTH-Password=\t<secret>" in text


def test_password_file_checks_users(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("# user:password\nalice:wonderland\nbob:builder:with:colons\n")
    engine = Engine(Conf.from_text(CONF.format(path=path)))
    sa = IsakmpSA("file-peer", False, bytes(8), ("10.0.0.2", 500), ("10.0.0.1", 500))
    def read(p: str) -> str:
        return Path(p).read_text()

    assert check_password(engine, sa, "alice", b"wonderland", read)
    assert check_password(engine, sa, "bob", b"builder:with:colons", read)
    assert not check_password(engine, sa, "alice", b"guess", read)
    assert not check_password(engine, sa, "# user", b"password", read)
    assert not check_password(engine, sa, "alice", b"wonderland")  # no reader: no file

    def broken(p: str) -> str:
        raise OSError("gone")

    assert not check_password(engine, sa, "alice", b"wonderland", broken)

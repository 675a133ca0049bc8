"""Options as a running daemon honours them: -4/-6, -f -, -i, -R, -l, -K, -S, -a, -N, -P,
running without -d, and the split without root."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CODE = "import sys; from ike.daemon.cli import main; sys.exit(main())"


@pytest.fixture
def rundir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kd-opt-"))
    path.chmod(0o755)
    conf = path / "isakmpd.conf"
    conf.write_text("[General]\nListen-on=127.0.0.1,::1\n")
    conf.chmod(0o600)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _spawn(args: list[str], log: Path, **kw: Any) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-c", CODE, *args], stdout=out,
                                stderr=subprocess.STDOUT, **kw)  # fmt: skip


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def test_many_options_and_stdin_fifo(
    wait: Callable[..., bool], rundir: Path, make_pair: Callable[..., Any]
) -> None:
    ports = [p for p in (make_pair().east.port, make_pair().west.port)]
    natt = ports[1] + 1 if ports[1] < 60000 else ports[1] - 1
    log = rundir / "log"
    args = ["-d", "-n", "-4", "-K", "-S", "-a", "-v", "-c", str(rundir / "isakmpd.conf"),
            "-p", str(ports[0]), "-P", str(ports[1]), "-N", str(natt),
            "-f", "-", "-i", str(rundir / "my.pid"), "-R", str(rundir / "my.report"),
            "-l", str(rundir / "my.pcap"), "--run-dir", str(rundir)]  # fmt: skip
    proc = _spawn(args, log, stdin=subprocess.PIPE)
    try:
        assert wait(lambda: (rundir / "my.pid").exists()), log.read_text()
        assert wait(lambda: (rundir / "my.pcap").exists()), log.read_text()
        assert not (rundir / "isakmpd.fifo").exists()
        assert proc.stdin is not None
        proc.stdin.write(b"r\n")
        proc.stdin.flush()
        assert wait(lambda: "conf_report" in log.read_text()), log.read_text()
        text = log.read_text()
        bound = re.findall(r"udp_report: fd \d+ src ([^ ]+):(\d+)", text)
        assert sorted(bound) == sorted(("127.0.0.1", str(p)) for p in (ports[0], ports[1], natt)), (
            text
        )  # -4: no ::1
        os.kill(int((rundir / "my.pid").read_text()), signal.SIGUSR1)
        assert wait(lambda: (rundir / "my.report").exists())
        assert "Report> conf_report" in (rundir / "my.report").read_text()
        proc.stdin.write(b"c Nothing\nQ\n")
        proc.stdin.flush()
        assert proc.wait(timeout=15) == 0
        assert not (rundir / "my.pid").exists()
        assert "not a Phase 1 or 2 section" not in log.read_text()  # -S: nothing initiated
    finally:
        _stop(proc)


def test_inet6_only(wait: Callable[..., bool], rundir: Path, make_pair: Callable[..., Any]) -> None:
    port = make_pair().east.port
    log = rundir / "log"
    conf = str(rundir / "isakmpd.conf")
    proc = _spawn(["-d", "-n", "-6", "-T", "-K", "-c", conf, "-p", str(port),
                   "--run-dir", str(rundir)], log)  # fmt: skip
    try:
        fifo = rundir / "isakmpd.fifo"
        assert wait(fifo.is_fifo), log.read_text()
        fifo.write_text("r\n")
        assert wait(lambda: "conf_report" in log.read_text()), log.read_text()
        bound = re.findall(r"udp_report: fd \d+ src ([^ ]+):(\d+)", log.read_text())
        assert bound == [("::1", str(port))]
    finally:
        assert _stop(proc) == 0


def test_without_d_it_daemonises(
    wait: Callable[..., bool], rundir: Path, make_pair: Callable[..., Any]
) -> None:
    port = make_pair().east.port
    done = subprocess.run([sys.executable, "-c", CODE, "-n", "-T", "-K", "-c",
                           str(rundir / "isakmpd.conf"), "-p", str(port), "--run-dir",
                           str(rundir)], capture_output=True, timeout=120)  # fmt: skip
    assert done.returncode == 0  # the foreground process returns at once
    pid_file = rundir / "isakmpd.pid"
    # generous: on a loaded machine the detached daemon needs many seconds to start and stop
    assert wait(pid_file.exists, 60)
    pid = int(pid_file.read_text())
    assert os.getsid(pid) != os.getsid(0)  # a session of its own, detached from ours
    (rundir / "isakmpd.fifo").write_text("Q\n")
    assert wait(lambda: _exited(pid), 60)
    assert not pid_file.exists()


def _exited(pid: int) -> bool:
    """The process is gone, or a zombie that init has yet to reap (it has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the daemon as another user")
def test_split_without_root_says_so(
    wait: Callable[..., bool], rundir: Path, make_pair: Callable[..., Any]
) -> None:
    user = pwd.getpwnam("nobody")
    port = make_pair().east.port
    os.chown(rundir, user.pw_uid, user.pw_gid)
    os.chown(rundir / "isakmpd.conf", user.pw_uid, user.pw_gid)
    log = rundir / "log"
    log.touch()
    os.chown(log, user.pw_uid, user.pw_gid)

    # become "nobody" inside Python, after the imports: the interpreter may live where
    # nobody cannot reach it (/root/.pyenv)
    demoted = (
        "import os, sys; from ike.daemon import cli; cli._preload(); "
        f"os.setgroups([]); os.setgid({user.pw_gid}); os.setuid({user.pw_uid}); "
        "sys.exit(cli.main(sys.argv[1:]))"
    )
    conf = str(rundir / "isakmpd.conf")
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-c", demoted, "-d", "-n", "-T", "-K", "-c",
                                 conf, "-p", str(port), "--run-dir", str(rundir)],
                                stdout=out, stderr=subprocess.STDOUT, cwd=rundir)  # fmt: skip
    try:
        fifo = rundir / "isakmpd.fifo"
        assert wait(fifo.is_fifo), log.read_text()
        assert wait(lambda: "not running as root: the child keeps uid" in log.read_text())
        fifo.write_text("C get [General]:Listen-on\n")
        result = rundir / "isakmpd.result"
        assert wait(result.exists), log.read_text()
        assert result.read_text() == "127.0.0.1,::1\n"
    finally:
        assert _stop(proc) == 0

"""Real ``isakmpd`` processes on loopback for the daemon tests: start, drive, read, stop."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
ISAKMPD = [sys.executable, "-c", "import sys; from ike.daemon.cli import main; sys.exit(main())"]


def free_port() -> int:
    """An unprivileged UDP port free on 127.0.0.1 right now."""
    for _ in range(200):
        port = random.randint(20000, 60000)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


#: seconds a wait gives the daemons by default: generous, since at load 10-16 on two cores a
#: start or a negotiation takes several times as long as on an idle machine (waits return as
#: soon as what they wait for happens)
DEADLINE = 60.0


def wait_for(predicate: Callable[[], bool], timeout: float = DEADLINE, step: float = 0.05) -> bool:
    """Poll until *predicate* holds or *timeout* passes."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@pytest.fixture(name="wait")
def wait_fixture() -> Callable[..., bool]:
    """:func:`wait_for`, for the test modules (which cannot import this one)."""
    return wait_for


@dataclass
class Proc:
    """One running daemon with its private directory."""

    name: str
    dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    extra: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    prefix: list[str] = field(default_factory=list)
    """Run under this command (``ip netns exec NAME``)."""
    no_kernel: bool = True

    @property
    def fifo(self) -> Path:
        return self.dir / "isakmpd.fifo"

    @property
    def result(self) -> Path:
        return self.dir / "isakmpd.result"

    @property
    def log_path(self) -> Path:
        return self.dir / "isakmpd.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        self.args = [
            "-d", *(["-n"] if self.no_kernel else []), "-T", "-v", "-p", str(self.port),
            "-c", str(self.dir / "isakmpd.conf"),
            "--run-dir", str(self.dir), *self.extra,
        ]  # fmt: skip
        out = open(self.log_path, "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [*self.prefix, *ISAKMPD, *self.args],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=self.dir,
        )
        self.proc = proc
        out.close()
        assert wait_for(lambda: self.fifo.is_fifo() or proc.poll() is not None), self.log()
        assert proc.poll() is None, self.log()

    def command(self, line: str) -> None:
        fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def query(self, line: str, timeout: float = DEADLINE) -> str:
        """Send S or C get and return the fresh result file (read as soon as it appears: the
        daemon renames it into place whole)."""
        if self.result.exists():
            self.result.unlink()
        self.command(line)
        assert wait_for(self.result.exists, timeout), self.log()
        return self.result.read_text()

    def sas(self) -> str:
        return self.query("S")

    def wait_log(self, pattern: str, timeout: float = DEADLINE) -> re.Match[str]:
        found: list[re.Match[str]] = []

        def check() -> bool:
            m = re.search(pattern, self.log())
            if m:
                found.append(m)
            return m is not None

        assert wait_for(check, timeout), f"{pattern!r} not in log of {self.name}:\n{self.log()}"
        return found[0]

    def pid(self) -> int:
        return int((self.dir / "isakmpd.pid").read_text())

    def child_pid(self) -> int:
        parent = self.pid()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                    return int(entry)
        raise AssertionError("no child process")

    def signal(self, sig: signal.Signals) -> None:
        os.kill(self.pid(), sig)

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@dataclass
class Pair:
    east: Proc
    west: Proc

    def negotiate(self) -> None:
        self.west.start()
        self.east.start()
        self.east.wait_log(r"phase 2 done")
        self.west.wait_log(r"phase 2 done")


def write_conf(proc: Proc, peer_port: int, side: str, extra: str = "", ipv6: bool = False) -> None:
    text = (EXAMPLES / f"{side}.conf").read_text()
    if ipv6:
        text = text.replace("127.0.0.1", "::1")
    text = re.sub(r"(?m)^Port=.*$", f"Port=\t\t\t{peer_port}", text)
    text = re.sub(r"(?m)^Policy-file=.*$", f"Policy-file=\t\t{proc.dir / 'isakmpd.policy'}", text)
    text = text.replace("[General]\n", "[General]\n" + extra, 1)
    conf = proc.dir / "isakmpd.conf"
    conf.write_text(text)
    conf.chmod(0o600)
    policy = proc.dir / "isakmpd.policy"
    shutil.copy(EXAMPLES / "isakmpd.policy", policy)
    policy.chmod(0o600)


@pytest.fixture
def make_pair(tmp_path: Path) -> Iterator[Callable[..., Pair]]:
    """Build east (initiator) and west (responder) daemons with free ports; stop them after."""
    made: list[Pair] = []

    def build(tag: str = "", east_args: tuple[str, ...] = (), west_args: tuple[str, ...] = (),
              east_extra: str = "", west_extra: str = "",
              ports: tuple[int, int] | None = None, ipv6: bool = False) -> Pair:  # fmt: skip
        base = tmp_path / (tag or f"pair{len(made)}")
        base.mkdir(mode=0o700)
        east_port, west_port = ports if ports is not None else (free_port(), free_port())
        east = Proc("east", base / "east", east_port)
        west = Proc("west", base / "west", west_port)
        for proc in (east, west):
            proc.dir.mkdir(mode=0o700)
        write_conf(east, west.port, "east", east_extra, ipv6)
        write_conf(west, east.port, "west", west_extra, ipv6)
        east.extra, west.extra = list(east_args), list(west_args)
        pair = Pair(east, west)
        made.append(pair)
        return pair

    yield build
    for pair in made:
        pair.east.stop()
        pair.west.stop()

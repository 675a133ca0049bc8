"""Network namespaces for the host-kernel tests (names start with "kx-", removed afterwards)."""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from ike.kernel.xfrm import XfrmKernel

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_counter = itertools.count()


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def need_root_netns() -> None:
    """Skip (outside CI) when namespaces cannot be made here: not root, or no iproute2."""
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces and XFRM")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2 (Debian package iproute2)")


class NetNS:
    """A namespace we created; :meth:`entered` moves this thread into it for socket creation."""

    def __init__(self, name: str) -> None:
        self.name = name

    def ip(self, *args: str, check: bool = True) -> str:
        """``ip -n NAME ARGS``; its stdout."""
        return subprocess.run(["ip", "-n", self.name, *args], check=check, text=True,
                              capture_output=True).stdout

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A command inside the namespace."""
        return subprocess.run(["ip", "netns", "exec", self.name, *args], check=check, text=True,
                              capture_output=True)

    def sysctl(self, key: str, value: str) -> None:
        """Set a per-namespace sysctl (through /proc/sys: procps may be missing)."""
        path = "/proc/sys/" + key.replace(".", "/")
        self.run("sh", "-c", f"echo {value} > {path}")

    def veth(self, addr: str = "10.88.0.1/24") -> None:
        """A veth pair with ``addr`` on kxv0, so routes and ACQUIREs work."""
        self.ip("link", "add", "kxv0", "type", "veth", "peer", "name", "kxv1")
        self.ip("addr", "add", addr, "dev", "kxv0")
        for dev in ("lo", "kxv0", "kxv1"):
            self.ip("link", "set", dev, "up")

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Run the body with this thread in the namespace (sockets keep their namespace)."""
        home = os.open("/proc/self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            _setns(target)
            yield
        finally:
            _setns(home)
            os.close(home)
            os.close(target)


@pytest.fixture
def netns() -> Iterator[NetNS]:
    """A fresh namespace with lo up, deleted at teardown."""
    need_root_netns()
    name = f"kx-{os.getpid()}-{next(_counter)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    ns = NetNS(name)
    try:
        ns.ip("link", "set", "lo", "up")
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def xfrm(netns: NetNS) -> Iterator[XfrmKernel]:
    """An XfrmKernel whose sockets live in ``netns``."""
    kernel = XfrmKernel()
    with netns.entered():
        kernel.open()
    try:
        yield kernel
    finally:
        kernel.close()

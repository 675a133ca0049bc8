"""Network namespaces for the interop tests: a plain two-host topology and one through a NAT.

Layouts (reference/interop.md 4), addresses private to our namespaces, so parallel tests
(pytest -n 2) can use the same addresses; only the namespace names must differ:

    plain: [a] a0 10.77.0.1/26 <-veth-> b0 10.77.0.2/26 [b]
    nat:   [a] a0 10.77.0.65/26 -- n0 10.77.0.126/26 [n] n1 10.77.0.3/26 -- b0 10.77.0.2/26 [b]
           n masquerades what leaves n1 with nftables "masquerade random" (random ports too)
    both:  lo of a has 10.77.0.201/32, lo of b 10.77.0.202/32 (tunnel-mode selectors);
           plain also routes each inner address via the other side's outer one

Every name starts with "ki" and carries the creating process id, so a crashed run's leftovers
can be told from a live run's (:func:`remove_stale`).
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

PREFIX = "ki"
NET = "10.77.0"
_counter = itertools.count()


class HarnessError(Exception):
    """A namespace or peer could not be set up or driven; the message says which and why."""


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 30,
        env: Mapping[str, str] | None = None,
        input_text: str | None = None,
        cwd: str | os.PathLike[str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command and capture its text output; a failure names the command and its stderr."""
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              env=None if env is None else dict(env), input=input_text,
                              check=False, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        raise HarnessError(f"{' '.join(argv)}: no answer in {timeout} s") from e
    if check and proc.returncode != 0:
        raise HarnessError(f"{' '.join(argv)}: exit {proc.returncode}: "
                           f"{(proc.stderr or proc.stdout).strip()}")
    return proc


@dataclass(frozen=True)
class Namespace:
    """One network namespace we created, with the address its peers reach it at."""

    name: str
    addr: str
    inner: str | None = None

    def argv(self, argv: Sequence[str]) -> list[str]:
        """The command line that runs ``argv`` inside this namespace (and a private mount
        namespace, which ``ip netns exec`` always gives)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: Sequence[str], *, check: bool = True, timeout: float = 30,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace and wait for it."""
        return run(self.argv(argv), check=check, timeout=timeout, env=env)

    def popen(self, argv: Sequence[str], *, log: str, env: Mapping[str, str] | None = None,
              shell_prefix: str | None = None,
              cwd: str | os.PathLike[str] | None = None) -> subprocess.Popen[bytes]:
        """Start a long-running command inside the namespace, stdout and stderr to ``log``.

        ``shell_prefix`` is a /bin/sh snippet run first in the command's private mount
        namespace (e.g. bind mounts); the command is then exec'd, so the PID we get back is
        the daemon's own and can be signalled directly."""
        cmd = list(argv)
        if shell_prefix is not None:
            cmd = ["/bin/sh", "-c", f'{shell_prefix} && exec "$@"', "sh", *argv]
        with open(log, "wb") as out:
            return subprocess.Popen(self.argv(cmd), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=cwd,
                                    env=None if env is None else dict(env))

    def flush_xfrm(self) -> None:
        """Drop XFRM states and policies left by an earlier peer in *this* namespace (pluto can
        leave an inbound policy that silently drops the next daemon's IKE packets)."""
        self.run(["ip", "xfrm", "policy", "flush"], check=False)
        self.run(["ip", "xfrm", "state", "flush"], check=False)


@dataclass
class Topology:
    """Namespaces ``a`` and ``b`` (and the NAT router ``n`` for kind "nat").

    ``a_seen_by_b`` is the source address b receives a's packets from (the router's outside
    address behind the NAT)."""

    kind: str
    a: Namespace
    b: Namespace
    router: Namespace | None = None
    created: list[str] = field(default_factory=list)

    @property
    def a_seen_by_b(self) -> str:
        """Where b's packets to a go (and where a's appear to come from)."""
        return f"{NET}.3" if self.router is not None else self.a.addr

    def side(self, which: str) -> Namespace:
        """Namespace "a" or "b"."""
        if which not in ("a", "b"):
            raise HarnessError(f"no side {which!r} (a or b)")
        return self.a if which == "a" else self.b

    def peer_address(self, which: str) -> str:
        """The address the daemon on side ``which`` talks to."""
        return self.b.addr if which == "a" else self.a_seen_by_b

    def teardown(self) -> None:
        """Delete every namespace this topology created (their XFRM state goes with them)."""
        for name in reversed(self.created):
            run(["ip", "netns", "del", name], check=False)
        self.created.clear()


def unique_tag() -> str:
    """A suffix unique among concurrent test processes: pid and a per-process counter."""
    return f"{os.getpid()}-{next(_counter)}"


def _add(topo: Topology, name: str) -> None:
    run(["ip", "netns", "add", name])
    topo.created.append(name)
    run(["ip", "-n", name, "link", "set", "lo", "up"])


def _veth(ns1: str, dev1: str, addr1: str, ns2: str, dev2: str, addr2: str) -> None:
    run(["ip", "link", "add", dev1, "netns", ns1, "type", "veth", "peer", "name", dev2,
         "netns", ns2])
    for ns, dev, addr in ((ns1, dev1, addr1), (ns2, dev2, addr2)):
        run(["ip", "-n", ns, "addr", "add", addr, "dev", dev])
        run(["ip", "-n", ns, "link", "set", dev, "up"])


NFT_MASQUERADE = """table ip kinat {
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "n1" masquerade random
    }
}
"""


def create(kind: str = "plain", tag: str | None = None) -> Topology:
    """Build a topology of ``kind`` "plain" or "nat"; on any failure what was built is removed.

    The veth ends are created directly inside their namespaces, so interface names (a0, b0,
    n0, n1) never meet in the host namespace."""
    if kind not in ("plain", "nat"):
        raise HarnessError(f"unknown topology {kind!r} (plain or nat)")
    tag = tag or unique_tag()
    a_addr = f"{NET}.65" if kind == "nat" else f"{NET}.1"
    topo = Topology(kind, Namespace(f"{PREFIX}a-{tag}", a_addr, f"{NET}.201"),
                    Namespace(f"{PREFIX}b-{tag}", f"{NET}.2", f"{NET}.202"))
    try:
        _add(topo, topo.a.name)
        _add(topo, topo.b.name)
        if kind == "plain":
            _veth(topo.a.name, "a0", f"{NET}.1/26", topo.b.name, "b0", f"{NET}.2/26")
            # routes to the other side's inner address: a kernel-ESP tunnel needs one (the
            # XFRM policy then encapsulates; without SAs the policy drops, nothing leaks)
            run(["ip", "-n", topo.a.name, "route", "add", f"{NET}.202/32", "via", f"{NET}.2"])
            run(["ip", "-n", topo.b.name, "route", "add", f"{NET}.201/32", "via", f"{NET}.1"])
        else:
            topo.router = Namespace(f"{PREFIX}n-{tag}", f"{NET}.3")
            n = topo.router.name
            _add(topo, n)
            _veth(topo.a.name, "a0", f"{NET}.65/26", n, "n0", f"{NET}.126/26")
            _veth(n, "n1", f"{NET}.3/26", topo.b.name, "b0", f"{NET}.2/26")
            run(["ip", "-n", topo.a.name, "route", "add", "default", "via", f"{NET}.126"])
            topo.router.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
            run(topo.router.argv(["nft", "-f", "-"]), input_text=NFT_MASQUERADE)
        run(["ip", "-n", topo.a.name, "addr", "add", f"{NET}.201/32", "dev", "lo"])
        run(["ip", "-n", topo.b.name, "addr", "add", f"{NET}.202/32", "dev", "lo"])
    except BaseException:
        topo.teardown()
        raise
    return topo


@contextmanager
def topology(kind: str = "plain", tag: str | None = None) -> Iterator[Topology]:
    """:func:`create` with guaranteed teardown."""
    topo = create(kind, tag)
    try:
        yield topo
    finally:
        topo.teardown()


_NAME = re.compile(rf"^{PREFIX}[abn]-(\d+)-\d+$")


def remove_stale() -> list[str]:
    """Delete our namespaces whose creating process is gone (a killed earlier run); never
    anything without our prefix, and never a live process's."""
    out = run(["ip", "netns", "list"], check=False).stdout
    removed = []
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        m = _NAME.match(name)
        if m is None:
            continue
        pid = int(m.group(1))
        try:
            os.kill(pid, 0)
            continue
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        run(["ip", "netns", "del", name], check=False)
        removed.append(name)
    return removed

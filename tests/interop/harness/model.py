"""The peer-neutral side of the harness: what a connection is, what a peer reports, and the
``Peer`` protocol every daemon (charon, pluto, ours) is driven through by the matrix tests."""

from __future__ import annotations

import abc
import os
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .netns import HarnessError, Namespace

PSK = "ki-interop-psk-0123456789"
#: seconds a daemon may take to come up: generous, since a loaded machine once kept our daemon
#: from binding its port within 10 s; a daemon that dies is reported at once anyway
READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Suite:
    """One cell's algorithms, spelled for each implementation.

    ``charon_ike``/``charon_esp`` are swanctl proposals (ESP without a DH group; PFS adds
    ``dh``), ``pluto_ike``/``pluto_esp`` libreswan's ike=/phase2alg= syntax, ``isakmpd_*``
    the names of the generated sections of isakmpd.conf(5)."""

    name: str
    charon_ike: str
    charon_esp: str
    dh: str
    pluto_ike: str
    pluto_esp: str
    pluto_dh: str
    isakmpd_transform: str
    isakmpd_esp: str
    isakmpd_group: str


SUITES: dict[str, Suite] = {s.name: s for s in (
    Suite("aes128-sha1-modp2048", "aes128-sha1-modp2048", "aes128-sha1", "modp2048",
          "aes128-sha1;modp2048", "aes128-sha1", "modp2048",
          "AES-128-SHA-GRP14", "AES-128-SHA", "GRP14"),
    Suite("aes256-sha256-modp3072", "aes256-sha256-modp3072", "aes256-sha256", "modp3072",
          "aes256-sha2_256;modp3072", "aes256-sha2_256", "modp3072",
          "AES-256-SHA2-256-GRP15", "AES-256-SHA2-256", "GRP15"),
    Suite("3des-sha1-modp1024", "3des-sha1-modp1024", "3des-sha1", "modp1024",
          "3des-sha1;modp1024", "3des-sha1", "modp1024",
          "3DES-SHA-GRP2", "3DES-SHA", "GRP2"),
    Suite("aes128-sha256-ecp256", "aes128-sha256-ecp256", "aes128-sha256", "ecp256",
          "aes128-sha2_256;dh19", "aes128-sha2_256", "dh19",
          "AES-128-SHA2-256-GRP19", "AES-128-SHA2-256", "GRP19"),
    Suite("aes128gcm16", "aes128-sha1-modp2048", "aes128gcm16", "modp2048",
          "aes128-sha1;modp2048", "aes_gcm128-null", "modp2048",
          "AES-128-SHA-GRP14", "AESGCM-128", "GRP14"),
)}


@dataclass(frozen=True)
class Connection:
    """One side's view of a connection, independent of the implementation.

    ``remote`` may be "%any" for a responder behind which a NAT hides the initiator.
    IDs: an IPv4 address, "@fqdn" (ID_FQDN) or a DN; with RSA they default to the certificate's
    FQDN.  ``local_ts``/``remote_ts`` None means transport mode between the outer addresses.
    ``rekey_margin`` (seconds, 0: the implementation's default) makes pluto and charon rekey
    their Phase 2 SAs that long before ``ipsec_lifetime`` ends (with a little random spread)."""

    name: str
    local: str
    remote: str
    local_id: str
    remote_id: str
    suite: Suite = SUITES["aes128-sha1-modp2048"]
    auth: str = "psk"
    psk: str = PSK
    aggressive: bool = False
    pfs: bool = False
    local_ts: str | None = None
    remote_ts: str | None = None
    ike_lifetime: int = 3600
    ipsec_lifetime: int = 1200
    dpd_delay: int = 0
    rekey_margin: int = 0

    @property
    def tunnel(self) -> bool:
        """Tunnel mode (selectors given) or transport."""
        return self.local_ts is not None


@dataclass(frozen=True)
class Pki:
    """Certificates for one side: the CA, this side's certificate and key (PEM files), and a
    PKCS#12 bundle of both for NSS (libreswan)."""

    ca_cert: Path
    cert: Path
    key: Path
    p12: Path
    p12_password: str
    fqdn: str


@dataclass(frozen=True)
class IkeSaInfo:
    """An established Phase 1 SA as a peer reports it."""

    name: str
    cookie_i: str
    cookie_r: str
    state: str


@dataclass(frozen=True)
class ChildSaInfo:
    """An installed Phase 2 SA pair as a peer reports it (SPIs as 8 hex digits)."""

    name: str
    spi_in: str
    spi_out: str
    state: str
    mode: str = ""
    proposal: str = ""


@dataclass(frozen=True)
class EspKeys:
    """Keys of one ESP SA: encryption key and integrity key (empty for AEAD), lower hex.

    ``encap`` ("TYPE SPORT DPORT", UDP encapsulation for NAT-T) is shown where the source
    knows it (the fakesa log) and left out of comparisons."""

    spi: str
    enc: str
    integ: str
    encap: str = field(default="", compare=False)


@dataclass
class Phase1Keys:
    """What a peer logged for one Phase 1 SA (names as in charon's log; pluto keeps these in
    NSS and logs none)."""

    values: dict[str, str] = field(default_factory=dict)


class Peer(Protocol):
    """What the matrix needs from any IKEv1 implementation running in a namespace."""

    name: str
    ns: Namespace

    @property
    def log_path(self) -> Path:
        """The daemon's log."""

    def launch(self) -> None:
        """Write the configuration and start the daemon without waiting (peers come up in
        parallel: launch all, then ready all)."""

    def ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait until the daemon answers and has its connections loaded."""

    def start(self) -> None:
        """Write the configuration, start the daemon, load the connection; return when ready."""

    def initiate(self, conn: str, timeout: float = 20) -> bool:
        """Start Phase 1 and 2 of ``conn``; True when the peer says the SAs are up."""

    def terminate(self, conn: str) -> None:
        """Tear ``conn``'s SAs down (sends DELETE)."""

    def ike_sas(self) -> list[IkeSaInfo]:
        """Established Phase 1 SAs."""

    def child_sas(self) -> list[ChildSaInfo]:
        """Installed Phase 2 SAs."""

    def phase1_keys(self) -> list[Phase1Keys]:
        """Logged Phase 1 keys, oldest first."""

    def esp_keys(self) -> dict[str, EspKeys]:
        """Logged ESP keys by SPI (hex)."""

    def wait_log(self, pattern: str, timeout: float = 15) -> re.Match[str]:
        """Wait for a line matching ``pattern`` in the daemon's log."""

    def stop(self) -> None:
        """Stop the daemon (only the PID we started); safe to call twice."""

    def crash(self) -> None:
        """SIGKILL the daemon and its children: no DELETE leaves."""


@contextmanager
def running(*peers: Peer) -> Iterator[None]:
    """Launch the peers together (they come up in parallel), wait until each is ready, and stop
    them all, in the same order, however the block ends."""
    try:
        for p in peers:
            p.launch()
        for p in peers:
            p.ready()
        yield
    finally:
        for p in peers:
            p.stop()


class DaemonBase(abc.ABC):
    """Process handling shared by the peers: they set ``pid`` in launch() and wait in ready()
    (split so that several daemons come up in parallel), log to ``log_path``.  The three
    abstract members are what each peer must supply; instantiating a peer that lacks one
    fails at once (TypeError) rather than in the middle of a cell."""

    pid: int

    @property
    @abc.abstractmethod
    def log_path(self) -> Path:
        """The daemon's log file."""
        ...

    @abc.abstractmethod
    def launch(self) -> None:
        """Start the daemon without waiting for it."""
        ...

    @abc.abstractmethod
    def ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait until the daemon answers and has its connections loaded."""
        ...

    def start(self) -> None:
        """:meth:`launch` then :meth:`ready`."""
        self.launch()
        self.ready()

    def alive(self) -> bool:
        """Whether the process we started still runs (reaping it if it exited)."""
        if not self.pid:
            return False
        try:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
            return done == 0
        except ChildProcessError:
            return False

    def wait_log(self, pattern: str, timeout: float = 15) -> re.Match[str]:
        """Wait for a line matching ``pattern`` in the daemon's log."""
        return wait_for_log(self.log_path, pattern, timeout)

    def crash(self) -> None:
        """SIGKILL the daemon and every process it started (a crash: no DELETEs leave)."""
        if not self.pid:
            return
        for pid in [*descendants(self.pid), self.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        stop_pid(self.pid)
        self.pid = 0


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (children first found through /proc), deepest last."""
    parent_of: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        parent_of[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        kids = [p for p, pp in parent_of.items() if pp in frontier]
        found += kids
        frontier = kids
    return found


def wait_for_log(path: Path, pattern: str, timeout: float = 15) -> re.Match[str]:
    """Poll a log file until ``pattern`` (a regex) matches; HarnessError with the log's tail
    when it does not in time."""
    rx = re.compile(pattern, re.MULTILINE)
    deadline = time.monotonic() + timeout
    text = ""
    while True:
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            text = ""
        m = rx.search(text)
        if m is not None:
            return m
        if time.monotonic() > deadline:
            tail = "\n".join(text.splitlines()[-15:])
            raise HarnessError(f"{path}: no line matching {pattern!r} in {timeout} s; "
                               f"last lines:\n{tail}")
        time.sleep(0.05)


def stop_pid(pid: int, timeout: float = 5) -> None:
    """SIGTERM one process we started, SIGKILL it if it lingers; reap it if it is our child."""
    def gone() -> bool:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    if gone():
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gone():
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while not gone():
        time.sleep(0.05)

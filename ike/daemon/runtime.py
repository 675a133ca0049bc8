"""The asyncio runtime: UDP sockets, one timer and signals around the sans-I/O engine.

One :class:`Daemon` owns the engine.  Datagrams from every bound socket go to
``Engine.receive_datagram``; after anything happens :meth:`Daemon.pump` sends what the engine
queued, logs its events and re-arms the single timer on ``Engine.get_timer()``.  The connection
checker (``[General]:Check-interval``) keeps ``[Phase 2]:Connections`` up.  FIFO commands, the
report and the reload live in :mod:`ike.daemon.control`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from ike.conf import Conf, ConfError, read_secret_file
from ike.crypto.rand import RandomSource
from ike.daemon.ifaddrs import listen_addresses
from ike.daemon.log import DebugLevels, IsakmpdHandler, log_print
from ike.daemon.options import Options
from ike.daemon.pcap import PcapWriter
from ike.engine import Engine
from ike.events import ExchangeFailed, Phase1Done, Phase2Done, SADeleted
from ike.exchange.natt import KEEPALIVE
from ike.exchange.transaction import check_password
from ike.kernel import interface as k

log = logging.getLogger("ike.daemon.runtime")
tlog = logging.getLogger("ike.daemon.timer")

CHECK_INTERVAL = 60
Addr = tuple[str, int]


def local_utc_offset() -> int:
    """Seconds east of UTC of local time now (DST included), for the policy's
    LocalTimeOfDay; the time zone is read before the chroot, as isakmpd's tzset()."""
    return time.localtime().tm_gmtoff


class Files(Protocol):
    """How the daemon opens files and binds sockets (directly, or through the monitor)."""

    def open(self, path: str, write: bool = False) -> BinaryIO:
        """Open for reading (``rb``) or writing (``wb``, truncating, mode 0600)."""

    def publish(self, path: str) -> None:
        """Rename ``path + ".tmp"``, written and closed, over *path*: a reader of *path* sees
        the old file or the whole new one, never an empty or partial one."""

    def bind(self, host: str, port: int, encap: bool = False) -> socket.socket:
        """A UDP socket bound to (host, port)."""


class DirectFiles:
    """Files and sockets opened by this process itself (no privilege separation)."""

    def open(self, path: str, write: bool = False) -> BinaryIO:
        """Open *path* directly."""
        if write:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            return os.fdopen(fd, "wb")
        return open(path, "rb")

    def publish(self, path: str) -> None:
        """Rename the finished ``path.tmp`` over *path* directly."""
        os.replace(path + ".tmp", path)

    def bind(self, host: str, port: int, encap: bool = False) -> socket.socket:
        """Bind a UDP socket directly."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        return sock


class AcquireOnlyKernel:
    """``-a`` / ``Acquire-Only``: SAs go to the kernel, flows are left to other programs."""

    def __init__(self, inner: k.KernelBackend) -> None:
        self.inner = inner
        self.name = f"{inner.name}-acquire-only"

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)

    def add_flow(self, cmd: k.AddFlow) -> None:
        """Not with -a."""
        log.debug("acquire-only: not installing flow %s", cmd.selector, extra={"dlevel": 50})

    def delete_flow(self, cmd: k.DeleteFlow) -> None:
        """Not with -a."""


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, daemon: Daemon, local: Addr) -> None:
        self.daemon = daemon
        self.local = local

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.daemon.on_datagram(data, (str(addr[0]), int(addr[1])), self.local)

    def error_received(self, exc: Exception) -> None:
        log.debug("transport %s:%d: %s", self.local[0], self.local[1], exc)


@dataclass
class Transport:
    """One bound UDP socket."""

    local: Addr
    transport: asyncio.DatagramTransport
    encap: bool = False
    fd: int = -1


def load_policy(path: str, files: Files) -> Callable[[], Any]:
    """Read and check the KeyNote policy file; return the per-SA session factory."""
    from keynote import KeyNoteError, Session

    text = read_secret_file(path, lambda p: files.open(p))
    try:
        Session().add_assertions(text, trusted=True, source=path)
    except KeyNoteError as exc:
        raise ConfError(path, None, str(exc)) from None

    def factory() -> Session:
        session = Session()
        session.add_assertions(text, trusted=True, source=path)
        return session

    return factory


@dataclass
class Daemon:
    """The running daemon (in the unprivileged child when privilege separation is on)."""

    options: Options
    conf: Conf
    files: Files
    kernel: k.KernelBackend
    levels: DebugLevels
    handler: IsakmpdHandler | None = None
    policy_factory: Callable[[], Any] | None = None
    auth: Any = None
    """The engine's key source (pki.PKIAuth), loaded before the chroot."""
    chrooted: bool = False
    engine: Engine = field(init=False)
    transports: list[Transport] = field(default_factory=list)
    active: list[str] = field(default_factory=list)
    passive_mode: bool = False
    pcap: PcapWriter | None = None
    loop: asyncio.AbstractEventLoop | None = None
    stopping: bool = False
    exit_code: int = 0
    monitor_sock: socket.socket | None = None
    on_monitor_event: Callable[[], None] | None = None
    on_ready: Callable[[], None] | None = None
    """Runs once the sockets are bound (the FIFO is read from then on)."""
    _timer: asyncio.TimerHandle | None = None
    _timer_at: float | None = None
    _check: asyncio.TimerHandle | None = None
    _check_at: float | None = None
    _reinit: asyncio.TimerHandle | None = None
    _done: asyncio.Future[None] | None = None
    stats: dict[str, int] = field(default_factory=lambda: {"in": 0, "out": 0, "dropped": 0})

    def __post_init__(self) -> None:
        self.passive_mode = self.options.passive
        self.engine = self._make_engine(self.conf)
        self.engine.passive = self.passive_mode  # -S: not even rekeys are initiated

    def _make_engine(self, conf: Conf) -> Engine:
        rand = (
            RandomSource.seeded(self.options.seed)
            if self.options.seed is not None
            else RandomSource()
        )
        use_keynote = not self.options.ignore_policy and (
            conf.get_str("General", "Use-Keynote") or "yes"
        ).startswith("yes")
        kernel: Any = self.kernel
        if self.options.acquire_only:
            kernel = AcquireOnlyKernel(self.kernel)
        engine = Engine(
            conf,
            rand=rand,
            kernel=kernel,
            auth=self.auth,
            local_port=self.options.local_port or self.options.port,
            policy_factory=self.policy_factory,
            use_keynote=use_keynote,
            nat_traversal=self.options.nat_t,
            natt_port=self.options.natt_port,
            utc_offset=local_utc_offset(),
        )
        # connections added with FIFO `c` are as active as configured ones (rekeying)
        engine.active_hook = lambda: self.active
        # XAUTH-Password-File is read through the monitor, at every check
        engine.xauth_check = lambda sa, user, password: check_password(
            engine, sa, user, password,
            lambda path: read_secret_file(path, lambda p: self.files.open(p)))
        return engine

    @property
    def now(self) -> float:
        """Wall-clock seconds: the engine's time base (lifetimes, policy time of day)."""
        return time.time()

    # ---- sockets -----------------------------------------------------------------------------

    async def open_transports(self) -> None:
        """Bind the listen port (and the NAT-T port) on every local address (Listen-on)."""
        assert self.loop is not None
        listen_on = self.conf.get_list("General", "Listen-on")
        hosts = listen_addresses(listen_on, self.options.inet4, self.options.inet6)
        if listen_on and not hosts:
            log.warning("Listen-on %s matches no local address", ",".join(listen_on))
        ports = [(self.options.port, False)]
        if self.options.local_port not in (None, self.options.port):
            ports.append((self.options.local_port, False))
        if self.options.nat_t and self.options.natt_port not in (self.options.port,):
            ports.append((self.options.natt_port, True))
        for host in hosts:
            for port, encap in ports:
                try:
                    sock = self.files.bind(host, int(port or 0), encap)
                except Exception as exc:
                    level = logging.WARNING if encap else logging.ERROR
                    log.log(level, "cannot bind %s port %s: %s", host, port, exc)
                    continue
                sock.setblocking(False)
                local = (host, int(sock.getsockname()[1]))
                transport, _proto = await self.loop.create_datagram_endpoint(
                    self._endpoint_factory(local), sock=sock
                )
                self.transports.append(Transport(local, transport, encap, sock.fileno()))
                log.debug("listening on %s port %d", host, local[1])
        if not self.transports:
            raise OSError("no address to listen on")

    def _endpoint_factory(self, local: Addr) -> Callable[[], _Endpoint]:
        return lambda: _Endpoint(self, local)

    def _transport_for(self, local: Addr, peer: Addr) -> Transport | None:
        family_v6 = ":" in peer[0]
        same_family = [t for t in self.transports if (":" in t.local[0]) == family_v6]
        preferred_port = self.options.local_port or self.options.port
        for candidates in (
            [t for t in same_family if t.local == local],
            [t for t in same_family if t.local[0] == local[0] and t.local[1] == preferred_port],
            [t for t in same_family if t.local[0] == local[0] and not t.encap],
            [t for t in same_family if t.local[1] == preferred_port],
            same_family,
        ):
            if candidates:
                return candidates[0]
        return None

    def on_datagram(self, data: bytes, src: Addr, local: Addr) -> None:
        """A datagram arrived on one of our sockets."""
        self.stats["in"] += 1
        if local[1] == self.options.natt_port and self.options.nat_t:
            if data[:4] != bytes(4):
                return  # ESP in UDP belongs to the kernel, keepalives are 1 byte
            data = data[4:]
        self.engine.receive_datagram(data, src, local, self.now)
        if self.pcap is not None:  # after the engine decrypted it: its cleartext is known
            self._capture(src, local, data)
        self.pump()

    def _capture(self, src: Addr, dst: Addr, data: bytes) -> None:
        """Capture one message, decrypted when the engine can say what it decrypts to.

        The engine remembers the cleartext of the messages it encrypts or decrypts while its
        ``capture_cleartext`` is on (``Engine.cleartext(data)``); a message it could not decrypt
        is written in its wire form, ENC flag kept.
        """
        try:
            self._capture_one(src, dst, data)
        except (OSError, ValueError) as exc:
            log.error("packet capture stopped: %s", exc)
            if self.pcap is not None:
                try:
                    self.pcap.close()
                except OSError:
                    pass
            self.pcap = None
            self.engine.capture_cleartext = False

    def _capture_one(self, src: Addr, dst: Addr, data: bytes) -> None:
        assert self.pcap is not None
        encrypted = len(data) > 19 and data[19] & 0x01
        if not encrypted:
            self.pcap.record(src, dst, data, cleartext=True)
            return
        clear = self.engine.cleartext(data)
        if clear is not None:
            self.pcap.record(src, dst, clear, cleartext=True)
        else:
            self.pcap.record(src, dst, data, cleartext=False)

    # ---- the engine pump ---------------------------------------------------------------------

    def pump(self) -> None:
        """Send what the engine queued, handle its events, re-arm the timer."""
        now = self.now
        for data, local, peer in self.engine.datagrams_to_send(now):
            t = self._transport_for(local, peer)
            if t is None:
                self.stats["dropped"] += 1
                log.warning("no socket to send from %s to %s:%d", local[0], *peer)
                continue
            # on the NAT-T port ISAKMP gets the non-ESP marker; a keepalive (0xFF) goes bare
            out = bytes(4) + data if t.encap and data != KEEPALIVE else data
            if self.pcap is not None:
                self._capture(t.local, peer, data)
            t.transport.sendto(out, peer)
            self.stats["out"] += 1
        while (event := self.engine.next_event()) is not None:
            self._event(event)
        self._arm_timer()

    def _event(self, event: object) -> None:
        if isinstance(event, Phase1Done):
            log.info(
                "phase 1 done%s: %s peer %s:%d, cookies %s",
                " (as initiator)" if event.initiator else " (as responder)",
                event.name, event.peer[0], event.peer[1], event.cookies.hex(),
            )  # fmt: skip
        elif isinstance(event, Phase2Done):
            spis = ", ".join(f"{p}:{s:08x}" for p, s in event.spis_in + event.spis_out)
            log.info("phase 2 done: %s, SPIs %s", event.name, spis)
        elif isinstance(event, ExchangeFailed):
            log.warning("exchange %s %s with %s failed: %s", event.exchange, event.name,
                        event.peer[0], event.reason)  # fmt: skip
        elif isinstance(event, SADeleted):
            # at info, as its establishment is: why an SA went is the first question asked
            log.info("%s SA %s deleted: %s", event.kind, event.name, event.reason)
        else:
            log.debug("engine event %r", event, extra={"dlevel": 40})

    def _arm_timer(self) -> None:
        assert self.loop is not None
        deadline = self.engine.get_timer()
        if deadline == self._timer_at and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            delay = max(0.0, deadline - self.now)
            self._timer = self.loop.call_later(delay, self._on_timer)
            tlog.debug("timer armed in %.3f s", delay, extra={"dlevel": 80})

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        try:
            self.engine.handle_timer(self.now)
        except Exception:  # the engine must not stop the daemon; say so and go on
            log.exception("timer handling failed")
        self.pump()

    # ---- connections -------------------------------------------------------------------------

    def check_interval(self) -> int:
        """Seconds between connection checks (``[General]:Check-interval``)."""
        value = self.conf.get_num("General", "Check-interval", CHECK_INTERVAL)
        return value if value > 0 else CHECK_INTERVAL

    def schedule_check(self, delay: float = 0.0) -> None:
        """Run the connection checker after *delay* seconds (replacing a later run)."""
        assert self.loop is not None
        if self._check is not None:
            self._check.cancel()
        self._check_at = self.now + delay
        self._check = self.loop.call_later(delay, self.check_connections)

    def _in_progress(self, name: str) -> bool:
        return any(
            getattr(ex, "name", None) == name and not getattr(ex, "finished", True)
            for ex in self.engine.exchanges.values()
        ) or any(entry[0] == name for waiting in self.engine.pending.values() for entry in waiting)

    def check_connections(self) -> None:
        """Bring up every active connection that has no phase 2 SA (``connection_checker``)."""
        self._check = None
        self.engine.utc_offset = local_utc_offset()  # follows DST changes
        if not self.stopping and not self.passive_mode:
            now = self.now
            for name in list(self.active):
                if self.engine.sas.ipsec_by_name(name) or self._in_progress(name):
                    continue
                log.info("connection_checker: starting %s", name)
                try:
                    self.engine.connect(name, now)
                except Exception:
                    log.exception("connection %s could not be started", name)
            self.pump()
        if not self.stopping:
            self.schedule_check(self.check_interval())

    def connection_names(self) -> list[str]:
        """``[Phase 2]:Connections`` as configured now."""
        return self.conf.get_list("Phase 2", "Connections")

    def reset_connections(self) -> None:
        """Take the active list from the configuration again (``connection_reinit``)."""
        self._reinit = None
        self.active = self.connection_names()
        self.schedule_check(0.0)

    def schedule_connection_reinit(self, delay: float = 5.0) -> None:
        """Re-read the connection lists *delay* seconds later; each call restarts the delay."""
        assert self.loop is not None
        if self._reinit is not None:
            self._reinit.cancel()
        self._reinit = self.loop.call_later(delay, self.reset_connections)

    # ---- start and stop ----------------------------------------------------------------------

    def install_signals(self) -> None:
        """SIGHUP reloads, SIGUSR1 reports, SIGTERM (SIGINT with -d, not -dd) shuts down."""
        from ike.daemon import control

        assert self.loop is not None
        self.loop.add_signal_handler(signal.SIGHUP, self._signalled, "SIGHUP", control.reinit)
        self.loop.add_signal_handler(
            signal.SIGUSR1, self._signalled, "SIGUSR1", control.report_to_file
        )
        self.loop.add_signal_handler(signal.SIGTERM, self.shutdown)
        if self.options.debug == 1:
            self.loop.add_signal_handler(signal.SIGINT, self.shutdown)
        else:  # isakmpd leaves SIGINT at its default action: it ends the process at once
            signal.signal(signal.SIGINT, signal.SIG_DFL)

    def _signalled(self, name: str, action: Callable[[Daemon], None]) -> None:
        log_print(log, "%s received", name)
        action(self)

    def shutdown(self) -> None:
        """Clean shutdown: DELETEs for every phase 2 then phase 1 SA, unless told not to."""
        if self.stopping:
            return
        self.stopping = True
        log_print(log, "isakmpd: shutting down...")
        delete_sas = not self.options.passive and not (
            self.conf.get_str("General", "Delete-SAs") or "yes"
        ).startswith("no")
        now = self.now
        if delete_sas:
            for ipsa in list(self.engine.sas.ipsec):
                self.engine.delete(ipsa.name, now)
            for sa in list(self.engine.sas.isakmp.values()):
                self.engine.delete(sa.cookies.hex(), now)
        self.pump()
        for handle in (self._timer, self._check, self._reinit):
            if handle is not None:
                handle.cancel()
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    async def run(self) -> None:
        """Run until shutdown."""
        self.loop = asyncio.get_running_loop()
        self._done = self.loop.create_future()
        await self.open_transports()
        self.install_signals()
        if self.on_ready is not None:
            self.on_ready()
        if self.monitor_sock is not None and self.on_monitor_event is not None:
            self.loop.add_reader(self.monitor_sock.fileno(), self.on_monitor_event)
        if self.options.pcap_file:
            from ike.daemon import control

            control.packet_log(self, True, self.options.pcap_file)
        self.active = [] if self.passive_mode else self.connection_names()
        self.schedule_check(0.0)
        self.pump()
        await self._done
        await asyncio.sleep(0.05)  # let the DELETEs leave
        for t in self.transports:
            t.transport.close()
        if self.pcap is not None:
            self.pcap.close()
            self.pcap = None
        log_print(log, "isakmpd: exit")

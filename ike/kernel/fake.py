"""A kernel for tests: records every command, keeps SAs and flows as a real kernel would (so
duplicates and unknown SPIs fail with the same errno), and lets tests inject events."""

from __future__ import annotations

import asyncio
import errno
import socket
from dataclasses import dataclass, field

from ike.kernel.interface import (
    AddFlow,
    Address,
    AddSA,
    DeleteFlow,
    DeleteSA,
    Direction,
    EventHandler,
    Flush,
    GetSPI,
    KernelCommand,
    KernelError,
    KernelEvent,
    QuerySA,
    SAStats,
    TrafficSelector,
)

SAKey = tuple[Address, int, int]  # (dst, spi, proto) as the kernel keys SAs
FlowKey = tuple[TrafficSelector, Direction]


@dataclass
class FakeKernel:
    """In-memory kernel.  ``commands`` lists every command in order (GetSPI included);
    ``sas``/``flows`` hold what is installed; ``larval`` the SPIs handed out but not completed."""

    name: str = "fake"
    first_spi: int = 0x1000
    commands: list[KernelCommand] = field(default_factory=list)
    sas: dict[SAKey, AddSA] = field(default_factory=dict)
    flows: dict[FlowKey, AddFlow] = field(default_factory=dict)
    larval: set[SAKey] = field(default_factory=set)
    bypassed: list[int] = field(default_factory=list)
    encap_sockets: list[int] = field(default_factory=list)
    stats: dict[SAKey, SAStats] = field(default_factory=dict)
    is_open: bool = False
    _handler: EventHandler | None = None
    _next_spi: int = 0

    # ----------------------------------------------------------------- lifecycle
    def open(self) -> None:
        """Mark open (nothing to open)."""
        self.is_open = True

    def close(self) -> None:
        """Mark closed; installed state stays, as in a real kernel."""
        self.is_open = False

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Nothing to watch: events come from :meth:`inject`."""

    def set_event_handler(self, handler: EventHandler | None) -> None:
        """Where injected events go."""
        self._handler = handler

    def inject(self, event: KernelEvent) -> None:
        """Deliver an event to the handler now, as if the kernel had sent it."""
        if self._handler is not None:
            self._handler(event)

    # ----------------------------------------------------------------- commands
    def get_spi(self, cmd: GetSPI) -> int:
        """Hand out the next free SPI in the requested range (deterministic for tests)."""
        self.commands.append(cmd)
        spi_min, spi_max = cmd.spi_range()
        if spi_min > spi_max:
            raise KernelError("Invalid SPI range: min > max", errno_value=errno.EINVAL, command=cmd)
        candidate = max(spi_min, self.first_spi + self._next_spi)
        while candidate <= spi_max:
            key = (cmd.dst, candidate, int(cmd.proto))
            if key not in self.sas and key not in self.larval:
                self.larval.add(key)
                self._next_spi = candidate - self.first_spi + 1
                return candidate
            candidate += 1
        raise KernelError("no free SPI in range", errno_value=errno.ENOENT, command=cmd)

    def add_sa(self, cmd: AddSA) -> None:
        """Install; EEXIST for a duplicate (an inbound SA may complete its larval SPI)."""
        self.commands.append(cmd)
        key = (cmd.dst, cmd.spi, int(cmd.proto))
        # one dict operation where a test and a store would hash the key twice (an ipaddress
        # hashes in Python): the fake's share of the responder's time in the bench
        size = len(self.sas)
        self.sas.setdefault(key, cmd)
        if len(self.sas) == size:  # it was there already
            raise KernelError("SA exists", errno_value=errno.EEXIST, command=cmd)
        if self.larval:
            self.larval.discard(key)

    def delete_sa(self, cmd: DeleteSA) -> None:
        """Remove; ESRCH when there is no such SA."""
        self.commands.append(cmd)
        key = (cmd.dst, cmd.spi, int(cmd.proto))
        if key in self.larval:
            self.larval.discard(key)
            return
        if self.sas.pop(key, None) is None:
            raise KernelError("No such process", errno_value=errno.ESRCH, command=cmd)
        self.stats.pop(key, None)

    def query_sa(self, cmd: QuerySA) -> SAStats | None:
        """Counters set by the test in :attr:`stats`, zero by default; None if not installed."""
        self.commands.append(cmd)
        key = (cmd.dst, cmd.spi, int(cmd.proto))
        if key not in self.sas:
            return None
        return self.stats.get(key, SAStats(0, 0, 0, 0))

    def add_flow(self, cmd: AddFlow) -> None:
        """Install; EEXIST for the same selector and direction."""
        self.commands.append(cmd)
        size = len(self.flows)
        self.flows.setdefault((cmd.selector, cmd.direction), cmd)  # one lookup
        if len(self.flows) == size:  # it was there already
            raise KernelError("File exists", errno_value=errno.EEXIST, command=cmd)

    def delete_flow(self, cmd: DeleteFlow) -> None:
        """Remove; ENOENT when there is no such flow."""
        self.commands.append(cmd)
        if self.flows.pop((cmd.selector, cmd.direction), None) is None:
            raise KernelError("No such file or directory", errno_value=errno.ENOENT, command=cmd)

    def flush(self, cmd: Flush) -> None:
        """Remove everything (the fake holds only what the daemon installed)."""
        self.commands.append(cmd)
        self.sas.clear()
        self.flows.clear()
        self.larval.clear()
        self.stats.clear()

    def bypass_socket(self, sock: socket.socket) -> None:
        """Remember the socket's fd."""
        self.bypassed.append(sock.fileno())

    def enable_udp_encap(self, sock: socket.socket) -> None:
        """Remember the socket's fd."""
        self.encap_sockets.append(sock.fileno())

    # ----------------------------------------------------------------- helpers for tests
    def of_type(self, kind: type[KernelCommand]) -> list[KernelCommand]:
        """The recorded commands of one class, in order."""
        return [c for c in self.commands if isinstance(c, kind)]

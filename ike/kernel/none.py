"""The ``-n`` backend: negotiate but install nothing in the kernel (isakmpd's ``app_none``)."""

from __future__ import annotations

import asyncio
import os
import socket

from ike.kernel.interface import (
    AddFlow,
    AddSA,
    DeleteFlow,
    DeleteSA,
    EventHandler,
    Flush,
    GetSPI,
    QuerySA,
    SAStats,
)


class NoneKernel:
    """Every command succeeds and nothing happens; no events ever arrive.

    isakmpd's ``-n`` answers every GETSPI with the fixed bytes 12 34 56 78; we hand out random
    SPIs in the requested range instead so that two ``-n`` daemons in a test still get distinct
    SPIs per direction.
    """

    name = "none"

    def open(self) -> None:
        """Nothing to open."""

    def close(self) -> None:
        """Nothing to close."""

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """No events to watch."""

    def set_event_handler(self, handler: EventHandler | None) -> None:
        """No events will come."""

    def get_spi(self, cmd: GetSPI) -> int:
        """A random SPI within the requested range."""
        spi_min, spi_max = cmd.spi_range()
        span = spi_max - spi_min + 1
        if span <= 0:
            return spi_min
        return spi_min + int.from_bytes(os.urandom(4), "big") % span

    def add_sa(self, cmd: AddSA) -> None:
        """Ignored."""

    def delete_sa(self, cmd: DeleteSA) -> None:
        """Ignored."""

    def query_sa(self, cmd: QuerySA) -> SAStats | None:
        """No kernel SAs exist."""
        return None

    def add_flow(self, cmd: AddFlow) -> None:
        """Ignored."""

    def delete_flow(self, cmd: DeleteFlow) -> None:
        """Ignored."""

    def flush(self, cmd: Flush) -> None:
        """Ignored."""

    def bypass_socket(self, sock: socket.socket) -> None:
        """Nothing to bypass."""

    def enable_udp_encap(self, sock: socket.socket) -> None:
        """Nothing to decapsulate."""

"""The child's side of privilege separation: its kernel backend and its key source, each
served by the privileged parent over the channel (ike.daemon.privsep).

isakmpd's unprivileged child asks its monitor for every kernel change and every private key;
here :class:`MonitorKernel` stands in for the kernel backend and :class:`MonitorAuth` for the
PKI, so the engine runs unchanged inside the chroot.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ike.auth import PeerKey
from ike.daemon.privsep import MonitorClient, MonitorError, recv_message
from ike.kernel import interface as k

log = logging.getLogger("ike.daemon.privsep")

__all__ = ["MonitorAuth", "MonitorKernel"]


class MonitorKernel:
    """The child's kernel backend: every command runs in the privileged parent.

    Kernel events arrive as unsolicited messages on the channel; :meth:`dispatch` hands them
    (and those that came in while a request was waiting for its answer) to the handler.
    """

    name = "monitor"

    def __init__(self, client: MonitorClient) -> None:
        self.client = client
        self.handler: k.EventHandler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self) -> None:
        """The parent opened the real backend."""

    def close(self) -> None:
        """The parent closes the real backend."""

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Events are read by the runtime from the channel (see :meth:`dispatch`); those a
        request's wait took off the channel are delivered from ``loop`` right after it."""
        self._loop = loop
        self.client.on_queued = self._schedule

    def _schedule(self) -> None:
        """Deliver the queued events soon, outside whatever engine call made the request
        (they would otherwise wait for the next message on the channel: seconds, or for ever).
        A second call before then finds the queue empty: delivery is idempotent."""
        if self._loop is not None:
            self._loop.call_soon(self.deliver)

    def set_event_handler(self, handler: k.EventHandler | None) -> None:
        """Where kernel events go."""
        self.handler = handler

    def _run(self, cmd: object) -> object:
        try:
            return self.client.kernel(cmd)
        except MonitorError as exc:
            raise k.KernelError(str(exc), command=cmd) from None

    def get_spi(self, cmd: k.GetSPI) -> int:
        """Reserve an inbound SPI."""
        result = self._run(cmd)
        if not isinstance(result, int):
            raise k.KernelError("GetSPI: no SPI in the answer", command=cmd)
        return result

    def add_sa(self, cmd: k.AddSA) -> None:
        """Install an SA."""
        self._run(cmd)

    def delete_sa(self, cmd: k.DeleteSA) -> None:
        """Remove an SA."""
        self._run(cmd)

    def query_sa(self, cmd: k.QuerySA) -> k.SAStats | None:
        """Counters of an SA."""
        result = self._run(cmd)
        return result if isinstance(result, k.SAStats) else None

    def add_flow(self, cmd: k.AddFlow) -> None:
        """Install a flow."""
        self._run(cmd)

    def delete_flow(self, cmd: k.DeleteFlow) -> None:
        """Remove a flow."""
        self._run(cmd)

    def flush(self, cmd: k.Flush) -> None:
        """Remove what this daemon installed."""
        self._run(cmd)

    def bypass_socket(self, sock: socket.socket) -> None:
        """Done by the parent when it binds."""

    def enable_udp_encap(self, sock: socket.socket) -> None:
        """Done by the parent when it binds."""

    def dispatch(self) -> bool:
        """Read one message from the parent (the channel is readable); False if it is gone.

        Never blocks: in the loop iteration that found the channel readable, a request made
        by an earlier callback (a datagram's handling) may have taken the message off it; a
        blocking read would then stall the whole daemon until the parent's next message."""
        try:
            message, fds = recv_message(self.client.sock, wait=False)
        except BlockingIOError:
            self.deliver()
            return True
        except (ConnectionError, OSError):
            return False
        except ValueError as exc:
            log.warning("monitor client: bad message: %s", exc)
            return True
        for fd in fds:
            os.close(fd)
        if message is None:
            return False
        if "event" in message:
            self.client._queue_event(message["event"])
        self.deliver()
        return True

    def deliver(self) -> None:
        """Hand queued kernel events to the handler."""
        events, self.client.pending_events = self.client.pending_events, []
        for event in events:
            if self.handler is not None:
                self.handler(event)


class MonitorAuth:
    """The child's key source (ike.auth.AuthSource): the parent reads keys and certificates.

    isakmpd's child reads PKI files through the monitor; here the parent holds the pki Store
    (loaded before the fork) and answers lookups, so nothing is read inside the chroot.
    """

    def __init__(self, client: MonitorClient) -> None:
        self.client = client
        self._keys: dict[str, tuple[str, rsa.RSAPrivateKey]] = {}
        """Parsed signing keys by local ID, with the fingerprint the parent gave them."""
        self._certs: dict[str, list[bytes]] = {}
        """Certificates that came with the last key answer, for the ``certificates`` call
        that follows it in the same Phase 1."""

    def _ask(self, what: str, ident: str, **extra: Any) -> dict[str, Any]:
        try:
            return self.client.raw_request({"op": "auth", "what": what, "id": ident, **extra})
        except (MonitorError, OSError, ValueError) as exc:
            log.warning("pki through the monitor: %s of %s: %s", what, ident, exc)
            return {}

    def private_key(self, local_id: str) -> rsa.RSAPrivateKey | None:
        """Our signing key, read by the parent: one request brings the certificates too, and
        the key is parsed again only when the parent says it changed."""
        have = self._keys.get(local_id)
        extra = {"have": have[0]} if have is not None else {}
        answer = self._ask("local", local_id, **extra)
        self._certs[local_id] = [bytes.fromhex(str(c)) for c in answer.get("certs", [])]
        fingerprint = answer.get("key")
        der = answer.get("der")
        if have is not None and fingerprint == have[0] and der is None:
            return have[1]
        self._keys.pop(local_id, None)
        if not fingerprint or not der:
            return None
        key = serialization.load_der_private_key(bytes.fromhex(str(der)), None)
        if not isinstance(key, rsa.RSAPrivateKey):
            return None
        self._keys[local_id] = (str(fingerprint), key)
        return key

    def certificates(self, local_id: str) -> Sequence[bytes]:
        """Our certificates for CERT payloads (those of the key answer just before, if any)."""
        certs = self._certs.pop(local_id, None)
        if certs is not None:
            return certs
        return [bytes.fromhex(c) for c in self._ask("certificates", local_id).get("certs", [])]

    def peer_key(self, peer_id: str, certificates: Sequence[bytes]) -> PeerKey | None:
        """The peer's key as verified by the parent's pki Store."""
        answer = self._ask("peer_key", peer_id, certs=[c.hex() for c in certificates])
        peer = answer.get("peer")
        if not peer:
            return None
        key = serialization.load_der_public_key(bytes.fromhex(peer["spki"]))
        if not isinstance(key, rsa.RSAPublicKey):
            return None
        return PeerKey(key, tuple(peer["principals"]), peer.get("subject_dn", ""))

    def reload(self) -> list[str]:
        """Have the parent reread the CA, certificate and CRL directories."""
        return [str(p) for p in self._ask("reload", "").get("problems", [])]

"""The Linux backend: SAs and flows through XFRM netlink, ACQUIRE/EXPIRE events back.

One socket for requests (with extended ACK so errors carry the kernel's own text), one bound to
the ACQUIRE and EXPIRE multicast groups for events.  Everything the daemon installs is tracked,
so shutdown and the FIFO ``t``/``T`` commands remove exactly that and nothing else.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import select
import socket
import struct
import time

from ike.kernel import netlink
from ike.kernel.interface import (
    AddFlow,
    Address,
    AddSA,
    DeleteFlow,
    DeleteSA,
    Direction,
    EncapType,
    EventHandler,
    Expire,
    Flush,
    GetSPI,
    KernelError,
    KernelEvent,
    QuerySA,
    SAStats,
    TrafficSelector,
)

log = logging.getLogger("ike.kernel")

IP_XFRM_POLICY = 17
IPV6_XFRM_POLICY = 35
SOL_UDP = 17
UDP_ENCAP = 100

SAKey = tuple[Address, int, int]  # (dst, spi, DOI proto)
FlowKey = tuple[TrafficSelector, Direction]


class XfrmKernel:
    """XFRM netlink backend (Linux).  Needs CAP_NET_ADMIN in the network namespace.

    ``nat_mapping`` also subscribes to NAT-T mapping changes (:class:`NatMapping` events).
    """

    name = "xfrm"

    def __init__(self, *, events: bool = True, nat_mapping: bool = False,
                 rcvbuf: int = 1 << 20) -> None:
        self._want_events = events
        self._groups = netlink.XFRMGRP_ACQUIRE | netlink.XFRMGRP_EXPIRE
        if nat_mapping:
            self._groups |= netlink.XFRMGRP_MAPPING
        self._rcvbuf = rcvbuf
        self._req: socket.socket | None = None
        self._ev: socket.socket | None = None
        self._seq = int(time.time()) & 0x7FFFFFFF
        self._handler: EventHandler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sas: dict[SAKey, Address] = {}  # installed SAs -> their source address
        self.larval: dict[SAKey, Address] = {}  # SPIs from ALLOCSPI not yet completed
        self.flows: dict[FlowKey, AddFlow] = {}

    # ----------------------------------------------------------------- lifecycle
    def open(self) -> None:
        """Open the request socket and, unless disabled, the event socket."""
        if self._req is not None:
            return
        try:
            req = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                socket.NETLINK_XFRM)
            req.setsockopt(netlink.SOL_NETLINK, netlink.NETLINK_EXT_ACK, 1)
            req.bind((0, 0))
            ev = None
            if self._want_events:
                ev = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                   socket.NETLINK_XFRM)
                ev.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._rcvbuf)
                ev.bind((0, self._groups))
                ev.setblocking(False)
        except OSError as e:
            raise KernelError(f"cannot open XFRM netlink socket: {e.strerror}",
                              errno_value=e.errno or 0) from None
        self._req, self._ev = req, ev

    def close(self) -> None:
        """Stop watching events and close the sockets (installed state stays)."""
        if self._loop is not None and self._ev is not None:
            self._loop.remove_reader(self._ev.fileno())
        self._loop = None
        for sock in (self._req, self._ev):
            if sock is not None:
                sock.close()
        self._req = self._ev = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver kernel events to the handler from this loop."""
        self.open()
        if self._ev is not None and self._loop is None:
            loop.add_reader(self._ev.fileno(), self._on_readable)
            self._loop = loop

    def set_event_handler(self, handler: EventHandler | None) -> None:
        """Where ACQUIRE/EXPIRE/POLEXPIRE events go."""
        self._handler = handler

    # ----------------------------------------------------------------- requests
    def _request(self, msg: bytes, command: object, dump: bool = False) -> list[netlink.NlMsg]:
        """Send one request; return its replies (raises KernelError for an error answer)."""
        self.open()
        assert self._req is not None
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        seq = self._seq
        data = bytearray(msg)
        struct.pack_into("=I", data, 8, seq)
        try:
            self._req.send(bytes(data))
        except OSError as e:
            raise KernelError(f"netlink send: {e.strerror}", errno_value=e.errno or 0,
                              command=command) from None
        flags = struct.unpack_from("=H", data, 6)[0]
        wants_ack = bool(flags & netlink.NLM_F_ACK)
        try:
            return self._replies(seq, command, dump, wants_ack)
        except netlink.NetlinkDecodeError as e:
            raise KernelError(f"undecodable kernel answer: {e}", command=command) from None

    def _replies(self, seq: int, command: object, dump: bool,
                 wants_ack: bool) -> list[netlink.NlMsg]:
        """The replies to request *seq*, read until its ACK, error, DONE or only reply."""
        assert self._req is not None
        replies: list[netlink.NlMsg] = []
        while True:
            ready, _, _ = select.select([self._req], [], [], 5.0)
            if not ready:
                raise KernelError("no answer from the kernel within 5 s",
                                  errno_value=errno.ETIMEDOUT, command=command)
            buf = self._req.recv(1 << 16)
            for reply in netlink.split_messages(buf):
                if reply.seq != seq:
                    continue
                if reply.kind == netlink.NLMSG_ERROR:
                    err, extack = netlink.decode_error(reply)
                    if err:
                        raise KernelError(netlink.error_message(err, extack), errno_value=err,
                                          command=command, extack=extack)
                    return replies
                if reply.kind == netlink.NLMSG_DONE:
                    return replies
                replies.append(reply)
                if not dump and not wants_ack:
                    return replies

    def get_spi(self, cmd: GetSPI) -> int:
        """ALLOCSPI; the SPI stays larval until the inbound AddSA (or xfrm_acq_expires)."""
        replies = self._request(netlink.encode_alloc_spi(cmd), cmd)
        if not replies or replies[0].kind != netlink.XfrmMsg.NEWSA:
            raise KernelError("ALLOCSPI: no NEWSA in the kernel's answer", command=cmd)
        spi = self._sa_info(replies[0], cmd).spi
        self.larval[(cmd.dst, spi, int(cmd.proto))] = cmd.src
        return spi

    def add_sa(self, cmd: AddSA) -> None:
        """UPDSA for an inbound SA on our allocated SPI, NEWSA otherwise (and when the larval
        SPI already timed out, as strongSwan does)."""
        key = (cmd.dst, cmd.spi, int(cmd.proto))
        update = cmd.inbound and key in self.larval
        try:
            self._request(netlink.encode_add_sa(cmd, update=update), cmd)
        except KernelError as e:
            if not (update and e.errno == errno.ESRCH):
                raise
            self._request(netlink.encode_add_sa(cmd), cmd)
        self.larval.pop(key, None)
        self.sas[key] = cmd.src
        log.debug("installed %s SA spi 0x%08x %s -> %s", "inbound" if cmd.inbound else
                  "outbound", cmd.spi, cmd.src, cmd.dst)

    def delete_sa(self, cmd: DeleteSA) -> None:
        """DELSA; forgets the SA even if the kernel had already removed it (then raises)."""
        self._forget((cmd.dst, cmd.spi, int(cmd.proto)))
        self._request(netlink.encode_delete_sa(cmd), cmd)

    def query_sa(self, cmd: QuerySA) -> SAStats | None:
        """GETSA counters; None when the kernel has no such SA."""
        try:
            replies = self._request(netlink.encode_get_sa(cmd), cmd)
        except KernelError as e:
            if e.errno in (errno.ESRCH, errno.ENOENT):
                return None
            raise
        if not replies:
            return None
        return self._sa_info(replies[0], cmd).stats

    def _sa_info(self, reply: netlink.NlMsg, command: object) -> netlink.SAInfo:
        """A NEWSA answer's ``xfrm_usersa_info``, bad bytes being a KernelError as well."""
        try:
            return netlink.decode_usersa_info(reply.body)
        except netlink.NetlinkDecodeError as e:
            raise KernelError(f"undecodable kernel answer: {e}", command=command) from None

    def add_flow(self, cmd: AddFlow) -> None:
        """NEWPOLICY; an existing identical flow is replaced (UPDPOLICY), as on rekeying."""
        try:
            self._request(netlink.encode_add_flow(cmd), cmd)
        except KernelError as e:
            if e.errno != errno.EEXIST:
                raise
            self._request(netlink.encode_add_flow(cmd, update=True), cmd)
        self.flows[(cmd.selector, cmd.direction)] = cmd

    def delete_flow(self, cmd: DeleteFlow) -> None:
        """DELPOLICY by selector and direction."""
        self.flows.pop((cmd.selector, cmd.direction), None)
        self._request(netlink.encode_delete_flow(cmd), cmd)

    def flush(self, cmd: Flush) -> None:
        """Remove every flow and SA this backend installed (``everything``: the whole
        namespace's SPD and SAD).  Already-gone entries are fine; other errors are raised
        after everything else has been tried."""
        if cmd.everything:
            self._request(netlink.encode_flush_policy(), cmd)
            self._request(netlink.encode_flush_sa(), cmd)
            self.flows.clear()
            self.sas.clear()
            self.larval.clear()
            return
        first: KernelError | None = None
        removals: list[DeleteFlow | DeleteSA] = [DeleteFlow(sel, d) for sel, d in self.flows]
        removals += [DeleteSA(proto, spi, src, dst)
                     for (dst, spi, proto), src in {**self.larval, **self.sas}.items()]
        for removal in removals:
            try:
                if isinstance(removal, DeleteFlow):
                    self.delete_flow(removal)
                else:
                    self.delete_sa(removal)
            except KernelError as e:
                if e.errno not in (errno.ENOENT, errno.ESRCH) and first is None:
                    first = e
        if first is not None:
            raise first

    # ----------------------------------------------------------------- sockets
    def bypass_socket(self, sock: socket.socket) -> None:
        """Per-socket allow policies (in and out) so IKE traffic never needs an SA."""
        if sock.family == socket.AF_INET6:
            level, opt, fam = socket.IPPROTO_IPV6, IPV6_XFRM_POLICY, socket.AF_INET6
        else:
            level, opt, fam = socket.IPPROTO_IP, IP_XFRM_POLICY, socket.AF_INET
        try:
            for direction in (Direction.IN, Direction.OUT):
                sock.setsockopt(level, opt, netlink.socket_policy(fam, direction))
        except OSError as e:
            raise KernelError(f"cannot set the IPsec bypass policy on the IKE socket: "
                              f"{e.strerror}", errno_value=e.errno or 0) from None

    def enable_udp_encap(self, sock: socket.socket) -> None:
        """UDP_ENCAP_ESPINUDP: the kernel takes ESP from this :4500 socket, IKE stays ours."""
        try:
            sock.setsockopt(SOL_UDP, UDP_ENCAP, EncapType.ESPINUDP)
        except OSError as e:
            raise KernelError(f"cannot enable ESP-in-UDP decapsulation: {e.strerror}",
                              errno_value=e.errno or 0) from None

    # ----------------------------------------------------------------- events
    def _on_readable(self) -> None:
        for event in self._drain():
            self._dispatch(event)

    def _drain(self) -> list[KernelEvent]:
        """Every event waiting on the event socket (non-blocking)."""
        events: list[KernelEvent] = []
        if self._ev is None:
            return events
        while True:
            try:
                buf = self._ev.recv(1 << 16)
            except BlockingIOError:
                return events
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    log.warning("kernel events were lost (netlink receive buffer overrun); "
                                "checking our SAs against the kernel's")
                    events.extend(self._resync())
                    continue
                raise
            messages = netlink.split_messages(buf)
            while True:
                # an undecodable message costs itself only; after a framing error nothing more
                # can be found in the datagram (the generator has then finished)
                try:
                    msg = next(messages, None)
                    if msg is None:
                        break
                    event = netlink.decode_event(msg)
                except netlink.NetlinkDecodeError as e:
                    log.warning("undecodable XFRM event ignored: %s", e)
                    continue
                if event is not None and not self._stale(event):
                    self._track(event)
                    events.append(event)

    def _resync(self) -> list[KernelEvent]:
        """After lost events: every tracked SA the kernel no longer has is reported as a hard
        expiry (the events that said so may have been among the lost; a later copy of one of
        them may still arrive, and repeats are harmless to the engine)."""
        present = set()
        try:  # an SA missing from an unreadable list must not be reported as expired
            for msg in self._request(netlink.encode_dump_sa(), "GETSA dump", dump=True):
                if msg.kind == netlink.XfrmMsg.NEWSA:
                    sa = self._sa_info(msg, "GETSA dump")
                    present.add((sa.dst, sa.spi, int(sa.proto)))
        except KernelError as e:
            log.warning("cannot list the kernel's SAs: %s", e)
            return []
        gone: list[KernelEvent] = []
        for (dst, spi, proto), src in {**self.larval, **self.sas}.items():
            if (dst, spi, proto) not in present:
                gone.append(Expire(proto, spi, src, dst, hard=True))
                self._forget((dst, spi, proto))
        return gone

    def _stale(self, event: KernelEvent) -> bool:
        """A hard EXPIRE of one of our SAs that the kernel still has is about a predecessor
        with the same (dst, spi, proto): the larval state from ALLOCSPI that timed out just
        before the inbound SA was installed by NEWSA.  Passing it on would tear down the live
        SA, so it is dropped."""
        if not (isinstance(event, Expire) and event.hard):
            return False
        key = (event.dst, event.spi, int(event.proto))
        if key not in self.sas:
            return False
        try:
            alive = self.query_sa(QuerySA(event.proto, event.spi, event.src, event.dst))
        except KernelError:
            return False
        if alive is not None:
            self.larval.pop(key, None)
            log.debug("ignoring the expiry of a predecessor of SA spi 0x%08x", event.spi)
            return True
        return False

    def _track(self, event: KernelEvent) -> None:
        """A hard expiry means the kernel deleted the SA: stop tracking it."""
        if isinstance(event, Expire) and event.hard:
            self._forget((event.dst, event.spi, int(event.proto)))

    def _forget(self, key: SAKey) -> None:
        """Stop tracking an SA, installed or still larval."""
        self.sas.pop(key, None)
        self.larval.pop(key, None)

    def _dispatch(self, event: KernelEvent) -> None:
        if self._handler is not None:
            self._handler(event)

    def read_events(self, timeout: float) -> list[KernelEvent]:
        """Wait up to ``timeout`` seconds for events and return them (for tools and tests;
        the daemon uses :meth:`attach`).  Returns as soon as at least one arrived."""
        self.open()
        if self._ev is None:
            return []
        deadline = time.monotonic() + timeout
        while True:
            events = self._drain()
            left = deadline - time.monotonic()
            if events or left <= 0:
                return events
            select.select([self._ev], [], [], left)

"""The sans-I/O IKEv1 engine: datagrams and time in, datagrams, events and kernel commands out.

    engine = Engine(conf, rand=RandomSource(), kernel=FakeKernel())
    engine.receive_datagram(data, src, dst, now)      # never raises on any datagram
    for data, src, dst in engine.datagrams_to_send(now): ...
    engine.get_timer() / engine.handle_timer(now)     # one deadline to re-arm
    engine.next_event()                               # Phase1Done, Phase2Done, SADeleted, ...
    engine.connect(name, now) / delete(name, now) / acquire(event, now) / expire(event, now)

No clock, socket or file access happens here: time is an argument, randomness comes from the one
injected RandomSource, kernel work goes to the injected backend as command dataclasses.
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Callable, Collection
from typing import Any, cast

from ike.auth import AuthSource
from ike.conf import Conf
from ike.crypto.cipher import CipherError
from ike.crypto.rand import RandomSource
from ike.doi.constants import ProtocolId
from ike.events import (
    EngineEvent,
    ExchangeFailed,
    NotifyReceived,
    Phase1Done,
    SADeleted,
)
from ike.exchange import (
    connections,
    dpd,
    informational,
    install,
    natt,
    rekey,
    rules,
    transaction,
)
from ike.exchange.aggressive import AggressiveMode
from ike.exchange.base import Exchange, cleartext_of
from ike.exchange.confcache import ConfCache
from ike.exchange.errors import ExchangeError
from ike.exchange.install import REKEY_RETIRE_GRACE
from ike.exchange.main import MainMode
from ike.exchange.phase1 import Phase1
from ike.exchange.quick import QuickMode
from ike.kernel import interface as k
from ike.policy import PolicySession
from ike.sa import IPsecSA, IsakmpSA, SAState, SATable
from ike.timers import NEVER, TimedDict
from ike.wire import (
    Delete,
    ExchangeType,
    Identification,
    Message,
    Notify,
    NotifyType,
    WireError,
)
from ike.wire.constants import Doi

__all__ = ["REKEY_RETIRE_GRACE", "Datagram", "Engine"]

log = logging.getLogger("ike.engine")
Addr = tuple[str, int]
Datagram = tuple[bytes, Addr, Addr]
ZERO = bytes(8)
#: The receive path's constants, bound once (no tuple per message, no slow Enum class read).
_PHASE1_TYPES = frozenset((ExchangeType.ID_PROT, ExchangeType.AGGRESSIVE))
_PHASE2_TYPES = frozenset((ExchangeType.QUICK_MODE, ExchangeType.TRANSACTION))
_INFO, _QUICK_MODE, _ID_PROT = ExchangeType.INFO, ExchangeType.QUICK_MODE, ExchangeType.ID_PROT
_USABLE = (SAState.READY, SAState.FADING)  # a tuple: Enum.__hash__ runs in Python
ISAKMP_PROTO = 1


class Engine:
    """One IKEv1 daemon's protocol state: SAs, exchanges, timers, outgoing datagrams, events."""

    def __init__(
        self,
        conf: Conf,
        *,
        rand: RandomSource | None = None,
        kernel: k.KernelBackend | None = None,
        auth: AuthSource | None = None,
        policy_factory: Callable[[], PolicySession] | None = None,
        use_keynote: bool | None = None,
        local_address: str | None = None,
        local_port: int = 500,
        nat_traversal: bool = False,
        natt_port: int = 4500,
        tag: str = "",
        wall_offset: float = 0.0,
        utc_offset: int = 0,
    ) -> None:
        from ike.kernel.none import NoneKernel

        self.conf: Conf = ConfCache(conf)
        self.rand = rand if rand is not None else RandomSource()
        self.kernel: Any = kernel if kernel is not None else NoneKernel()
        self.auth = auth
        self.policy_factory = policy_factory
        if use_keynote is None:
            use_keynote = (conf.get_str("General", "Use-Keynote") or "yes").lower().startswith(
                "yes")
        self.use_keynote = use_keynote
        self.local_address = local_address
        self.local_port = local_port
        self.nat_traversal = nat_traversal
        self.natt_port = natt_port
        self.tag = tag or "isakmpd"
        self.wall_offset = wall_offset
        self.utc_offset = utc_offset
        self.retransmits = conf.get_num("General", "Retransmits", 3)
        self.exchange_max_time = float(conf.get_num("General", "Exchange-max-time", 120))
        self.sas = SATable()
        self.timers = self.sas.timers  # the deadlines of exchanges and SAs (ike.timers)
        self.exchanges: TimedDict[tuple[bytes, int], Exchange] = TimedDict(self.timers)
        """By (cookies, M-ID); with the SAs' tables, on the timer heap."""
        self._timed = self.timers, self.exchanges.view, self.sas.isakmp.view, self.sas.ipsec.view
        self.contacted: set[str] = set()
        self.pending: dict[bytes, list[tuple[str, int]]] = {}
        """Connections waiting for the Phase 1 SA with these cookies."""
        self.client_ids: dict[str, Identification | None] = {}
        """Client ID payloads built from IPsec-ID sections, by section (cleared by reload)."""
        self.passive = False
        """isakmpd's passive mode (``-S``, FIFO ``M passive``): no exchange is initiated, not
        even a rekey; peers are still answered."""
        self.active_hook: Callable[[], Collection[str]] | None = None
        """The runtime's list of active connections (``is_active``), when it keeps one."""
        self.capture_cleartext = False
        """Keep the cleartext of recent encrypted messages for ``cleartext()`` (pcap)."""
        self._cleartext: dict[bytes, bytes] = {}
        self._out: deque[Datagram] = deque()
        self._events: deque[EngineEvent] = deque()
        self.cfg_states: dict[bytes, transaction.CfgState] = {}
        self.installed: dict[tuple[int, int, bool], k.AddSA] = {}
        """The SAs we installed, by (protocol, SPI, inbound)."""
        """XAUTH and mode-config results by ISAKMP SA cookies (ike.exchange.transaction)."""
        self.cfg_hook: Callable[[Any], None] | None = None
        """Applies received mode-config (a ModeConfigDone) on the host; set by the runtime."""
        self.xauth_check: Callable[[IsakmpSA, str, bytes], bool] = (
            lambda sa, user, password: transaction.check_password(self, sa, user, password))
        """The XAUTH server's credential source (default: the peer's XAUTH-Users section)."""

    # ================================================================ public API

    def receive_datagram(self, data: bytes, src: Addr, dst: Addr, now: float) -> None:
        """Handle one UDP payload from ``src`` to us at ``dst``; never raises."""
        try:
            self._receive(bytes(data), src, dst, now)
        except Exception:
            log.exception("%s internal error on a datagram from %s:%d", self.tag, *src)

    def datagrams_to_send(self, now: float) -> list[Datagram]:
        """Everything queued for sending: (payload, our address, peer address)."""
        out = list(self._out)
        self._out.clear()
        return out

    def get_timer(self) -> float | None:
        """The next moment ``handle_timer`` must run (None: nothing scheduled)."""
        # After every datagram: beyond a few SAs the top of a heap (ike.timers), else one pass
        # with a running minimum over every deadline ("never" is infinity: one comparison each).
        timers, exchanges, isakmp, ipsec = self._timed  # (the tables' live views)
        if len(exchanges) + len(isakmp) + len(ipsec) > timers.scan_limit:
            best = timers.earliest()
        else:  # what each object's timer_min counts, without a call per object
            best = NEVER
            for ex in exchanges:  # its deadline, retransmission, lingering
                if not ex.finished and ex.deadline < best:
                    best = ex.deadline
                if (t := ex.retransmit_at) is not None and t < best:
                    best = t
                if (t := ex.linger_until) is not None and t < best:
                    best = t
            for sa in isakmp:
                if (t := sa.soft_at) is not None and t < best:
                    best = t
                if (t := sa.hard_at) is not None and t < best:
                    best = t
                if sa.dpd is not None and sa.dpd.next_at < best:
                    best = sa.dpd.next_at
                if sa.nat is not None and (t := sa.nat.keepalive_at) is not None and t < best:
                    best = t
            for ipsa in ipsec:
                if (t := ipsa.soft_at) is not None and t < best:
                    best = t
                if (t := ipsa.hard_at) is not None and t < best:
                    best = t
                if (t := ipsa.out_at) is not None and t < best:
                    best = t
        if self.cfg_states and (t := transaction.next_deadline(self)) is not None and t < best:
            best = t
        return None if best == NEVER else best

    def handle_timer(self, now: float) -> None:
        """Retransmit, time out exchanges, expire and rekey SAs whose time has come."""
        try:
            self._handle_timer(now)
        except Exception:  # a timer must not stop the runtime's loop
            log.exception("%s internal error in a timer", self.tag)

    def _handle_timer(self, now: float) -> None:
        # Only the objects with a deadline due (ike.timers), each table in turn.
        with self.timers.run(now) as due:
            for ex in due.take(Exchange):  # type: ignore[type-abstract]  # any subclass
                if ex.retransmit_at is not None and ex.retransmit_at <= now:
                    ex.retransmit(now)
                if not ex.finished and ex.deadline <= now:
                    self._fail(ex, ExchangeError(NotifyType(0), "exchange max time exceeded",
                                                 send=False), now)
                elif ex.finished and ex.linger_until is not None and ex.linger_until <= now:
                    self.exchanges.pop(ex.key, None)
            for sa in due.take(IsakmpSA):
                if sa.soft_at is not None and sa.soft_at <= now:
                    rekey.soft_expire(self, sa, now)
                if sa.hard_at is not None and sa.hard_at <= now:
                    rekey.hard_expire(self, sa, now)
                    self._delete_isakmp(sa, now, notify_peer=True,
                                        reason="replaced by rekey" if sa.replaced else "expired")
                elif sa.dpd is not None and sa.dpd.next_at <= now:
                    dpd.due(self, sa, now)
                if sa.nat is not None and sa.nat.keepalive_at is not None \
                        and sa.nat.keepalive_at <= now and sa.cookies in self.sas.isakmp:
                    natt.keepalive(self, sa, now)
            ipsec_sas = due.take(IPsecSA)
            # held-back outbound SAs first: a late timer must not retire an SA before its successor
            for ipsa in [s for s in ipsec_sas if s.out_at is not None and s.out_at <= now]:
                install.outbound_due(self, ipsa, now)
            for ipsa in [s for s in ipsec_sas if s in self.sas.ipsec]:
                if ipsa.soft_at is not None and ipsa.soft_at <= now:
                    ipsa.soft_at = None
                    rekey.ipsec_soft_expire(self, ipsa, now)
                if ipsa.hard_at is not None and ipsa.hard_at <= now:
                    if ipsa.replaced and not install.may_retire(self, ipsa, now):
                        continue  # the peer still sends on it: looked at again shortly
                    ipsa.hard_at = None
                    self._delete_ipsec(ipsa, now, notify_peer=True,
                                       reason="replaced by rekey" if ipsa.replaced else "expired")
        if self.cfg_states:
            transaction.expire_waits(self, now)

    def next_event(self) -> EngineEvent | None:
        """Pop the oldest event, or None."""
        return self._events.popleft() if self._events else None

    def start(self, now: float) -> None:
        """Bring up every connection of ``[Phase 2]:Connections`` (isakmpd at start-up)."""
        for name in self.conf.get_list("Phase 2", "Connections"):
            self.connect(name, now)

    def connect(self, name: str, now: float, *, acquire_seq: int = 0) -> None:
        """Negotiate IPsec-connection ``name`` (or just Phase 1 with ISAKMP-peer ``name``)."""
        if self.passive:
            log.debug("%s passive mode: not negotiating %s", self.tag, name)
            return
        phase = self.conf.get_num(name, "Phase", 0)
        if phase == 1:
            self._phase1_initiate(name, now)
            return
        peer_section = self.conf.get_str(name, "ISAKMP-peer")
        if phase != 2 or peer_section is None:
            log.warning("%s connect: %s is not a Phase 1 or 2 section", self.tag, name)
            return
        address = self.conf.get_str(peer_section, "Address") or ""
        for sa in self.sas.ready_isakmp(address):
            self._quick_initiate(sa, name, now, acquire_seq)
            return
        for cookies, waiting in self.pending.items():
            half = self.sas.isakmp.get(cookies)
            if half is not None and half.peer[0] == address:
                if all(n != name for n, _seq in waiting):
                    waiting.append((name, acquire_seq))
                return
        started = self._phase1_initiate(peer_section, now)
        if started is not None:
            self.pending.setdefault(started.cookies, []).append((name, acquire_seq))

    def delete(self, name: str, now: float) -> None:
        """Tear down a connection's IPsec SAs, or the ISAKMP SAs with a peer section/address."""
        for ipsa in self.sas.ipsec_by_name(name):
            self._delete_ipsec(ipsa, now, notify_peer=True, reason="deleted by request")
        address = self.conf.get_str(name, "Address") or name
        for sa in list(self.sas.isakmp.values()):
            if sa.name == name or sa.peer[0] == address or sa.cookies.hex() == name:
                self._delete_isakmp(sa, now, notify_peer=True, reason="deleted by request")

    def delete_sa(self, cookies: bytes, message_id: int | None, now: float) -> bool:
        """Delete exactly one SA, telling the peer: the ISAKMP SA with these cookies (no
        message ID), or the IPsec SA that Quick Mode ``message_id`` on them negotiated (FIFO
        ``d``).  False when there is no such SA."""
        if message_id is None:
            sa = self.sas.isakmp.get(cookies)
            if sa is None:
                return False
            self._delete_isakmp(sa, now, notify_peer=True, reason="deleted by request")
            return True
        for ipsa in self.sas.ipsec:
            if ipsa.cookies == cookies and ipsa.message_id == message_id:
                self._delete_ipsec(ipsa, now, notify_peer=True, reason="deleted by request")
                return True
        return False

    def is_active(self, name: str) -> bool:
        """Whether connection ``name`` is kept up: in ``[Phase 2]:Connections`` or added at run
        time (the daemon's FIFO ``c``, through ``active_hook``)."""
        if self.active_hook is not None and name in self.active_hook():
            return True
        return name in self.conf.get_list("Phase 2", "Connections")

    def acquire(self, event: k.Acquire, now: float) -> None:
        """A kernel ACQUIRE: negotiate the connection to that peer whose IDs cover the flow's
        selector, else the first connection to that peer."""
        name = connections.for_acquire(self, event)
        if name is None:
            log.warning("%s acquire for %s: no connection", self.tag, event.dst)
            return
        self.connect(name, now, acquire_seq=event.seq)

    def expire(self, event: k.Expire, now: float) -> None:
        """A kernel EXPIRE: soft renegotiates, hard removes the SA and tells the peer."""
        ipsa = self.sas.ipsec_by_spi(int(event.proto), event.spi)
        if ipsa is None:
            return
        if event.hard:  # the kernel removed that SA itself: the rest of the bundle goes
            self._delete_ipsec(ipsa, now, notify_peer=True, reason="kernel hard expire",
                               gone=(int(event.proto), event.spi, event.dst))
        else:
            rekey.ipsec_soft_expire(self, ipsa, now)

    def cleartext(self, data: bytes) -> bytes | None:
        """The decrypted form of an encrypted message this engine recently sent or accepted
        (only with ``capture_cleartext`` on), for packet captures."""
        return self._cleartext.get(hashlib.sha1(data).digest())

    def remember_cleartext(self, data: bytes, clear: bytes) -> None:
        """Note a message's cleartext (a bounded memory of the last 256)."""
        if len(self._cleartext) >= 256:
            self._cleartext.pop(next(iter(self._cleartext)))
        self._cleartext[hashlib.sha1(data).digest()] = clear

    def reload(self, conf: Conf | None = None) -> None:
        """Use a new configuration, or forget cached reads after the old one changed (a FIFO
        transaction, SIGHUP).  Running exchanges keep what they already read."""
        self.client_ids.clear()
        if conf is not None:
            self.conf = ConfCache(conf)
        elif isinstance(self.conf, ConfCache):
            self.conf.invalidate()
        self.retransmits = self.conf.get_num("General", "Retransmits", 3)
        self.exchange_max_time = float(self.conf.get_num("General", "Exchange-max-time", 120))

    # ================================================================ services for tasks

    def emit(self, event: EngineEvent) -> None:
        """Report an event to the runtime (for exchange tasks)."""
        self._events.append(event)

    def queue(self, data: bytes, local: Addr, peer: Addr) -> None:
        """Queue a datagram for the runtime to send."""
        self._out.append((data, local, peer))

    def retransmit_delay(self, xmits: int) -> float:
        """isakmpd's back-off: ``xmits * 2 + 5`` seconds."""
        return float(xmits * 2 + 5)

    def new_message_id(self, sa: IsakmpSA) -> int:
        """A fresh non-zero M-ID never used on this SA."""
        while True:
            mid = self.rand.uint32()
            if mid and mid not in sa.message_ids:
                sa.message_ids.add(mid)
                return mid

    def get_spi(self, protocol: int, src: str, dst: str, seq: int = 0) -> int:
        """Reserve an inbound SPI (CPI for IPComp) from the kernel."""
        low, high = ((k.IPCOMP_CPI_LOW, k.IPCOMP_CPI_HIGH) if protocol == 4
                     else (k.IPSEC_SPI_LOW, k.IPSEC_SPI_HIGH))
        try:
            cmd = k.GetSPI(connections.address(src), connections.address(dst), protocol, seq,
                           low, high)
            return int(self.kernel.get_spi(cmd))
        except k.KernelError as e:
            raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN, f"kernel: no SPI: {e}") from None

    def policy_session(self, sa: IsakmpSA) -> PolicySession:
        """The KeyNote session of this ISAKMP SA, created from the policy on first use."""
        if sa.policy_session is None:
            if self.policy_factory is None:
                raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN, "no policy loaded")
            try:
                session = self.policy_factory()
                prime = getattr(sa.peer_key, "prime", None)
                if callable(prime):  # chain assertions and the peer's KeyNote credentials
                    prime(session)
                sa.policy_session = session
            except Exception as e:  # whatever the policy source raises, the SA is refused
                raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN,
                                    f"policy unavailable: {e}") from None
        return cast(PolicySession, sa.policy_session)

    def passive_connection(self, sa: IsakmpSA, idci: Identification | None,
                           idcr: Identification | None) -> str:
        """The passive connection whose IDs match the peer's (isakmpd.md 6.3 responder)."""
        return connections.passive_lookup(self, sa, idci, idcr)

    def phase1_established(self, ex: Phase1, now: float, *, initial_contact: bool) -> None:
        """Phase 1 done: report, honour INITIAL-CONTACT, start waiting Quick Modes."""
        sa = ex.sa
        sa.exchange = ex.kind
        if log.isEnabledFor(logging.INFO):
            log.info("%s ISAKMP SA %s with %s established (%s mode)", self.tag,
                     sa.cookies.hex(), sa.peer[0], ex.kind)
        if initial_contact:
            self._initial_contact(sa, now)
        rekey.mark_replaced(self, sa, now)
        dpd.start(self, sa, now)
        natt.arm_keepalive(self, sa, now)
        self._events.append(Phase1Done(sa.name, sa.cookies, sa.initiator, sa.peer, ex.kind))
        transaction.after_phase1(self, sa, now)
        self.start_pending(sa, now)

    def start_pending(self, sa: IsakmpSA, now: float) -> None:
        """Start the Quick Modes that waited for this ISAKMP SA (or for its XAUTH)."""
        for name, seq in self.pending.pop(sa.cookies, []):
            self._quick_initiate(sa, name, now, seq)

    def peer_dead(self, sa: IsakmpSA, now: float) -> None:
        """DPD gave the peer up: its IPsec SAs and this ISAKMP SA go, without DELETE; the
        active connections among them are negotiated afresh."""
        active = self.conf.get_list("Phase 2", "Connections")
        again: list[str] = []
        for ipsa in list(self.sas.ipsec):
            if ipsa.peer == sa.peer[0]:
                if ipsa.name in active and ipsa.name not in again:
                    again.append(ipsa.name)
                self._delete_ipsec(ipsa, now, notify_peer=False, reason="DPD: peer dead")
        self._delete_isakmp(sa, now, notify_peer=False, reason="DPD: peer dead")
        for name in again:
            self.connect(name, now)

    def _initial_contact(self, sa: IsakmpSA, now: float) -> None:
        """The peer restarted: forget every other SA we hold with it (no DELETE sent)."""
        for other in list(self.sas.isakmp.values()):
            if other is not sa and other.peer[0] == sa.peer[0] and other.state in (
                    SAState.READY, SAState.FADING):
                self._delete_isakmp(other, now, notify_peer=False, reason="INITIAL-CONTACT")
        for ipsa in tuple(self.sas.ipsec.view):  # (a snapshot without a Python call)
            if ipsa.peer == sa.peer[0] and ipsa.cookies != sa.cookies:
                self._delete_ipsec(ipsa, now, notify_peer=False, reason="INITIAL-CONTACT")

    def phase2_established(self, ex: QuickMode, bundle: IPsecSA, now: float) -> None:
        """Quick Mode done: install the SAs and flows, start lifetimes, retire a rekeyed SA."""
        install.established(self, ex, bundle, now)

    # ================================================================ receiving

    def _receive(self, data: bytes, src: Addr, dst: Addr, now: float) -> None:
        try:
            msg = Message.decode(data)
        except WireError as e:
            log.info("%s dropped datagram from %s:%d: %s", self.tag, src[0], src[1], e)
            return
        if msg.message_id == 0 and msg.exchange_type in _PHASE1_TYPES:
            self._receive_phase1(msg, data, src, dst, now)
            return
        sa = self.sas.isakmp.get(msg.icookie + msg.rcookie)
        if sa is None and msg.exchange_type == _INFO:
            sa = self.sas.isakmp.get(msg.icookie + ZERO)  # an answer to our message 1
        if sa is None:
            log.info("%s dropped %s message: unknown cookies %s", self.tag,
                     msg.exchange_type.name, (msg.icookie + msg.rcookie).hex())
            return
        if msg.exchange_type == _INFO:
            self._receive_info(sa, msg, src, now, dst)
            return
        if msg.exchange_type not in _PHASE2_TYPES or msg.message_id == 0:
            log.info("%s dropped %s message: UNSUPPORTED_EXCHANGE_TYPE", self.tag,
                     msg.exchange_type.name)
            return
        if sa.state not in _USABLE or sa.keys is None:
            log.info("%s dropped %s on an unfinished ISAKMP SA", self.tag,
                     msg.exchange_type.name)
            return
        ex = self.exchanges.get((sa.cookies, msg.message_id))
        if ex is None:
            if msg.message_id in sa.message_ids:
                log.info("%s dropped replayed %s %08x", self.tag, msg.exchange_type.name,
                         msg.message_id)
                return
            if msg.exchange_type == _QUICK_MODE and \
                    transaction.xauth_unsettled(self, sa):
                log.info("%s dropped Quick Mode before XAUTH completed", self.tag)
                return
            sa.message_ids.add(msg.message_id)
            ex = (QuickMode(self, sa, msg.message_id, False, now, "")
                  if msg.exchange_type == _QUICK_MODE
                  else transaction.Transaction(self, sa, msg.message_id, False, now, sa.name))
            self.exchanges[ex.key] = ex
        self._run(ex, msg, data, now, src, dst)

    def _receive_phase1(self, msg: Message, data: bytes, src: Addr, dst: Addr,
                        now: float) -> None:
        if msg.rcookie == ZERO:
            sa = self.sas.find_half_open(msg.icookie, src)
            if sa is None:
                self._respond_phase1(msg, data, src, dst, now)
                return
        else:
            sa = self.sas.isakmp.get(msg.icookie + msg.rcookie)
            if sa is None:
                sa = self.sas.isakmp.get(msg.icookie + ZERO)
                if sa is None or not sa.initiator or sa.peer[0] != src[0]:
                    log.info("%s dropped Phase 1 message: INVALID_COOKIE", self.tag)
                    return
                old = sa.cookies
                sa.rcookie = msg.rcookie
                self.sas.rekey_isakmp(sa, old)
                ex0 = self.exchanges.pop((old, 0), None)
                if ex0 is not None:
                    self.exchanges[ex0.key] = ex0
                if old in self.pending:
                    self.pending[sa.cookies] = self.pending.pop(old)
        ex = self.exchanges.get((sa.cookies, 0))
        if ex is None or ex.exchange_type != msg.exchange_type:
            log.info("%s dropped Phase 1 message for no exchange", self.tag)
            return
        if sa.local[0] in ("0.0.0.0", "::") and isinstance(ex, Phase1):
            ex.learn_local(dst)
        self._run(ex, msg, data, now, src, dst)

    def _respond_phase1(self, msg: Message, data: bytes, src: Addr, dst: Addr,
                        now: float) -> None:
        section = self.conf.get_str("Phase 1", src[0]) or self.conf.get_str("Phase 1", "Default")
        if section is None:
            log.info("%s no Default tag in [Phase 1] section", self.tag)
            return
        sa = IsakmpSA(section, False, msg.icookie, dst, src, rcookie=self.rand.bytes(8))
        cls = MainMode if msg.exchange_type == _ID_PROT else AggressiveMode
        try:
            ex: Phase1 = cls(self, sa, False, now, section)
        except ExchangeError as e:
            log.info("%s cannot answer %s: %s", self.tag, src[0], e)
            return
        self.sas.add_isakmp(sa)
        self.exchanges[ex.key] = ex
        self._run(ex, msg, data, now, src, dst)

    def _run(self, ex: Exchange, msg: Message, data: bytes, now: float, src: Addr,
             dst: Addr) -> None:
        if ex.last_in == data:
            if ex.last_out is not None and ex.answers == data:
                log.debug("%s repeated message: resending our last one", self.tag)
                self.queue(ex.last_out, ex.sa.local, ex.sa.peer)
            return
        if data in ex.seen or ex.finished:
            log.info("%s dropped old or late message for %s exchange", self.tag, ex.kind)
            return
        encrypted = msg.ciphertext is not None
        try:
            if encrypted:
                if ex.keystate is None:
                    raise ExchangeError(NotifyType.INVALID_FLAGS, "encrypted before keys exist",
                                        fatal=False)
                ex.decrypt(msg)  # in place: ``msg`` now holds the payloads
            try:
                rules.check(ex.exchange_type, ex.step, msg.payload_types(), encrypted)
            except ExchangeError as e:
                e.fatal = encrypted
                raise
            ex.seen.add(data)
            ex.last_in = data
            ex.retransmit_at = None
            if encrypted and (src, dst) != (ex.sa.peer, ex.sa.local):
                natt.moved(self, ex.sa, src, dst)
            ex.process(msg, now)
        except ExchangeError as e:
            if not e.fatal:
                log.info("%s dropped message for %s exchange: %s", self.tag, ex.kind, e)
                return
            self._fail(ex, e, now)
        except WireError as e:
            self._fail(ex, ExchangeError(e.notify, e.message), now)
        except CipherError as e:
            self._fail(ex, ExchangeError(NotifyType.PAYLOAD_MALFORMED, str(e)), now)

    def nat_mapping(self, event: k.NatMapping, now: float) -> None:
        """The kernel saw ESP-in-UDP from a new address or port (ike.exchange.natt)."""
        natt.mapping_changed(self, event)

    def add_sa(self, cmd: k.AddSA) -> None:
        """Install an SA, remembering the command (a NAT mapping change re-installs it)."""
        self.kernel.add_sa(cmd)
        self.installed[(cmd.proto, cmd.spi, cmd.inbound)] = cmd

    def _receive_info(self, sa: IsakmpSA, msg: Message, src: Addr, now: float,
                      dst: Addr | None = None) -> None:
        if sa.keys is None or sa.state not in (SAState.READY, SAState.FADING):
            for n in msg.all(Notify):
                log.info("%s unauthenticated notify %s from %s", self.tag, n.notify_type.name,
                         src[0])
                self._events.append(NotifyReceived(int(n.notify_type), int(n.protocol),
                                                   bytes(n.spi), bytes(n.data), src, False))
            return
        if msg.message_id in sa.message_ids:
            log.info("%s dropped replayed informational %08x", self.tag, msg.message_id)
            return
        try:
            plain = informational.open_protected(sa, msg)
            rules.check(ExchangeType.INFO, 1, plain.payload_types(), True)
        except (ExchangeError, WireError, CipherError) as e:
            log.info("%s dropped informational from %s: %s", self.tag, src[0], e)
            return
        sa.message_ids.add(msg.message_id)
        if self.capture_cleartext:
            self.remember_cleartext(msg.encode(), cleartext_of(plain))
        if sa.nat is not None and dst is not None and (src, dst) != (sa.peer, sa.local):
            natt.moved(self, sa, src, dst)
        for n in plain.all(Notify):
            self._handle_notify(sa, n, src, now)
        for d in plain.all(Delete):
            self._handle_delete(sa, d, now)

    def _handle_notify(self, sa: IsakmpSA, n: Notify, src: Addr, now: float) -> None:
        log.info("%s notify %s from %s", self.tag, n.notify_type.name, src[0])
        self._events.append(NotifyReceived(int(n.notify_type), int(n.protocol), bytes(n.spi),
                                           bytes(n.data), src, True))
        if n.notify_type == NotifyType.INITIAL_CONTACT and sa.exchange == "main":
            self._initial_contact(sa, now)
        elif n.notify_type == NotifyType.R_U_THERE_ACK:
            dpd.acknowledged(sa, bytes(n.data), now)
        elif n.notify_type == NotifyType.R_U_THERE and "dpd" in sa.vendor_ids:
            ack = Notify(NotifyType.R_U_THERE_ACK, n.protocol, n.spi, n.data)
            self.queue(informational.protected(self, sa, [ack]), sa.local, sa.peer)
        elif n.notify_type < 16384:
            spi = int.from_bytes(n.spi, "big") if len(n.spi) in (2, 4) else None
            for ex in list(self.exchanges.values()):
                if (isinstance(ex, QuickMode) and ex.sa is sa and not ex.finished
                        and (spi is None or spi in {s for _p, s in ex.spis}
                             or spi in ex.spi_in.values()
                             or any(int.from_bytes(c.proposal.spi, "big") == spi
                                    for c in ex.chosen))):
                    self._fail(ex, ExchangeError(n.notify_type, "peer sent "
                                                 + n.notify_type.name, send=False), now)

    def _handle_delete(self, sa: IsakmpSA, d: Delete, now: float) -> None:
        if d.protocol == ISAKMP_PROTO:
            for spi in d.spis:
                target = self.sas.isakmp.get(bytes(spi))
                if target is not None:
                    log.info("%s peer %s deleted ISAKMP SA %s", self.tag, sa.peer[0],
                             bytes(spi).hex())
                    self._delete_isakmp(target, now, notify_peer=False, reason="peer DELETE")
            return
        for spi in d.spis:
            ipsa = self.sas.ipsec_by_spi(int(d.protocol), int.from_bytes(spi, "big"))
            if ipsa is not None:
                log.info("%s peer %s deleted IPsec SA %s (SPI %s)", self.tag, sa.peer[0],
                         ipsa.name, bytes(spi).hex())
                self._delete_ipsec(ipsa, now, notify_peer=False, reason="peer DELETE")

    # ================================================================ failures and deletion

    def _fail(self, ex: Exchange, err: ExchangeError, now: float) -> None:
        """Translate an exchange error into a notify (maybe), an event and a clean state."""
        log.warning("%s %s exchange with %s failed: %s", self.tag, ex.kind, ex.sa.peer[0],
                    err if int(err.notify) else err.reason)
        sa = ex.sa
        if err.send and int(err.notify):
            notify = Notify(err.notify, ProtocolId.ISAKMP, sa.cookies)
            if isinstance(ex, QuickMode):
                self.queue(informational.protected(self, sa, [notify]), sa.local, sa.peer)
            elif sa.state is SAState.LARVAL:
                self.queue(informational.unprotected(self, sa.icookie, sa.rcookie, [notify]),
                           sa.local, sa.peer)
        ex.finish(now, failed=True)
        self.exchanges.pop(ex.key, None)
        if isinstance(ex, QuickMode):
            for proto, spi in ex.spis:  # larval SPIs, or the responder's inbound SAs
                self.installed.pop((proto, spi, True), None)
                self._kernel(k.DeleteSA(proto, spi, connections.address(sa.peer[0]),
                                        connections.address(sa.local[0])))
            ex.spis.clear()
        elif sa.state is SAState.LARVAL:
            self.sas.remove_isakmp(sa)
            for name, _seq in self.pending.pop(sa.cookies, []):
                self._events.append(ExchangeFailed(name, "quick", "phase 1 failed",
                                                   int(err.notify), sa.peer))
        self._events.append(ExchangeFailed(ex.name or sa.name, ex.kind, err.reason,
                                           int(err.notify), sa.peer))

    def _delete_isakmp(self, sa: IsakmpSA, now: float, *, notify_peer: bool,
                       reason: str) -> None:
        if notify_peer and sa.keys is not None and sa.state in (SAState.READY, SAState.FADING):
            payload = Delete(ProtocolId.ISAKMP, [sa.cookies], 16, Doi.IPSEC)
            self.queue(informational.protected(self, sa, [payload]), sa.local, sa.peer)
        for key, ex in list(self.exchanges.items()):
            if ex.sa is sa:
                if isinstance(ex, QuickMode) and not ex.finished:
                    self._fail(ex, ExchangeError(NotifyType(0), "ISAKMP SA deleted",
                                                 send=False), now)
                self.exchanges.pop(key, None)
        self.sas.remove_isakmp(sa)
        self.pending.pop(sa.cookies, None)
        self.cfg_states.pop(sa.cookies, None)
        self._events.append(SADeleted("isakmp", sa.name, reason, sa.cookies))

    def _delete_ipsec(self, ipsa: IPsecSA, now: float, *, notify_peer: bool, reason: str,
                      gone: tuple[int, int, object] | None = None) -> None:
        local, peer = connections.address(ipsa.local), connections.address(ipsa.peer)
        install.release_successors(self, ipsa, now)
        if notify_peer:
            sa = next(self.sas.ready_isakmp(ipsa.peer), None)
            if sa is not None:
                payloads = [Delete(ProtocolId(p.choice.protocol_id),
                                   [p.spi_in.to_bytes(2 if p.choice.protocol_id == 4 else 4,
                                                      "big")],
                                   2 if p.choice.protocol_id == 4 else 4, Doi.IPSEC)
                            for p in ipsa.protocols]
                self.queue(informational.protected(self, sa, payloads), sa.local, sa.peer)
        for p in ipsa.protocols:
            proto = p.choice.protocol_id
            self.installed.pop((proto, p.spi_in, True), None)
            self.installed.pop((proto, p.spi_out, False), None)
            for cmd in (k.DeleteSA(proto, p.spi_in, peer, local),
                        k.DeleteSA(proto, p.spi_out, local, peer)):
                if gone != (cmd.proto, cmd.spi, cmd.dst):  # (proto, SPI, dst): the kernel's key
                    self._kernel(cmd)
        for flow in ipsa.flows:
            if isinstance(flow, k.AddFlow):
                self._kernel(k.DeleteFlow(flow.selector, flow.direction))
        self.sas.remove_ipsec(ipsa)
        self._events.append(SADeleted("ipsec", ipsa.name, reason, ipsa.cookies,
                                      ipsa.spis_in + ipsa.spis_out))

    def delete_ipsec_sa(self, ipsa: IPsecSA, now: float, *, reason: str) -> None:
        """Delete an IPsec SA bundle with a DELETE to the peer (for the install module)."""
        self._delete_ipsec(ipsa, now, notify_peer=True, reason=reason)

    def delete_isakmp(self, sa: IsakmpSA, now: float, *, reason: str) -> None:
        """Delete an ISAKMP SA, sending a DELETE when it has keys (for the rekey module)."""
        self._delete_isakmp(sa, now, notify_peer=True, reason=reason)

    def phase1_initiate(self, peer_section: str, now: float) -> IsakmpSA | None:
        """Start Main or Aggressive Mode with a peer section; None if it cannot start."""
        return self._phase1_initiate(peer_section, now)

    def _kernel(self, cmd: k.KernelCommand) -> None:
        """Run a clean-up command; a kernel that already forgot the object is no error."""
        try:
            k.execute(self.kernel, cmd)
        except k.KernelError as e:
            log.info("%s kernel: %s for %s", self.tag, e, cmd)

    # ================================================================ initiating

    def _phase1_initiate(self, peer_section: str, now: float) -> IsakmpSA | None:
        conf = self.conf
        address = conf.get_str(peer_section, "Address")
        if address is None:
            log.warning("%s [%s] lacks Address", self.tag, peer_section)
            return None
        local = conf.get_str(peer_section, "Local-address") or self.local_address
        if local is None:
            # The source address becomes known with the peer's first answer (see
            # _receive_phase1); until then the runtime picks a socket of the right family.
            local = "::" if ":" in address else "0.0.0.0"
        port = conf.get_num(peer_section, "Port", 500)
        local_port = self.local_port
        configuration = conf.get_str(peer_section, "Configuration",
                                     "Default-phase-1-configuration") or ""
        mode = (conf.get_str(configuration, "EXCHANGE_TYPE") or "ID_PROT").upper()
        sa = IsakmpSA(peer_section, True, self.rand.bytes(8), (local, local_port),
                      (address, port))
        try:
            ex: MainMode | AggressiveMode = (AggressiveMode if mode == "AGGRESSIVE"
                                             else MainMode)(self, sa, True, now, peer_section)
            self.sas.add_isakmp(sa)
            self.exchanges[ex.key] = ex
            ex.start(now)
        except ExchangeError as e:
            log.warning("%s cannot start Phase 1 with %s: %s", self.tag, address, e)
            self.sas.remove_isakmp(sa)
            self.exchanges.pop((sa.cookies, 0), None)
            self._events.append(ExchangeFailed(peer_section, mode.lower(), e.reason,
                                               int(e.notify), (address, port)))
            return None
        return sa

    def _quick_initiate(self, sa: IsakmpSA, name: str, now: float, acquire_seq: int) -> None:
        if transaction.xauth_unsettled(self, sa):  # an XAUTH client waits for the verdict
            self.pending.setdefault(sa.cookies, []).append((name, acquire_seq))
            return
        ex = QuickMode(self, sa, self.new_message_id(sa), True, now, name,
                       acquire_seq=acquire_seq)
        self.exchanges[ex.key] = ex
        try:
            ex.start(now, name)
        except ExchangeError as e:
            self._fail(ex, ExchangeError(e.notify, e.reason, send=False), now)

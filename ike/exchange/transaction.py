"""The Transaction exchange (ISAKMP type 6): mode-config and XAUTH after Phase 1.

Two messages, both ``HASH ATTR`` and encrypted under the ISAKMP SA with a Phase 2 IV of their
own M-ID; HASH = prf(SKEYID_a, M-ID | ATTR) in both directions (draft-ietf-ipsec-isakmp-mode-
cfg-05 3.3).  The ATTRIBUTE payload's type pairs REQUEST with REPLY and SET with ACK.

Mode-config as isakmpd does it (reference/isakmpd.md 6.7): a Phase 1 peer section with
``Flags=ikecfg`` starts one after Phase 1.  The values handed out come from the section named
after the other side's Phase 1 ID, ``[ipv4/A.B.C.D]``, ``[ipv6/..]``, ``[fqdn/..]``,
``[ufqdn/..]`` or ``[asn1_dn/<DN>]``: ``Address``, ``Netmask``, ``Nameserver``,
``WINS-server``, ``DHCP-server``, ``Network`` and ``Lifetime``.  Its ``Mode`` is ``SET`` (the
default: we push with SET/ACK) or ``REQ`` (we ask for the ``Attributes`` listed, the peer
answers with a REPLY).  What we are given is reported (``ModeConfigDone``) and kept on the SA for
the ``S`` report; the runtime's ``cfg_hook`` applies it on the host.

XAUTH (draft-beaulieu-ike-xauth-02), generic username/password: the server (peer section
``XAUTH-Users = <section>``, a section of ``user = password`` tags) sends a REQUEST for the name
and password after Phase 1, checks the REPLY, and reports the verdict in a SET with
XAUTH-STATUS, which the client ACKs; on failure both sides drop the ISAKMP SA.  A client answers
with ``XAUTH-User`` / ``XAUTH-Password`` of its peer section.  Mode-config follows a good XAUTH.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from ike.crypto.cipher import CBC, Keystate, cipher_spec
from ike.crypto.keymat import info_hash, phase2_iv
from ike.doi.constants import IdType
from ike.events import ExchangeFailed, ModeConfigDone, XauthDone
from ike.exchange.base import Exchange
from ike.exchange.errors import ExchangeError
from ike.sa import IsakmpSA, SAState
from ike.wire import Attribute, AttributePayload, Hash, Message, NotifyType, encode_payloads
from ike.wire.constants import CfgAttr, CfgType, ExchangeType

if TYPE_CHECKING:
    from ike.engine import Engine

__all__ = ["NAMES", "CfgState", "Transaction", "after_phase1", "check_password",
           "expire_waits", "id_section", "next_deadline", "state_of", "values_from",
           "xauth_unsettled"]

log = logging.getLogger("ike.exchange")

A = CfgAttr
NAMES: dict[str, tuple[CfgAttr, ...]] = {
    "address": (A.INTERNAL_IP4_ADDRESS, A.INTERNAL_IP6_ADDRESS),
    "netmask": (A.INTERNAL_IP4_NETMASK, A.INTERNAL_IP6_NETMASK),
    "nameserver": (A.INTERNAL_IP4_DNS, A.INTERNAL_IP6_DNS),
    "wins-server": (A.INTERNAL_IP4_NBNS, A.INTERNAL_IP6_NBNS),
    "dhcp-server": (A.INTERNAL_IP4_DHCP, A.INTERNAL_IP6_DHCP),
    "network": (A.INTERNAL_IP4_SUBNET, A.INTERNAL_IP6_SUBNET),
    "lifetime": (A.INTERNAL_ADDRESS_EXPIRY,),
}
"""isakmpd.conf tag (lower case) -> the attributes it stands for (IPv4 first)."""
_XAUTH = frozenset(range(16520, 16530))
_ID_PREFIX = {IdType.IPV4_ADDR: "ipv4", IdType.IPV6_ADDR: "ipv6", IdType.FQDN: "fqdn",
              IdType.USER_FQDN: "ufqdn", IdType.DER_ASN1_DN: "asn1_dn"}


@dataclass
class CfgState:
    """What the Transaction exchanges of one ISAKMP SA settled (the ``S`` report shows it)."""

    xauth: str = ""
    """"", "pending" (server), "waiting" (client), "ok" or "failed"."""
    xauth_user: str = ""
    mode_cfg: dict[str, list[str]] = field(default_factory=dict)
    """Attributes the peer gave us, by attribute name."""
    wait_until: float | None = None
    """A client's deadline for the server's XAUTH (REQUEST, then the status SET): a server
    that never starts XAUTH must not keep the connection's Quick Modes waiting forever."""


def state_of(engine: Engine, sa: IsakmpSA) -> CfgState:
    """The SA's Transaction state, created on first use (the engine drops it with the SA)."""
    return engine.cfg_states.setdefault(sa.cookies, CfgState())


def id_section(sa: IsakmpSA, *, peer: bool = True) -> str | None:
    """The IKECFG-ID section name of the peer's (or our) Phase 1 ID, e.g. ``ipv4/10.0.0.1``."""
    ident = sa.peer_id if peer else sa.local_id
    if ident is None:
        return None
    prefix = _ID_PREFIX.get(IdType(ident.id_type))
    if prefix is None:
        return None
    if ident.id_type in (IdType.IPV4_ADDR, IdType.IPV6_ADDR):
        try:
            value = str(ipaddress.ip_address(ident.data))
        except ValueError:
            return None
    elif ident.id_type == IdType.DER_ASN1_DN:
        value = sa.peer_dn if peer else ""
    else:
        value = ident.data.decode("utf-8", "replace")
    return f"{prefix}/{value}" if value else None


def _encode(attr: CfgAttr, text: str) -> bytes:
    """One configured value as the attribute's wire form (ValueError when it does not fit).

    The mode-config draft (-05, as isakmpd's isakmp_cfg.c) sizes every IPv6 attribute at 16
    octets, a bare address, except INTERNAL_IP6_SUBNET: 17 octets, the address followed by a
    one-octet prefix length (IKEv2 later gave INTERNAL_IP6_ADDRESS that form too)."""
    if attr == A.INTERNAL_ADDRESS_EXPIRY:
        return int(text, 0).to_bytes(4, "big")
    if attr == A.INTERNAL_IP4_SUBNET:
        net = ipaddress.IPv4Network(text, strict=False)
        return net.network_address.packed + net.netmask.packed
    if attr == A.INTERNAL_IP6_SUBNET:
        net6 = ipaddress.IPv6Network(text, strict=False)
        return net6.network_address.packed + bytes([net6.prefixlen])
    addr = ipaddress.ip_address(text)
    v6 = attr in (A.INTERNAL_IP6_ADDRESS, A.INTERNAL_IP6_NETMASK, A.INTERNAL_IP6_DNS,
                  A.INTERNAL_IP6_NBNS, A.INTERNAL_IP6_DHCP)
    if (addr.version == 6) != v6:
        raise ValueError(f"{text} is not an IPv{6 if v6 else 4} address")
    return addr.packed


def _decode(attr: int, value: int | bytes) -> str:
    """An attribute's value as text for events and the report."""
    if isinstance(value, int):
        return str(value)
    if attr == A.INTERNAL_IP4_SUBNET and len(value) == 8:
        net = ipaddress.IPv4Network((value[:4], str(ipaddress.IPv4Address(value[4:]))),
                                    strict=False)
        return str(net)
    if len(value) == 17 and attr in (A.INTERNAL_IP6_SUBNET, A.INTERNAL_IP6_ADDRESS) \
            and value[16] <= 128:  # address + prefix length (an IKEv2-minded peer's address)
        return f"{ipaddress.IPv6Address(value[:16])}/{value[16]}"
    if len(value) in (4, 16) and attr != A.INTERNAL_ADDRESS_EXPIRY:
        return str(ipaddress.ip_address(value))
    if attr == A.INTERNAL_ADDRESS_EXPIRY or not value:
        return str(int.from_bytes(value, "big")) if value else ""
    return value.decode("utf-8", "replace")


def values_from(engine: Engine, section: str | None,
                wanted: Sequence[int] | None = None) -> list[Attribute]:
    """The attributes a section hands out (only ``wanted`` types, when given)."""
    out: list[Attribute] = []
    if section is None:
        return out
    for tag, attrs in NAMES.items():
        text = engine.conf.get_str(section, tag)
        if text is None and tag == "lifetime" and out:
            text = "1200"  # isakmpd's default address expiry
        if text is None:
            continue
        for attr in attrs:
            if wanted is not None and attr not in wanted:
                continue
            try:
                out.append(Attribute(attr, _encode(attr, text)))
            except ValueError:
                continue  # the other address family's attribute of this tag
    return out


def _report(attrs: Sequence[Attribute]) -> dict[str, list[str]]:
    got: dict[str, list[str]] = {}
    for a in attrs:
        if a.type in _XAUTH:
            continue
        name = CfgAttr(a.type).name if a.type in CfgAttr._value2member_map_ else str(a.type)
        got.setdefault(name, []).append(_decode(a.type, a.value))
    return got


def _flags(engine: Engine, section: str) -> list[str]:
    return [f.lower() for f in engine.conf.get_list(section, "Flags")]


def after_phase1(engine: Engine, sa: IsakmpSA, now: float) -> None:
    """Start what the peer section asks for once Phase 1 is up: XAUTH (server), then
    mode-config (``Flags=ikecfg``)."""
    if engine.conf.get_str(sa.name, "XAUTH-Users") or engine.conf.get_str(
            sa.name, "XAUTH-Password-File"):
        state_of(engine, sa).xauth = "pending"
        start(engine, sa, now, CfgType.CFG_REQUEST, [
            Attribute(A.XAUTH_TYPE, 0), Attribute(A.XAUTH_USER_NAME, b""),
            Attribute(A.XAUTH_USER_PASSWORD, b"")], "xauth")
        return
    if engine.conf.get_str(sa.name, "XAUTH-User"):
        state = state_of(engine, sa)  # a client: the server's verdict comes first
        state.xauth = "waiting"
        state.wait_until = now + engine.exchange_max_time
        return
    _start_mode_config(engine, sa, now)


def _start_mode_config(engine: Engine, sa: IsakmpSA, now: float) -> None:
    if not sa.initiator or "ikecfg" not in _flags(engine, sa.name):
        return
    section = id_section(sa)
    mode = (engine.conf.get_str(section, "Mode") if section else None) or "SET"
    if mode.upper() == "SET":
        attrs = values_from(engine, section)
        start(engine, sa, now, CfgType.CFG_SET, attrs, "cfg")
        return
    wanted = engine.conf.get_list(section, "Attributes") if section else []
    request = [Attribute(t, b"") for name in (wanted or ["Address", "Netmask", "Nameserver"])
               for t in NAMES.get(name.lower(), ())]
    start(engine, sa, now, CfgType.CFG_REQUEST, request, "cfg")


def start(engine: Engine, sa: IsakmpSA, now: float, cfg_type: CfgType,
          attrs: list[Attribute], purpose: str) -> Transaction:
    """Initiate one Transaction exchange on a ready ISAKMP SA."""
    ex = Transaction(engine, sa, engine.new_message_id(sa), True, now, sa.name, purpose)
    engine.exchanges[ex.key] = ex
    ex.request(now, cfg_type, attrs)
    return ex


class Transaction(Exchange):
    """One Transaction exchange, both roles."""

    kind: ClassVar[str] = "transaction"
    exchange_type: ClassVar[ExchangeType] = ExchangeType.TRANSACTION

    def __init__(self, engine: Engine, sa: IsakmpSA, message_id: int, initiator: bool,
                 now: float, name: str, purpose: str = "") -> None:
        super().__init__(engine, sa, message_id, initiator, now, name)
        assert sa.keys is not None
        block = cipher_spec(sa.encryption).block_size
        self.keystate = Keystate(CBC(sa.encryption, sa.keys.enc_key),
                                 phase2_iv(sa.hash_alg, sa.iv, message_id, block))
        self.purpose = purpose
        self.cfg_type = CfgType.RESERVED
        self.identifier = 0

    def finish(self, now: float, *, failed: bool = False) -> None:
        """End the exchange; an XAUTH server whose exchange failed (no answer, a bad one)
        gives the ISAKMP SA up, as it would a refused user."""
        super().finish(now, failed=failed)
        if failed and self.initiator and self.purpose.startswith("xauth") \
                and self.sa.state in (SAState.READY, SAState.FADING):
            state_of(self.engine, self.sa).xauth = "failed"
            self.engine.delete_isakmp(self.sa, now, reason="XAUTH did not complete")

    def _send(self, now: float, cfg_type: CfgType, attrs: list[Attribute],
              retransmit: bool) -> None:
        assert self.sa.keys is not None
        attr = AttributePayload(cfg_type, self.identifier, attrs)
        digest = info_hash(self.sa.hash_alg, self.sa.keys.skeyid_a, self.message_id,
                           encode_payloads([attr])[1])
        self.send([Hash(digest), attr], now, encrypt=True, retransmit=retransmit)

    def request(self, now: float, cfg_type: CfgType, attrs: list[Attribute]) -> None:
        """Send the first message (REQUEST or SET)."""
        self.cfg_type = cfg_type
        self.identifier = self.engine.rand.uint32() & 0xFFFF
        self._send(now, cfg_type, attrs, True)
        self.set_state("sent-" + cfg_type.name)

    def process(self, msg: Message, now: float) -> None:
        """Check HASH, then answer (responder) or take the answer (initiator)."""
        assert self.sa.keys is not None
        got, attr = msg.payloads[0], msg.payloads[1]
        if not isinstance(got, Hash) or not isinstance(attr, AttributePayload):
            raise ExchangeError(NotifyType.PAYLOAD_MALFORMED, "transaction is not HASH, ATTR")
        want = info_hash(self.sa.hash_alg, self.sa.keys.skeyid_a, self.message_id,
                         self.rest_in)
        if not hmac.compare_digest(bytes(got.data), want):
            raise ExchangeError(NotifyType.INVALID_HASH_INFORMATION,
                                "transaction HASH does not verify")
        if self.initiator:
            self._answered(attr, now)
        else:
            self._respond(attr, now)

    # ---- responder --------------------------------------------------------------------------

    def _respond(self, attr: AttributePayload, now: float) -> None:
        self.identifier = attr.identifier
        types = [a.type for a in attr.attributes]
        if attr.cfg_type == CfgType.CFG_REQUEST and set(types) & _XAUTH:
            self._xauth_client(now)
        elif attr.cfg_type == CfgType.CFG_REQUEST:
            section = id_section(self.sa)
            reply = values_from(self.engine, section, types)
            log.info("%s mode-config: %d attributes for %s from [%s]", self.engine.tag,
                     len(reply), self.sa.peer[0], section)
            self._send(now, CfgType.CFG_REPLY, reply, False)
            self.finish(now)
        elif attr.cfg_type == CfgType.CFG_SET and A.XAUTH_STATUS in types:
            ok = any(a.type == A.XAUTH_STATUS and a.value == 1 for a in attr.attributes)
            self._send(now, CfgType.CFG_ACK, [Attribute(A.XAUTH_STATUS, 1 if ok else 0)], False)
            self.finish(now)
            user = self.engine.conf.get_str(self.sa.name, "XAUTH-User") or ""
            log.info("%s XAUTH as %r with %s %s", self.engine.tag, user, self.sa.peer[0],
                     "succeeded" if ok else "failed")
            state_of(self.engine, self.sa).xauth = "ok" if ok else "failed"
            state_of(self.engine, self.sa).wait_until = None
            self.engine.emit(XauthDone(self.sa.name, self.sa.cookies, user, ok, False))
            if not ok:
                self.engine.delete_isakmp(self.sa, now, reason="XAUTH failed")
            else:
                _start_mode_config(self.engine, self.sa, now)
                self.engine.start_pending(self.sa, now)
        elif attr.cfg_type == CfgType.CFG_SET:
            self._send(now, CfgType.CFG_ACK, [Attribute(a.type, b"") for a in attr.attributes],
                       False)
            self.finish(now)
            self._applied(_report(attr.attributes))
        else:
            raise ExchangeError(NotifyType.PAYLOAD_MALFORMED,
                                f"transaction starts with {attr.cfg_type.name}")

    def _xauth_client(self, now: float) -> None:
        user = self.engine.conf.get_str(self.sa.name, "XAUTH-User")
        password = self.engine.conf.get_str(self.sa.name, "XAUTH-Password")
        if user is None or password is None:
            raise ExchangeError(NotifyType.ATTRIBUTES_NOT_SUPPORTED,
                                "XAUTH requested but no XAUTH-User/XAUTH-Password")
        self._send(now, CfgType.CFG_REPLY, [
            Attribute(A.XAUTH_TYPE, 0), Attribute(A.XAUTH_USER_NAME, user.encode()),
            Attribute(A.XAUTH_USER_PASSWORD, password.encode())], False)
        self.finish(now)
        state = state_of(self.engine, self.sa)
        if state.wait_until is not None:  # now the server's verdict gets its own max time
            state.wait_until = now + self.engine.exchange_max_time

    def _applied(self, got: dict[str, list[str]]) -> None:
        state_of(self.engine, self.sa).mode_cfg = got
        log.info("%s mode-config from %s: %s", self.engine.tag, self.sa.peer[0],
                 ", ".join(f"{k}={','.join(v)}" for k, v in got.items()))
        event = ModeConfigDone(self.sa.name, self.sa.cookies, self.sa.peer, got)
        self.engine.emit(event)
        if self.engine.cfg_hook is not None:
            self.engine.cfg_hook(event)

    # ---- initiator --------------------------------------------------------------------------

    def _answered(self, attr: AttributePayload, now: float) -> None:
        expect = {CfgType.CFG_REQUEST: CfgType.CFG_REPLY, CfgType.CFG_SET: CfgType.CFG_ACK}
        if attr.cfg_type != expect.get(self.cfg_type):
            raise ExchangeError(NotifyType.PAYLOAD_MALFORMED,
                                f"{attr.cfg_type.name} answers {self.cfg_type.name}")
        self.finish(now)
        if self.purpose == "xauth":
            self._xauth_verdict(attr, now)
        elif self.purpose == "xauth-status":
            if state_of(self.engine, self.sa).xauth == "failed":
                self.engine.delete_isakmp(self.sa, now, reason="XAUTH failed")
            else:
                _start_mode_config(self.engine, self.sa, now)
        elif self.cfg_type == CfgType.CFG_REQUEST:
            self._applied(_report(attr.attributes))
        else:
            log.info("%s mode-config: %s acknowledged %d attributes", self.engine.tag,
                     self.sa.peer[0], len(attr.attributes))

    def _xauth_verdict(self, attr: AttributePayload, now: float) -> None:
        values = {a.type: a.value for a in attr.attributes}
        user = values.get(A.XAUTH_USER_NAME, b"")
        password = values.get(A.XAUTH_USER_PASSWORD, b"")
        ok = False
        name = ""
        if isinstance(user, bytes) and isinstance(password, bytes):
            name = user.decode("utf-8", "replace")
            ok = self.engine.xauth_check(self.sa, name, password)
        log.info("%s XAUTH user %r from %s %s", self.engine.tag, name, self.sa.peer[0],
                 "accepted" if ok else "refused")
        state_of(self.engine, self.sa).xauth = "ok" if ok else "failed"
        state_of(self.engine, self.sa).xauth_user = name
        self.engine.emit(XauthDone(self.sa.name, self.sa.cookies, name, ok, True))
        if self.sa.state in (SAState.READY, SAState.FADING):
            start(self.engine, self.sa, now, CfgType.CFG_SET,
                  [Attribute(A.XAUTH_STATUS, 1 if ok else 0)], "xauth-status")


def xauth_unsettled(engine: Engine, sa: IsakmpSA) -> bool:
    """Whether XAUTH on this SA has not succeeded yet: no Quick Mode either way until then."""
    state = engine.cfg_states.get(sa.cookies)
    return state is not None and state.xauth in ("pending", "waiting", "failed")


def next_deadline(engine: Engine) -> float | None:
    """The earliest XAUTH client deadline (for the engine's one timer)."""
    return min([s.wait_until for s in engine.cfg_states.values() if s.wait_until is not None],
               default=None)


def expire_waits(engine: Engine, now: float) -> None:
    """Give up XAUTH clients whose server did not finish XAUTH in time: their waiting Quick
    Modes fail and the ISAKMP SA goes (with a DELETE), as after a refused user, so the next
    attempt negotiates afresh instead of queueing on an SA that never becomes usable."""
    for cookies, state in list(engine.cfg_states.items()):
        if state.wait_until is None or state.wait_until > now:
            continue
        state.wait_until = None
        sa = engine.sas.isakmp.get(cookies)
        if sa is None:
            continue
        state.xauth = "failed"
        waiting = engine.pending.pop(cookies, [])
        log.warning("%s XAUTH: %s did not complete XAUTH within %d s; failing %d waiting "
                    "Quick Mode(s) and deleting ISAKMP SA %s", engine.tag, sa.peer[0],
                    engine.exchange_max_time, len(waiting), cookies.hex())
        for name, _seq in waiting:
            engine.emit(ExchangeFailed(name, "quick", "XAUTH not completed by the server", 0,
                                       sa.peer))
        engine.delete_isakmp(sa, now, reason="XAUTH not completed by the server")


def check_password(engine: Engine, sa: IsakmpSA, user: str, password: bytes,
                   read_file: Callable[[str], str] | None = None) -> bool:
    """The XAUTH credential sources of the peer section: the ``XAUTH-Users`` section
    (``user = password`` tags), else the ``XAUTH-Password-File`` (``user:password`` lines,
    ``#`` comments), which only the runtime can read (``read_file``)."""
    if not user:
        return False
    section = engine.conf.get_str(sa.name, "XAUTH-Users")
    path = engine.conf.get_str(sa.name, "XAUTH-Password-File")
    want: str | None = None
    if section:
        want = engine.conf.get_str(section, user)
    elif path and read_file is not None:
        try:
            text = read_file(path)
        except Exception as e:  # whatever the file source raises, the user is refused
            log.warning("%s XAUTH password file %s: %s", engine.tag, path, e)
            return False
        for line in text.splitlines():
            name, sep, secret = line.strip().partition(":")
            if sep and not name.startswith("#") and name == user:
                want = secret
                break
    return want is not None and hmac.compare_digest(want.encode(), password)

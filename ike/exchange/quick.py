"""Quick Mode (RFC 2409 5.5): HASH(1) SA Ni [KE] [IDci IDcr] / HASH(2) SA Nr [KE] [IDci IDcr] /
HASH(3), with isakmpd's proposal building, its responder choice, and the KeyNote policy check
before the responder accepts and before the initiator confirms (isakmpd.md 4.1, 6.3).
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ike.crypto import dh
from ike.crypto.cipher import Keystate, cipher_spec
from ike.crypto.keymat import phase2_iv, qm_hash1, qm_hash2, qm_hash3, qm_sa_keys
from ike.doi.constants import EncapsulationMode, IdType, IpsecAttr, ProtocolId
from ike.exchange import install, natt, proposals
from ike.exchange.base import Exchange, rest_of
from ike.exchange.errors import ExchangeError, config_address
from ike.exchange.phase1 import as_identity
from ike.policy import ChosenProtocol, PolicyContext, build_attributes, check_policy
from ike.sa import IPsecSA, IsakmpSA, ProtoSA
from ike.wire import (
    ExchangeType,
    Hash,
    Identification,
    KeyExchange,
    Message,
    Nonce,
    Notify,
    NotifyType,
    Payload,
    Proposal,
    SecurityAssociation,
    Transform,
    encode_payloads,
)
from ike.wire.buffer import GENERIC

if TYPE_CHECKING:
    from ike.engine import Engine

__all__ = ["QuickMode", "client_id"]

log = logging.getLogger("ike.exchange")
NONCE_SIZE = 16
#: Members read per Quick Mode, bound once (an Enum class attribute read is a slow lookup).
_IPCOMP = ProtocolId.IPCOMP
_ENCAPSULATION_MODE, _TUNNEL = IpsecAttr.ENCAPSULATION_MODE, EncapsulationMode.TUNNEL


def client_id(engine: Engine, section: str) -> Identification:
    """An IPsec-ID section (isakmpd.md 3.4) as a Quick Mode client ID payload."""
    conf = engine.conf
    kind_name = conf.get_str(section, "ID-type") or "IPV4_ADDR"
    try:
        kind = IdType.from_name(kind_name)
    except KeyError:
        raise ExchangeError(NotifyType.INVALID_ID_INFORMATION,
                            f"[{section}]: unknown ID-type {kind_name}") from None
    proto_text = conf.get_str(section, "Protocol") or "0"
    protocol = {"tcp": 6, "udp": 17, "icmp": 1}.get(proto_text.lower())
    if protocol is None:
        protocol = int(proto_text) if proto_text.isdigit() else 0
    port = conf.get_num(section, "Port", 0) if protocol else 0
    if kind in (IdType.IPV4_ADDR, IdType.IPV6_ADDR):
        data = config_address(conf.get_str(section, "Address") or "0.0.0.0",
                              f"[{section}]:Address").packed
    elif kind in (IdType.IPV4_ADDR_SUBNET, IdType.IPV6_ADDR_SUBNET):
        data = b"".join(config_address(conf.get_str(section, tag) or "0.0.0.0",
                                       f"[{section}]:{tag}").packed
                        for tag in ("Network", "Netmask"))
    else:
        raise ExchangeError(NotifyType.INVALID_ID_INFORMATION,
                            f"[{section}]: ID-type {kind_name} is not a client ID")
    return Identification(kind, data, protocol, port)


def _same_id(a: Identification, b: Identification) -> bool:
    return (a.id_type, a.protocol, a.port, bytes(a.data)) == (
        b.id_type, b.protocol, b.port, bytes(b.data))


def _spi_bytes(protocol: int, spi: int) -> bytes:
    return spi.to_bytes(2 if protocol == _IPCOMP else 4, "big")


@dataclass
class _Choice:
    """One protocol of the selected proposal: the peer's proposal payload and transform, and
    the transform's attributes read once."""

    proposal: Proposal
    transform: Transform
    read: proposals.IpsecValues


class QuickMode(Exchange):
    """One Quick Mode, both roles."""

    kind: ClassVar[str] = "quick"
    exchange_type: ClassVar[ExchangeType] = ExchangeType.QUICK_MODE

    def __init__(self, engine: Engine, sa: IsakmpSA, message_id: int, initiator: bool,
                 now: float, name: str, *, acquire_seq: int = 0) -> None:
        super().__init__(engine, sa, message_id, initiator, now, name)
        assert sa.keys is not None
        block = cipher_spec(sa.encryption).block_size
        self.keystate = Keystate(sa.cbc(),
                                 phase2_iv(sa.hash_alg, sa.iv, message_id, block))
        self.acquire_seq = acquire_seq
        self.offered: list[Proposal] = []
        self.spis: list[tuple[int, int]] = []
        """Inbound SPIs reserved from the kernel, released if the exchange fails."""
        self.pfs_group = 0
        self.dh_private: dh.PrivateValue | None = None
        self.g_local = b""
        self.g_peer = b""
        self.n_local = b""
        self.n_peer = b""
        self.id_ci: Identification | None = None
        self.id_cr: Identification | None = None
        self.chosen: list[_Choice] = []
        self.spi_in: dict[int, int] = {}
        self.bundle: IPsecSA | None = None
        """The keyed SA bundle, once both nonces (and KE) are known."""
        self.inbound_installed = False
        """The responder's inbound SAs are in the kernel already (ike.exchange.install)."""
        self.install_plan: object | None = None
        """The kernel commands of the bundle, once worked out (ike.exchange.install)."""
        self.peer_oa: str | None = None
        """The peer's original address from its NAT-OA (UDP-encapsulated transport mode)."""

    # ---- helpers ---------------------------------------------------------------------------

    def _hash(self, which: int, rest: bytes) -> bytes:
        assert self.sa.keys is not None
        a = self.sa.keys.skeyid_a
        if which == 1:
            return qm_hash1(self.sa.hash_alg, a, self.message_id, rest)
        return qm_hash2(self.sa.hash_alg, a, self.message_id, self.ni, rest)

    @property
    def ni(self) -> bytes:
        """Ni_b of this Quick Mode."""
        return self.n_local if self.initiator else self.n_peer

    @property
    def nr(self) -> bytes:
        """Nr_b of this Quick Mode."""
        return self.n_peer if self.initiator else self.n_local

    def _get_spi(self, protocol: int) -> int:
        spi = self.engine.get_spi(protocol, self.sa.peer[0], self.sa.local[0], self.acquire_seq)
        self.spis.append((protocol, spi))
        return spi

    def _send_hashed(self, body: list[Payload], now: float, which: int,
                     retransmit: bool = True) -> None:
        first, rest = encode_payloads(body)
        digest = self._hash(which, rest)
        chain = GENERIC.pack(first, 0, 4 + len(digest)) + digest + rest
        self.send([Hash(digest), *body], now, encrypt=True, retransmit=retransmit, chain=chain)

    def _check_hash(self, msg: Message, which: int) -> None:
        got = msg.get(Hash)
        assert got is not None
        if bytes(got.data) != self._hash(which, self.rest_in or rest_of(msg)):
            raise ExchangeError(NotifyType.INVALID_HASH_INFORMATION,
                                f"Quick Mode HASH({which}) does not verify")

    def _take_ke(self, msg: Message) -> None:
        ke = msg.get(KeyExchange)
        if bool(ke) != bool(self.pfs_group):
            raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN,
                                "KE payload and PFS group do not agree")
        if ke is not None:
            try:
                dh.group(self.pfs_group).check_public(ke.data)
            except (dh.DHError, KeyError, ValueError) as e:
                raise ExchangeError(NotifyType.INVALID_KEY_INFORMATION, str(e)) from None
            self.g_peer = bytes(ke.data)

    def _ke(self) -> list[Payload]:
        if not self.pfs_group:
            return []
        try:
            self.dh_private, self.g_local = dh.group(self.pfs_group).generate(self.engine.rand)
        except dh.DHError as e:  # a group we cannot compute, from our configuration
            raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN, f"PFS group {self.pfs_group}: {e}",
                                send=not self.initiator) from None
        return [KeyExchange(self.g_local)]

    def _take_nonce(self, msg: Message) -> None:
        nonce = msg.get(Nonce)
        assert nonce is not None
        if not 8 <= len(nonce.data) <= 256:
            raise ExchangeError(NotifyType.PAYLOAD_MALFORMED, "bad nonce length")
        self.n_peer = bytes(nonce.data)

    def _policy(self, chosen: list[_Choice], now: float) -> None:
        """Ask KeyNote; a refusal is NO_PROPOSAL_CHOSEN with the trace in the log."""
        if not self.engine.use_keynote:
            return
        remote_f, local_f = (self.id_cr, self.id_ci) if self.initiator else (self.id_ci,
                                                                            self.id_cr)
        ctx = PolicyContext(
            initiator=self.initiator,
            pfs=bool(self.pfs_group),
            phase_1="aggressive" if self.sa.exchange == "aggressive" else "main",
            phase1_group=self.sa.group,
            protocols=[ChosenProtocol(int(c.proposal.protocol), int(c.transform.transform_id),
                                      c.read.pairs)
                       for c in chosen],
            local_address=self.sa.local[0],
            remote_address=self.sa.peer[0],
            local_filter=as_identity(local_f) if local_f is not None else None,
            remote_filter=as_identity(remote_f) if remote_f is not None else None,
            remote_id=self.sa.peer_id,
            remote_id_dn=self.sa.peer_dn,
            now=now + self.engine.wall_offset,
            utc_offset=self.engine.utc_offset,
        )
        session = self.engine.policy_session(self.sa)
        try:
            decision = check_policy(session, self.sa.principals, build_attributes(ctx))
        except Exception as e:  # a policy that cannot answer refuses
            raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN, f"policy query failed: {e}") \
                from None
        trace = decision.trace
        for principal in self.sa.principals:
            if principal.startswith("passphrase:"):
                trace = trace.replace(principal, "passphrase:[secret]")
        if not decision.accepted:
            log.warning("%s check_policy: negotiated SA failed policy check (%s)\n%s",
                        self.engine.tag, decision.value, trace)
            raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN, "policy check failed")
        log.debug("%s policy accepted: %s", self.engine.tag, trace)

    # ---- initiator -------------------------------------------------------------------------

    def start(self, now: float, connection: str) -> None:
        """Build message 1 from the connection's suites and IDs."""
        conf = self.engine.conf
        configuration = conf.get_str(connection, "Configuration") or ""
        self.offered, self.pfs_group = proposals.phase2_proposals(
            conf, configuration, lambda p: _spi_bytes(p, self._get_spi(p)))
        if self.sa.nat is not None and self.sa.nat.detected:
            # a NAT on the path: ESP goes in UDP (RFC 3947 values, or the drafts')
            udp = {1: 61443, 2: 61444} if self.sa.nat.draft else {1: 3, 2: 4}
            for prop in self.offered:
                for t in prop.transforms:
                    for a in t.attributes:
                        if a.type == IpsecAttr.ENCAPSULATION_MODE and a.as_int() in udp:
                            a.value = udp[a.as_int()]
        self.n_local = self.engine.rand.bytes(NONCE_SIZE)
        local_id, remote_id = conf.get_str(connection, "Local-ID"), conf.get_str(
            connection, "Remote-ID")
        ids: list[Payload] = []
        if remote_id is not None:
            if local_id is not None:
                self.id_ci = client_id(self.engine, local_id)
            else:
                ip = ipaddress.ip_address(self.sa.local[0])
                self.id_ci = Identification(IdType.IPV4_ADDR if ip.version == 4
                                            else IdType.IPV6_ADDR, ip.packed)
            self.id_cr = client_id(self.engine, remote_id)
            ids = [self.id_ci, self.id_cr]
        elif local_id is not None:
            log.warning("%s connection %s has Local-ID but no Remote-ID: no client IDs sent",
                        self.engine.tag, connection)
        body: list[Payload] = [SecurityAssociation(list(self.offered)), Nonce(self.n_local),
                               *self._ke(), *ids]
        if self.sa.nat is not None and any(
                a.type == IpsecAttr.ENCAPSULATION_MODE and a.as_int() in natt.UDP_TRANSPORT
                for p in self.offered for t in p.transforms for a in t.attributes):
            body += natt.nat_oa_payloads(self.sa, self.sa.nat, True)
        self._send_hashed(body, now, 1)
        self.step = 2
        self.set_state("qm1-sent")

    def _match_answer(self, answer: SecurityAssociation) -> list[_Choice]:
        if not answer.proposals:
            raise ExchangeError(NotifyType.BAD_PROPOSAL_SYNTAX, "empty SA in message 2")
        number = answer.proposals[0].number
        chosen: list[_Choice] = []
        for prop in answer.proposals:
            if prop.number != number or len(prop.transforms) != 1:
                raise ExchangeError(NotifyType.BAD_PROPOSAL_SYNTAX,
                                    "responder returned more than one choice")
            ours = [p for p in self.offered if p.number == number and p.protocol == prop.protocol]
            got = prop.transforms[0]
            read = proposals.ipsec_values(got)
            want = set(read.pairs)
            match = [t for p in ours for t in p.transforms if t.transform_id == got.transform_id
                     and {(a.type, a.as_int()) for a in t.attributes} == want]
            if not match:
                raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN,
                                    "responder chose a transform we did not offer")
            self.spi_in[int(prop.protocol)] = int.from_bytes(ours[0].spi, "big")
            chosen.append(_Choice(prop, got, read))
        if {int(c.proposal.protocol) for c in chosen} != {
                int(p.protocol) for p in self.offered if p.number == number}:
            raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN, "responder dropped a protocol")
        return chosen

    def _process_answer(self, msg: Message, now: float) -> None:
        self._check_hash(msg, 2)
        answer = msg.get(SecurityAssociation)
        assert answer is not None
        self.chosen = self._match_answer(answer)
        self._take_nonce(msg)
        self._take_ke(msg)
        ids = msg.all(Identification)
        if self.id_ci is not None and self.id_cr is not None and (
                len(ids) != 2 or not _same_id(ids[0], self.id_ci)
                or not _same_id(ids[1], self.id_cr)):
            raise ExchangeError(NotifyType.INVALID_ID_INFORMATION, "responder changed the IDs")
        for n in msg.all(Notify):
            log.debug("%s quick mode notify %s", self.engine.tag, n.notify_type.name)
        if self.sa.nat is not None:
            self.peer_oa = natt.peer_original_address(self.sa.nat, True, msg)
        self._policy(self.chosen, now)
        assert self.sa.keys is not None
        h3 = qm_hash3(self.sa.hash_alg, self.sa.keys.skeyid_a, self.message_id, self.ni,
                      self.nr)
        self.send([Hash(h3)], now, encrypt=True, retransmit=False)
        self._install(now)

    # ---- responder -------------------------------------------------------------------------

    def _select(self, offer: SecurityAssociation, now: float) -> list[_Choice]:
        groups: dict[int, list[Proposal]] = {}
        for prop in offer.proposals:
            groups.setdefault(prop.number, []).append(prop)
        reasons: list[str] = []
        for number, props in groups.items():
            chosen: list[_Choice] = []
            for prop in props:
                for t in prop.transforms:
                    read, why = proposals.check_transform(int(prop.protocol), t,
                                                          self.pfs_group)
                    if why is None:
                        chosen.append(_Choice(prop, t, read))
                        break
                    reasons.append(f"proposal {number} transform {t.number}: {why}")
                else:
                    break
            if len(chosen) != len(props):
                continue
            try:
                self._policy(chosen, now)
            except ExchangeError:
                reasons.append(f"proposal {number}: policy refused")
                continue
            return chosen
        raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN,
                            "no acceptable Phase 2 proposal (" + "; ".join(reasons[-4:]) + ")")

    def _process_offer(self, msg: Message, now: float) -> None:
        self._check_hash(msg, 1)
        self._take_nonce(msg)
        ke = msg.get(KeyExchange)
        offer = msg.get(SecurityAssociation)
        assert offer is not None
        if ke is not None:
            groups = {a.as_int() for p in offer.proposals for t in p.transforms
                      for a in t.attributes if a.type == IpsecAttr.GROUP_DESCRIPTION}
            self.pfs_group = min(groups) if groups else 0
            if not self.pfs_group:
                raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN, "KE without a PFS group")
        self._take_ke(msg)
        ids = msg.all(Identification)
        if len(ids) == 1:
            raise ExchangeError(NotifyType.INVALID_ID_INFORMATION, "only one client ID")
        if ids:
            self.id_ci, self.id_cr = ids
        self.name = self.engine.passive_connection(self.sa, self.id_ci, self.id_cr)
        self.chosen = self._select(offer, now)
        answer: list[Proposal] = []
        for c in self.chosen:
            proto = int(c.proposal.protocol)
            spi = self._get_spi(proto)
            self.spi_in[proto] = spi
            answer.append(Proposal(c.proposal.number, c.proposal.protocol,
                                   _spi_bytes(proto, spi), [c.transform.echo()]))
        self.n_local = self.engine.rand.bytes(len(self.n_peer))
        body: list[Payload] = [SecurityAssociation(answer, offer.situation, offer.doi),
                               Nonce(self.n_local), *self._ke(), *ids]
        if self.sa.nat is not None and any(
                a.type == IpsecAttr.ENCAPSULATION_MODE and a.as_int() in natt.UDP_TRANSPORT
                for c in self.chosen for a in c.transform.attributes):
            self.peer_oa = natt.peer_original_address(self.sa.nat, False, msg)
            body += natt.nat_oa_payloads(self.sa, self.sa.nat, False)
        bundle = self._derive()
        install.install_inbound(self.engine, self, bundle)  # before message 2 leaves
        self._send_hashed(body, now, 2)
        self.step = 3
        self.set_state("qm2-sent")

    # ---- both ------------------------------------------------------------------------------

    def process(self, msg: Message, now: float) -> None:
        """Dispatch on (role, step)."""
        if int(msg.flags) & 2:  # COMMIT (int: Flag's own & runs in Python)
            self.he_committed = True
        if self.initiator and self.step == 2:
            self._process_answer(msg, now)
        elif not self.initiator and self.step == 1:
            self._process_offer(msg, now)
        elif not self.initiator and self.step == 3:
            assert self.sa.keys is not None
            got = msg.get(Hash)
            assert got is not None
            want = qm_hash3(self.sa.hash_alg, self.sa.keys.skeyid_a, self.message_id, self.ni,
                            self.nr)
            if bytes(got.data) != want:
                raise ExchangeError(NotifyType.INVALID_HASH_INFORMATION,
                                    "Quick Mode HASH(3) does not verify")
            self._install(now)

    def _install(self, now: float) -> None:
        """Hand the keyed bundle to the engine (the kernel gets it there)."""
        bundle = self.bundle if self.bundle is not None else self._derive()
        self.spis.clear()
        self.finish(now)
        self.engine.phase2_established(self, bundle, now)

    def _derive(self) -> IPsecSA:
        """KEYMAT for every protocol of the chosen proposal (RFC 2409 5.5), as an IPsecSA."""
        assert self.sa.keys is not None
        gqmxy = b""
        if self.pfs_group:
            assert self.dh_private is not None
            try:
                gqmxy = dh.group(self.pfs_group).shared_secret(self.dh_private, self.g_peer)
            except dh.DHError as e:
                raise ExchangeError(NotifyType.INVALID_KEY_INFORMATION, str(e)) from None
        tunnel = True
        seconds = kbytes = 0
        bundle = IPsecSA(self.name, self.sa.cookies, self.message_id, self.initiator,
                         self.sa.local[0], self.sa.peer[0])
        local_f, remote_f = (self.id_ci, self.id_cr) if self.initiator else (self.id_cr,
                                                                            self.id_ci)
        bundle.local_ids = as_identity(local_f) if local_f is not None else None
        bundle.remote_ids = as_identity(remote_f) if remote_f is not None else None
        for c in self.chosen:
            proto = int(c.proposal.protocol)
            enc_len, auth_len = proposals.phase2_keysizes(proto, c.transform.transform_id,
                                                          c.read.values)
            spi_in = self.spi_in[proto]
            spi_out = int.from_bytes(c.proposal.spi, "big")
            keys = qm_sa_keys(self.sa.hash_alg, self.sa.keys.skeyid_d, proto,
                              _spi_bytes(proto, spi_in), bytes(c.proposal.spi), self.ni,
                              self.nr, enc_len, auth_len, gqmxy)
            mode = c.read.values.get(_ENCAPSULATION_MODE, _TUNNEL)
            tunnel = mode in (1, 3, 61443)
            seconds, kbytes = c.read.seconds or seconds, c.read.kbytes or kbytes
            choice = ChosenProtocol(proto, int(c.transform.transform_id), c.read.pairs)
            bundle.protocols.append(ProtoSA(choice, spi_in, spi_out, keys.inbound.enc_key,
                                            keys.inbound.auth_key, keys.outbound.enc_key,
                                            keys.outbound.auth_key))
        bundle.tunnel = tunnel
        bundle.life_seconds, bundle.life_kbytes = seconds, kbytes
        self.bundle = bundle
        return bundle

"""What Main and Aggressive Mode share (isakmpd's ``ike_phase_1.c``): proposals, KE and nonces,
SKEYID and the key state, identities, HASH_I/HASH_R and RSA signatures, and the end of Phase 1.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from typing import TYPE_CHECKING, Any

from ike.conf import Conf
from ike.crypto import dh, rsa
from ike.crypto.cipher import CipherError, Keystate, cipher_spec
from ike.crypto.keymat import Phase1Keys, hash_i, hash_r, skeyid_psk, skeyid_sig
from ike.doi.constants import IdType, IkeAuth, ProtocolId
from ike.exchange import natt, proposals
from ike.exchange.base import Exchange
from ike.exchange.errors import ExchangeError, config_address
from ike.exchange.vendor import recognise, vendor_payloads
from ike.policy import IdentityData, psk_principals
from ike.sa import IsakmpSA, SAState
from ike.wire import (
    CertEncoding,
    Certificate,
    CertificateRequest,
    Hash,
    Identification,
    KeyExchange,
    Message,
    Nonce,
    Notify,
    NotifyType,
    Payload,
    SecurityAssociation,
    Signature,
    VendorId,
)

if TYPE_CHECKING:
    from ike.engine import Engine

__all__ = ["Phase1", "id_text", "identity_from_conf"]

log = logging.getLogger("ike.exchange")
_XAUTH_AS: dict[int, int] = {
    IkeAuth.XAUTH_INIT_PRESHARED: IkeAuth.PRE_SHARED,
    IkeAuth.XAUTH_RESP_PRESHARED: IkeAuth.PRE_SHARED,
    IkeAuth.XAUTH_INIT_RSA: IkeAuth.RSA_SIG,
    IkeAuth.XAUTH_RESP_RSA: IkeAuth.RSA_SIG,
}
"""XAUTH authentication methods (draft-beaulieu-ike-xauth-02 appendix) and the Phase 1 method
each is keyed and authenticated with."""

NONCE_SIZE = 16
#: Members read per handshake, bound once (an Enum class attribute read is a slow lookup).
_PRE_SHARED = IkeAuth.PRE_SHARED
_IMPLEMENTED_AUTH = (IkeAuth.PRE_SHARED, IkeAuth.RSA_SIG)
_READY = SAState.READY
_INITIAL_CONTACT = NotifyType.INITIAL_CONTACT
KEYNOTE_ENCODING = 11  # CERT payload encoding of KeyNote credentials (isakmpd)


@functools.lru_cache(maxsize=256)
def _address_id(address: str) -> Identification:
    ip = config_address(address, "local address")
    kind = IdType.IPV4_ADDR if ip.version == 4 else IdType.IPV6_ADDR
    return Identification(kind, ip.packed)


def identity_from_conf(conf: Conf, section: str | None, local_address: str) -> Identification:
    """Our Phase 1 ID from a Phase1-ID section (isakmpd.md 3.4), or the local address."""
    if section is None:
        return _address_id(local_address)
    kind_name = conf.get_str(section, "ID-type") or "IPV4_ADDR"
    try:
        kind = IdType.from_name(kind_name)
    except KeyError:
        raise ExchangeError(NotifyType.INVALID_ID_INFORMATION,
                            f"[{section}]: unknown ID-type {kind_name}") from None

    def packed(tag: str, default: str) -> bytes:
        return config_address(conf.get_str(section, tag) or default, f"[{section}]:{tag}").packed

    if kind in (IdType.IPV4_ADDR, IdType.IPV6_ADDR):
        return Identification(kind, packed("Address", local_address))
    if kind in (IdType.IPV4_ADDR_SUBNET, IdType.IPV6_ADDR_SUBNET):
        return Identification(kind, packed("Network", "0.0.0.0") + packed("Netmask", "0.0.0.0"))
    name = conf.get_str(section, "Name") or ""
    if kind == IdType.DER_ASN1_DN:
        return Identification(kind, bytes.fromhex(name) if _is_hex(name) else name.encode())
    return Identification(kind, name.encode())


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return bool(text)


def id_text(ident: Identification | IdentityData) -> str:
    """An ID as the text that names it in configuration and key stores."""
    data = bytes(ident.data)
    if ident.id_type in (IdType.IPV4_ADDR, IdType.IPV6_ADDR) and len(data) in (4, 16):
        return str(ipaddress.ip_address(data))
    if ident.id_type in (IdType.FQDN, IdType.USER_FQDN, IdType.KEY_ID):
        return data.decode("latin-1")
    return data.hex()


def as_identity(ident: Identification) -> IdentityData:
    """The policy layer's view of an ID payload."""
    return IdentityData(int(ident.id_type), ident.protocol, ident.port, bytes(ident.data))


class Phase1(Exchange):
    """Common state and steps of Main and Aggressive Mode."""

    def __init__(self, engine: Engine, sa: IsakmpSA, initiator: bool, now: float,
                 peer_section: str) -> None:
        super().__init__(engine, sa, 0, initiator, now, peer_section)
        conf = engine.conf
        self.peer_section = peer_section
        self.configuration = conf.get_str(peer_section, "Configuration",
                                          "Default-phase-1-configuration") or ""
        self.sa_i_b = b""
        self.choice: proposals.Phase1Choice | None = None
        self.group: dh.Group | None = None
        self.dh_private: dh.PrivateValue | None = None
        self.g_local = b""
        self.g_peer = b""
        self.n_local = b""
        self.n_peer = b""
        self.id_local = identity_from_conf(conf, conf.get_str(peer_section, "ID"), sa.local[0])
        self.id_peer: Identification | None = None
        self.keys: Phase1Keys | None = None
        self.peer_certs: list[bytes] = []
        self.requested_cas: list[bytes] = []
        self.psk: bytes | None = None

    def learn_local(self, local: tuple[str, int]) -> None:
        """Our address, learnt from where the peer's answer arrived (no Local-address was
        configured); an address-derived ID follows it."""
        self.sa.local = local
        if self.engine.conf.get_str(self.peer_section, "ID") is None:
            self.id_local = _address_id(local[0])

    # ---- SA payload -------------------------------------------------------------------------

    def offer(self) -> SecurityAssociation:
        """Our Phase 1 SA payload; its body is SAi_b for the authentication hashes."""
        sa_payload = SecurityAssociation([proposals.phase1_proposal(self.engine.conf,
                                                                    self.configuration)])
        self.sa_i_b = sa_payload.encode_body()
        return sa_payload

    def choose(self, sa_payload: SecurityAssociation) -> SecurityAssociation:
        """Responder: select a transform from the peer's SA payload; answer with it."""
        self.sa_i_b = sa_payload.received or sa_payload.encode_body()
        chosen, choice = proposals.phase1_select(self.engine.conf, self.configuration,
                                                 sa_payload.proposals, sa_payload.received)
        self.apply(choice)
        return SecurityAssociation([chosen], sa_payload.situation, sa_payload.doi)

    def accept_answer(self, sa_payload: SecurityAssociation) -> None:
        """Initiator: the responder's choice must be one our configuration accepts."""
        if len(sa_payload.proposals) != 1 or len(sa_payload.proposals[0].transforms) != 1:
            raise ExchangeError(NotifyType.BAD_PROPOSAL_SYNTAX,
                                "responder returned other than one proposal and transform")
        _chosen, choice = proposals.phase1_select(self.engine.conf, self.configuration,
                                                  sa_payload.proposals, sa_payload.received)
        self.apply(choice)

    def apply(self, choice: proposals.Phase1Choice) -> None:
        """Record the negotiated transform in the SA."""
        if choice.auth_method in _XAUTH_AS:
            # keyed and authenticated as the base method; XAUTH follows as a Transaction
            choice = choice._replace(auth_method=_XAUTH_AS[choice.auth_method])
        if choice.auth_method not in _IMPLEMENTED_AUTH:
            raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN,
                                f"authentication method {choice.auth_method} not implemented")
        try:
            cipher_spec(choice.encryption)
            self.group = dh.group(choice.group)
        except (CipherError, dh.DHError, KeyError, ValueError) as e:
            raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN, str(e)) from None
        self.choice = choice
        sa = self.sa
        sa.encryption, sa.key_length, sa.hash_alg = (choice.encryption, choice.key_length,
                                                     choice.hash_alg)
        sa.auth_method, sa.group = choice.auth_method, choice.group
        sa.life_seconds, sa.life_kbytes = choice.life_seconds, choice.life_kbytes

    def natt_start(self) -> None:
        """Decide, once the peer's VIDs are known, whether this SA does NAT-T."""
        if self.sa.nat is None:
            self.sa.nat = natt.version(self.engine.nat_traversal, self.sa.vendor_ids)

    def natd(self) -> list[Payload]:
        """Our NAT-D payloads (none without NAT-T)."""
        if self.sa.nat is None:
            return []
        return list(natt.natd_payloads(self.sa, self.sa.nat))

    def natd_check(self, msg: Message) -> None:
        """Read the peer's NAT-D payloads: who is behind a NAT."""
        if self.sa.nat is not None:
            natt.detect(self.sa, self.sa.nat, msg)
            if self.sa.nat.detected:
                log.info("%s NAT detected (%s behind it)", self.engine.tag,
                         "we are" if self.sa.nat.local_behind else "the peer is")

    def natt_float(self) -> None:
        """Initiator: with a NAT on the path, go on from our NAT-T port (4500, ``-N``) to the
        peer's port 4500."""
        if self.sa.nat is not None and self.sa.nat.detected:
            self.sa.local = (self.sa.local[0], self.engine.natt_port)
            self.sa.peer = (self.sa.peer[0], natt.NATT_PORT)

    def vendor_ids(self) -> list[VendorId]:
        """Our VIDs for the first message of our side."""
        return vendor_payloads(self.engine.nat_traversal)

    def note_vendor_ids(self, msg: Message) -> None:
        """Remember which known VIDs the peer sent."""
        for vid in msg.all(VendorId):
            name = recognise(vid.data)
            if name is not None:
                self.sa.vendor_ids.add(name)

    # ---- KE, nonce, keys -------------------------------------------------------------------

    def make_ke_nonce(self, peer_nonce_len: int = NONCE_SIZE) -> list[Payload]:
        """Our KE and NONCE payloads (the responder's nonce is as long as the initiator's)."""
        assert self.group is not None
        self.dh_private, self.g_local = self.group.generate(self.engine.rand)
        self.n_local = self.engine.rand.bytes(peer_nonce_len)
        return [KeyExchange(self.g_local), Nonce(self.n_local)]

    def take_ke_nonce(self, msg: Message) -> None:
        """Store the peer's KE and NONCE (the rules table guarantees one of each)."""
        ke, nonce = msg.get(KeyExchange), msg.get(Nonce)
        assert ke is not None and nonce is not None
        if not 8 <= len(nonce.data) <= 256:
            raise ExchangeError(NotifyType.PAYLOAD_MALFORMED,
                                f"nonce of {len(nonce.data)} bytes")
        assert self.group is not None
        try:
            self.group.check_public(ke.data)
        except dh.DHError as e:
            raise ExchangeError(NotifyType.INVALID_KEY_INFORMATION, str(e)) from None
        self.g_peer, self.n_peer = bytes(ke.data), bytes(nonce.data)

    @property
    def gxi(self) -> bytes:
        """g^xi: the initiator's DH public value."""
        return self.g_local if self.initiator else self.g_peer

    @property
    def gxr(self) -> bytes:
        """g^xr: the responder's DH public value."""
        return self.g_peer if self.initiator else self.g_local

    @property
    def ni(self) -> bytes:
        """Ni_b: the initiator's nonce."""
        return self.n_local if self.initiator else self.n_peer

    @property
    def nr(self) -> bytes:
        """Nr_b: the responder's nonce."""
        return self.n_peer if self.initiator else self.n_local

    def pre_shared_key(self) -> bytes:
        """The PSK: the peer section's Authentication, else a section named after the peer ID."""
        conf = self.engine.conf
        value = conf.get_str(self.peer_section, "Authentication")
        if value is None and self.id_peer is not None:
            value = conf.get_str(id_text(self.id_peer), "Authentication")
        if value is None:
            raise ExchangeError(NotifyType.AUTHENTICATION_FAILED,
                                f"no pre-shared key for peer {self.sa.peer[0]}")
        if value[:2].lower() == "0x":
            try:
                return bytes.fromhex(value[2:])
            except ValueError:
                raise ExchangeError(NotifyType.AUTHENTICATION_FAILED,
                                    f"[{self.peer_section}]: bad hex key") from None
        return value.encode()

    def derive_keys(self) -> None:
        """SKEYID and its family, the cipher key and the first IV (RFC 2409 5, app. B)."""
        assert self.group is not None and self.dh_private is not None and self.choice
        try:
            gxy = self.group.shared_secret(self.dh_private, self.g_peer)
        except dh.DHError as e:
            raise ExchangeError(NotifyType.INVALID_KEY_INFORMATION, str(e)) from None
        h = self.choice.hash_alg
        if self.choice.auth_method == _PRE_SHARED:
            self.psk = self.pre_shared_key()
            skeyid = skeyid_psk(h, self.psk, self.ni, self.nr)
        else:
            skeyid = skeyid_sig(h, self.ni, self.nr, gxy)
        spec = cipher_spec(self.choice.encryption)
        self.keys = Phase1Keys.derive(h, skeyid, gxy, self.sa.icookie, self.sa.rcookie,
                                      self.gxi, self.gxr, self.choice.key_length,
                                      spec.block_size)
        self.sa.keys = self.keys
        self.keystate = Keystate(self.sa.cbc(), self.keys.iv)

    # ---- identities and authentication ------------------------------------------------------

    def auth_hash(self, mine: bool) -> bytes:
        """HASH_I or HASH_R for our side (``mine``) or the peer's."""
        assert self.keys is not None and self.choice is not None
        i_side = self.initiator == mine
        args = (self.choice.hash_alg, self.keys.skeyid, self.gxi, self.gxr, self.sa.icookie,
                self.sa.rcookie, self.sa_i_b)
        if i_side:
            ident = self.id_local if mine else self.id_peer
            assert ident is not None
            return hash_i(*args, ident.encode_body())
        ident = self.id_local if mine else self.id_peer
        assert ident is not None
        return hash_r(*args, ident.encode_body())

    def _rich(self) -> Any:
        """The auth source when it offers pki's identity API (see ike.auth), else None."""
        auth = self.engine.auth
        return auth if auth is not None and hasattr(auth, "authenticate") else None

    def note_certreqs(self, msg: Message) -> None:
        """Remember the CA names the peer asked for (our CERT choice follows them)."""
        for req in msg.all(CertificateRequest):
            if req.cert_type == CertEncoding.X509_SIG:
                self.requested_cas.append(bytes(req.authority))

    def certreq_payloads(self) -> list[Payload]:
        """Our CERTREQs: one per CA we trust (pki), else one naming no CA."""
        rich = self._rich()
        names = rich.certreq_authorities() if rich is not None else []
        return [CertificateRequest(CertEncoding.X509_SIG, bytes(n)) for n in names] or [
            CertificateRequest(CertEncoding.X509_SIG)]

    def _identity(self, ident: Identification) -> Any:
        from pki.ids import Identity

        return Identity(int(ident.id_type), bytes(ident.data))

    def _rich_auth_payloads(self, rich: Any, digest: bytes) -> list[Payload]:
        from pki.errors import PKIError

        local = self._identity(self.id_local)
        try:
            key = rich.signing_key(local)
            certs = rich.cert_payloads(local, self.requested_cas)
            creds = rich.keynote_payload(local)
        except PKIError as e:
            raise ExchangeError(NotifyType.AUTHENTICATION_FAILED, str(e)) from None
        out: list[Payload] = [Certificate(CertEncoding.X509_SIG, der) for der in certs]
        if creds:
            out.append(Certificate(CertEncoding(KEYNOTE_ENCODING), creds))
        out.append(Signature(rsa.sign(key, digest)))
        return out

    def auth_payloads(self) -> list[Payload]:
        """Our HASH (pre-shared key) or CERTs and SIG (RSA signature)."""
        assert self.choice is not None
        digest = self.auth_hash(mine=True)
        if self.choice.auth_method == _PRE_SHARED:
            return [Hash(digest)]
        rich = self._rich()
        if rich is not None:
            return self._rich_auth_payloads(rich, digest)
        local = id_text(self.id_local)
        key = self.engine.auth.private_key(local) if self.engine.auth else None
        if key is None:
            raise ExchangeError(NotifyType.AUTHENTICATION_FAILED,
                                f"no private key for local ID {local}")
        out: list[Payload] = []
        if self.engine.auth is not None:
            out += [Certificate(CertEncoding.X509_SIG, der)
                    for der in self.engine.auth.certificates(local)]
        out.append(Signature(rsa.sign(key, digest)))
        return out

    def take_identity(self, msg: Message) -> None:
        """Store the peer's ID and check it against the configured Remote-ID."""
        ident = msg.get(Identification)
        assert ident is not None
        self.id_peer = ident
        if (ident.protocol, ident.port) not in ((0, 0), (17, 500)):
            log.info("%s dubious ID information accepted", self.engine.tag)
        remote = self.engine.conf.get_str(self.peer_section, "Remote-ID")
        if remote is not None:
            want = identity_from_conf(self.engine.conf, remote, self.sa.peer[0])
            if (want.id_type, bytes(want.data)) != (ident.id_type, bytes(ident.data)):
                raise ExchangeError(NotifyType.INVALID_ID_INFORMATION,
                                    f"peer ID {id_text(ident)} is not Remote-ID [{remote}]")
        self.sa.peer_id = as_identity(ident)
        self.sa.local_id = as_identity(self.id_local)

    def verify_auth(self, msg: Message, now: float = 0.0) -> None:
        """Check the peer's HASH or SIG; remember its KeyNote principals."""
        assert self.choice is not None and self.id_peer is not None
        expected = self.auth_hash(mine=False)
        if self.choice.auth_method == _PRE_SHARED:
            got = msg.get(Hash)
            if got is None:
                raise ExchangeError(NotifyType.PAYLOAD_MALFORMED, "no HASH payload")
            if bytes(got.data) != expected:
                raise ExchangeError(NotifyType.INVALID_HASH_INFORMATION,
                                    "peer's authentication hash does not verify")
            assert self.psk is not None
            self.sa.principals = tuple(psk_principals(self.psk))
            return
        sig = msg.get(Signature)
        if sig is None:
            raise ExchangeError(NotifyType.PAYLOAD_MALFORMED, "no SIG payload")
        self.peer_certs = [bytes(c.data) for c in msg.all(Certificate)
                           if c.encoding == CertEncoding.X509_SIG]
        rich = self._rich()
        if rich is not None:
            from pki.errors import PKIError

            payloads = [(int(c.encoding), bytes(c.data)) for c in msg.all(Certificate)]
            # Validity is judged at the source's own time when it keeps one (PKIAuth's clock),
            # else at the engine's wall-clock time.
            clock = getattr(rich, "clock", None)
            when = clock() if callable(clock) else now + self.engine.wall_offset
            try:
                found = rich.authenticate(self._identity(self.id_peer), payloads, when)
            except PKIError as e:
                raise ExchangeError(NotifyType.INVALID_CERTIFICATE, str(e)) from None
            if not rsa.verify(found.public_key, expected, bytes(sig.data)):
                raise ExchangeError(NotifyType.INVALID_SIGNATURE,
                                    "peer's signature does not verify")
            self.sa.principals = tuple(found.principals)
            self.sa.peer_dn = found.subject_dn
            self.sa.peer_key = found
            return
        peer = (self.engine.auth.peer_key(id_text(self.id_peer), self.peer_certs)
                if self.engine.auth else None)
        if peer is None:
            raise ExchangeError(NotifyType.INVALID_CERTIFICATE,
                                f"no trusted key for peer ID {id_text(self.id_peer)}")
        if not rsa.verify(peer.public_key, expected, bytes(sig.data)):
            raise ExchangeError(NotifyType.INVALID_SIGNATURE, "peer's signature does not verify")
        self.sa.principals = peer.principals
        self.sa.peer_dn = peer.subject_dn

    def initial_contact(self) -> list[Payload]:
        """INITIAL-CONTACT, when this peer address was not contacted since we started."""
        if self.sa.peer[0] in self.engine.contacted:
            return []
        return [Notify(NotifyType.INITIAL_CONTACT, ProtocolId.ISAKMP, self.sa.cookies)]

    def established(self, now: float, msg: Message | None) -> None:
        """Phase 1 is complete: the SA becomes READY and gets its lifetimes."""
        assert self.keystate is not None
        sa = self.sa
        sa.iv = self.keystate.iv
        sa.created = now
        if sa.life_seconds:
            fraction = 0.85 + self.engine.rand.randrange(0, 1001) / 10000
            sa.soft_at = now + sa.life_seconds * fraction
            sa.hard_at = now + sa.life_seconds
        sa.set_state(_READY)
        self.engine.contacted.add(sa.peer[0])
        self.finish(now)
        honoured = False
        if msg is not None and self.exchange_type == 2 and msg.is_encrypted:
            for n in msg.all(Notify):  # a loop: any() over a generator costs a frame or two
                if n.notify_type == _INITIAL_CONTACT:
                    honoured = True
                    break
        self.engine.phase1_established(self, now, initial_contact=honoured)

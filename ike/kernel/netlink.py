"""XFRM netlink messages: layouts, builders from kernel commands, decoders of kernel messages.

Pure functions over bytes (no sockets here), so every builder can be compared with the bytes
iproute2 sends and every decoder fed with bytes the kernel sent (tests/kernel/fixtures).  The
layouts are the x86_64 ones of ``linux/xfrm.h`` (reference/kernel.md 1.4): struct formats use
``=`` with every pad explicit, and network-order fields (SPIs, ports) are packed big-endian.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

from ike.doi.constants import ProtocolId
from ike.kernel import algorithms
from ike.kernel.interface import (
    Acquire,
    AddFlow,
    Address,
    AddSA,
    DeleteFlow,
    DeleteSA,
    Direction,
    Expire,
    GetSPI,
    KernelError,
    KernelEvent,
    NatMapping,
    PolicyExpire,
    QuerySA,
    SAStats,
    TrafficSelector,
)

NLMSG_HDR = struct.Struct("=IHHII")
NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE = 1, 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200
NLM_F_DUMP = 0x300
NLMSGERR_ATTR_MSG = 1
SOL_NETLINK, NETLINK_EXT_ACK = 270, 11
XFRM_INF = 2**64 - 1

# legacy bind() group bits (enum xfrm_nlgroups n -> 1 << (n - 1))
XFRMGRP_ACQUIRE, XFRMGRP_EXPIRE, XFRMGRP_SA, XFRMGRP_POLICY = 0x1, 0x2, 0x4, 0x8
XFRMGRP_MAPPING = 0x80


class XfrmMsg(IntEnum):
    """XFRM_MSG_* netlink message types."""

    NEWSA = 0x10
    DELSA = 0x11
    GETSA = 0x12
    NEWPOLICY = 0x13
    DELPOLICY = 0x14
    GETPOLICY = 0x15
    ALLOCSPI = 0x16
    ACQUIRE = 0x17
    EXPIRE = 0x18
    UPDPOLICY = 0x19
    UPDSA = 0x1A
    POLEXPIRE = 0x1B
    FLUSHSA = 0x1C
    FLUSHPOLICY = 0x1D
    MAPPING = 0x26


class XfrmAttr(IntEnum):
    """XFRMA_* attribute types used here."""

    ALG_AUTH = 1
    ALG_CRYPT = 2
    ALG_COMP = 3
    ENCAP = 4
    TMPL = 5
    SA = 6
    POLICY = 7
    SRCADDR = 13
    POLICY_TYPE = 16
    ALG_AEAD = 18
    ALG_AUTH_TRUNC = 20
    SA_DIR = 33


XFRM_MODE_TRANSPORT, XFRM_MODE_TUNNEL = 0, 1
XFRM_POLICY_ALLOW, XFRM_POLICY_BLOCK = 0, 1
XFRM_STATE_ALIGN4 = 64
IPSEC_PROTO_ANY = 255

#: DOI protocol -> IP protocol number the kernel keys SAs by, and back.
IP_PROTO = {
    ProtocolId.IPSEC_AH: socket.IPPROTO_AH,
    ProtocolId.IPSEC_ESP: socket.IPPROTO_ESP,
    ProtocolId.IPCOMP: 108,
}
DOI_PROTO = {v: k for k, v in IP_PROTO.items()}

SELECTOR = struct.Struct("=16s16sHHHHHBBB3xiI")
XFRM_ID = struct.Struct("=16s4sB3x")
LIFETIME_CFG = struct.Struct("=8Q")
LIFETIME_CUR = struct.Struct("=4Q")
USERSA_TAIL = struct.Struct("=3IIIHBBB7x")  # stats(3) seq reqid family mode replay flags
USERSA_ID = struct.Struct("=16s4sHBx")
USERPOLICY_TAIL = struct.Struct("=IIBBBB4x")  # priority index dir action flags share
USERPOLICY_ID_TAIL = struct.Struct("=IB3x")
USER_TMPL = struct.Struct("=24sH2x16sIBBBxIII")
ALGO = struct.Struct("=64sI")
ALGO_AUTH = struct.Struct("=64sII")
ENCAP_TMPL = struct.Struct("=HHH2x16s")
NLATTR = struct.Struct("=HH")
USERSA_INFO_SIZE = 224
USERPOLICY_INFO_SIZE = 168
assert SELECTOR.size == 56 and XFRM_ID.size == 24 and USER_TMPL.size == 64
assert SELECTOR.size + XFRM_ID.size + 16 + 64 + 32 + USERSA_TAIL.size == USERSA_INFO_SIZE
assert SELECTOR.size + 64 + 32 + USERPOLICY_TAIL.size == USERPOLICY_INFO_SIZE


class NetlinkDecodeError(ValueError):
    """A kernel message too short or malformed for its type."""


# --------------------------------------------------------------------------- encoding helpers


def family_of(addr: Address) -> int:
    """AF_INET or AF_INET6 for an address."""
    return socket.AF_INET if addr.version == 4 else socket.AF_INET6


def pack_addr(addr: Address | None) -> bytes:
    """An ``xfrm_address_t``: the address in the first 4 or 16 bytes, zero elsewhere."""
    return bytes(16) if addr is None else addr.packed.ljust(16, b"\0")


def pack_selector(sel: TrafficSelector | None) -> bytes:
    """An ``xfrm_selector``; None is the all-zero selector iproute2 sends for SAs."""
    if sel is None:
        return bytes(SELECTOR.size)
    return SELECTOR.pack(
        sel.dst.network_address.packed.ljust(16, b"\0"),
        sel.src.network_address.packed.ljust(16, b"\0"),
        socket.htons(sel.dport), 0xFFFF if sel.dport else 0,
        socket.htons(sel.sport), 0xFFFF if sel.sport else 0,
        sel.family, sel.dst.prefixlen, sel.src.prefixlen, sel.proto, 0, 0,
    )


def _limit(value: int) -> int:
    """Byte/packet limits: 0 means no limit, which the kernel spells XFRM_INF."""
    return XFRM_INF if value == 0 else value


def nla(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    length = NLATTR.size + len(payload)
    return NLATTR.pack(length, kind) + payload + bytes(-length % 4)


def nlmsg(kind: int, flags: int, body: bytes, seq: int = 0, pid: int = 0) -> bytes:
    """A netlink message: header + body (length not padded, as iproute2 sends FLUSHSA)."""
    return NLMSG_HDR.pack(NLMSG_HDR.size + len(body), kind, flags, seq, pid) + body


def _xfrm_proto(proto: int) -> int:
    try:
        return IP_PROTO[ProtocolId(proto)]
    except (KeyError, ValueError):
        raise KernelError(f"unknown IPsec DOI protocol {proto}", errno_value=errno.EINVAL) from None


def _usersa_info(
    sel: TrafficSelector | None, dst: Address, spi: int, proto: int, src: Address,
    lifetime: bytes, seq: int, reqid: int, mode: int, replay_window: int, flags: int,
) -> bytes:
    return (
        pack_selector(sel)
        + XFRM_ID.pack(pack_addr(dst), struct.pack(">I", spi), proto)
        + pack_addr(src)
        + lifetime
        + bytes(LIFETIME_CUR.size)
        + USERSA_TAIL.pack(0, 0, 0, seq, reqid, family_of(dst), mode, replay_window, flags)
    )


# --------------------------------------------------------------------------- builders


def encode_add_sa(cmd: AddSA, update: bool = False, seq: int = 0) -> bytes:
    """NEWSA (or UPDSA, to complete an SPI from ALLOCSPI) for an SA with the algorithms of
    reference/kernel.md 3: AEAD alone for GCM/CCM/GMAC, CRYPT (+ AUTH_TRUNC) otherwise."""
    proto = _xfrm_proto(cmd.proto)
    if cmd.src.version != cmd.dst.version:
        raise KernelError("SA endpoints mix address families", errno_value=errno.EINVAL)
    lt = cmd.lifetime
    lifetime = LIFETIME_CFG.pack(
        _limit(lt.soft_bytes), _limit(lt.hard_bytes), XFRM_INF, XFRM_INF,
        lt.soft_seconds, lt.hard_seconds, 0, 0,
    )
    flags = 0
    attrs = b""
    try:
        if proto == socket.IPPROTO_ESP:
            attrs = _esp_attrs(cmd)
        elif proto == socket.IPPROTO_AH:
            if cmd.dst.version == 4:
                flags |= XFRM_STATE_ALIGN4
            auth = cmd.auth_alg if cmd.auth_alg is not None else algorithms.AH_AUTH.get(
                cmd.transform_id, -1)
            attrs = _auth_attr(auth, cmd.auth_key)
        else:
            name = algorithms.COMP_ALGS.get(cmd.transform_id)
            if name is None:
                raise algorithms.AlgorithmError(f"IPCOMP transform {cmd.transform_id} unknown")
            attrs = nla(XfrmAttr.ALG_COMP, ALGO.pack(name.encode(), 0))
    except algorithms.AlgorithmError as e:
        raise KernelError(str(e), errno_value=errno.EINVAL, command=cmd) from None
    if cmd.encap is not None:
        attrs += nla(XfrmAttr.ENCAP, ENCAP_TMPL.pack(
            cmd.encap.type, socket.htons(cmd.encap.sport), socket.htons(cmd.encap.dport),
            pack_addr(cmd.encap.original_address)))
    body = _usersa_info(
        cmd.selector, cmd.dst, cmd.spi, proto, cmd.src, lifetime, cmd.acquire_seq, cmd.reqid,
        XFRM_MODE_TUNNEL if cmd.tunnel else XFRM_MODE_TRANSPORT, cmd.replay_window, flags,
    )
    kind = XfrmMsg.UPDSA if update else XfrmMsg.NEWSA
    return nlmsg(kind, NLM_F_REQUEST | NLM_F_ACK, body + attrs, seq)


def _esp_attrs(cmd: AddSA) -> bytes:
    enc = algorithms.enc_alg(cmd.transform_id)
    want = algorithms.esp_enc_key_bytes(cmd.transform_id, cmd.key_length)
    if len(cmd.enc_key) != want:
        raise algorithms.AlgorithmError(
            f"{enc.xfrm_name} needs {want} bytes of encryption key (salt included),"
            f" got {len(cmd.enc_key)}")
    if enc.aead:
        if cmd.auth_alg is not None:
            raise algorithms.AlgorithmError(f"{enc.xfrm_name} is combined mode: no auth algorithm")
        return nla(XfrmAttr.ALG_AEAD, ALGO_AUTH.pack(
            enc.xfrm_name.encode(), 8 * len(cmd.enc_key), enc.icv_bits) + cmd.enc_key)
    attrs = nla(XfrmAttr.ALG_CRYPT, ALGO.pack(enc.xfrm_name.encode(), 8 * len(cmd.enc_key))
                + cmd.enc_key)
    if cmd.auth_alg is not None:
        attrs += _auth_attr(cmd.auth_alg, cmd.auth_key)
    return attrs


def _auth_attr(auth: int, key: bytes) -> bytes:
    alg = algorithms.auth_alg(auth)
    if len(key) != alg.key_bytes:
        raise algorithms.AlgorithmError(
            f"{alg.xfrm_name} needs a {alg.key_bytes}-byte key, got {len(key)}")
    return nla(XfrmAttr.ALG_AUTH_TRUNC,
               ALGO_AUTH.pack(alg.xfrm_name.encode(), 8 * len(key), alg.trunc_bits) + key)


def _usersa_id(dst: Address, spi: int, proto: int) -> bytes:
    return USERSA_ID.pack(pack_addr(dst), struct.pack(">I", spi), family_of(dst),
                          _xfrm_proto(proto))


def encode_delete_sa(cmd: DeleteSA, seq: int = 0) -> bytes:
    """DELSA by (dst, spi, proto), with the source address as iproute2 sends it."""
    body = _usersa_id(cmd.dst, cmd.spi, cmd.proto) + nla(XfrmAttr.SRCADDR, pack_addr(cmd.src))
    return nlmsg(XfrmMsg.DELSA, NLM_F_REQUEST | NLM_F_ACK, body, seq)


def encode_get_sa(cmd: QuerySA, seq: int = 0) -> bytes:
    """GETSA by (dst, spi, proto); the kernel answers with a NEWSA message."""
    body = _usersa_id(cmd.dst, cmd.spi, cmd.proto) + nla(XfrmAttr.SRCADDR, pack_addr(cmd.src))
    return nlmsg(XfrmMsg.GETSA, NLM_F_REQUEST, body, seq)


def encode_alloc_spi(cmd: GetSPI, seq: int = 0) -> bytes:
    """ALLOCSPI: a larval SA (dst = us) with an SPI in [spi_min, spi_max]; reply is NEWSA."""
    body = _usersa_info(
        None, cmd.dst, 0, _xfrm_proto(cmd.proto), cmd.src, bytes(LIFETIME_CFG.size), cmd.seq,
        cmd.reqid, XFRM_MODE_TRANSPORT, 0, 0,
    ) + struct.pack("=II", *cmd.spi_range())
    return nlmsg(XfrmMsg.ALLOCSPI, NLM_F_REQUEST, body, seq)


def _userpolicy_info(sel: TrafficSelector, priority: int, direction: int, action: int) -> bytes:
    lifetime = LIFETIME_CFG.pack(XFRM_INF, XFRM_INF, XFRM_INF, XFRM_INF, 0, 0, 0, 0)
    return (pack_selector(sel) + lifetime + bytes(LIFETIME_CUR.size)
            + USERPOLICY_TAIL.pack(priority, 0, direction, action, 0, 0))


def encode_add_flow(cmd: AddFlow, update: bool = False, seq: int = 0) -> bytes:
    """NEWPOLICY (UPDPOLICY) with one template (two for a bundle, innermost first; only the
    first may be tunnel mode), or none for a bypass flow."""
    if cmd.src.version != cmd.dst.version or cmd.src.version != cmd.selector.src.version:
        raise KernelError("flow mixes address families", errno_value=errno.EINVAL, command=cmd)
    body = _userpolicy_info(cmd.selector, cmd.priority, cmd.direction, XFRM_POLICY_ALLOW)
    if not cmd.bypass:
        layers: list[tuple[int, bool]] = []
        if cmd.inner_proto:
            # IPComp is optional inbound (small packets come uncompressed); the kernel refuses
            # optional templates in outbound policies
            layers.append((cmd.inner_proto, cmd.inner_proto == ProtocolId.IPCOMP
                           and cmd.direction != Direction.OUT))
        layers.append((cmd.proto, cmd.optional))
        tmpls = b""
        for i, (proto, optional) in enumerate(layers):
            tmpls += USER_TMPL.pack(
                XFRM_ID.pack(pack_addr(cmd.dst), bytes(4), _xfrm_proto(proto)),
                family_of(cmd.dst), pack_addr(cmd.src), cmd.reqid,
                XFRM_MODE_TUNNEL if cmd.tunnel and i == 0 else XFRM_MODE_TRANSPORT, 0,
                int(optional), 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF,
            )
        body += nla(XfrmAttr.TMPL, tmpls)
    kind = XfrmMsg.UPDPOLICY if update else XfrmMsg.NEWPOLICY
    return nlmsg(kind, NLM_F_REQUEST | NLM_F_ACK, body, seq)


def encode_delete_flow(cmd: DeleteFlow, seq: int = 0) -> bytes:
    """DELPOLICY by selector and direction."""
    body = pack_selector(cmd.selector) + USERPOLICY_ID_TAIL.pack(0, cmd.direction)
    return nlmsg(XfrmMsg.DELPOLICY, NLM_F_REQUEST | NLM_F_ACK, body, seq)


def encode_dump_sa(seq: int = 0) -> bytes:
    """GETSA as a dump: every SA of the namespace, as NEWSA messages then NLMSG_DONE."""
    return nlmsg(XfrmMsg.GETSA, NLM_F_REQUEST | NLM_F_DUMP, bytes(USERSA_ID.size), seq)


def encode_flush_sa(seq: int = 0) -> bytes:
    """FLUSHSA of every protocol (the namespace's whole SAD)."""
    return nlmsg(XfrmMsg.FLUSHSA, NLM_F_REQUEST | NLM_F_ACK, b"\0", seq)


def encode_flush_policy(seq: int = 0) -> bytes:
    """FLUSHPOLICY (the namespace's whole SPD)."""
    return nlmsg(XfrmMsg.FLUSHPOLICY, NLM_F_REQUEST | NLM_F_ACK, b"", seq)


def socket_policy(family: int, direction: Direction) -> bytes:
    """The ``xfrm_userpolicy_info`` for IP(V6)_XFRM_POLICY: allow, no IPsec (IKE bypass)."""
    sel = SELECTOR.pack(bytes(16), bytes(16), 0, 0, 0, 0, family, 0, 0, 0, 0, 0)
    lifetime = LIFETIME_CFG.pack(XFRM_INF, XFRM_INF, XFRM_INF, XFRM_INF, 0, 0, 0, 0)
    return (sel + lifetime + bytes(LIFETIME_CUR.size)
            + USERPOLICY_TAIL.pack(0, 0, direction, XFRM_POLICY_ALLOW, 0, 0))


# --------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class NlMsg:
    """One netlink message: header fields and the body after the 16-byte header."""

    kind: int
    flags: int
    seq: int
    pid: int
    body: bytes


def split_messages(data: bytes) -> Iterator[NlMsg]:
    """The netlink messages in one datagram (each 4-byte aligned)."""
    off = 0
    while off + NLMSG_HDR.size <= len(data):
        length, kind, flags, seq, pid = NLMSG_HDR.unpack_from(data, off)
        if length < NLMSG_HDR.size or off + length > len(data):
            raise NetlinkDecodeError(f"netlink message length {length} at offset {off} is bad")
        yield NlMsg(kind, flags, seq, pid, data[off + NLMSG_HDR.size: off + length])
        off += (length + 3) & ~3


def parse_attrs(data: bytes) -> list[tuple[int, bytes]]:
    """The attributes in ``data`` as (type without flag bits, payload)."""
    out: list[tuple[int, bytes]] = []
    off = 0
    while off + NLATTR.size <= len(data):
        length, kind = NLATTR.unpack_from(data, off)
        if length < NLATTR.size or off + length > len(data):
            raise NetlinkDecodeError(f"attribute length {length} at offset {off} is bad")
        out.append((kind & 0x3FFF, data[off + NLATTR.size: off + length]))
        off += (length + 3) & ~3
    return out


def decode_error(msg: NlMsg) -> tuple[int, str]:
    """(errno, extack message) of an NLMSG_ERROR; errno 0 is an ACK."""
    if len(msg.body) < 4 + NLMSG_HDR.size:
        raise NetlinkDecodeError("NLMSG_ERROR too short")
    (err,) = struct.unpack_from("=i", msg.body)
    text = ""
    if msg.flags & NLM_F_ACK_TLVS:
        (echoed_len,) = struct.unpack_from("=I", msg.body, 4)
        skip = 4 + (NLMSG_HDR.size if msg.flags & NLM_F_CAPPED else (echoed_len + 3) & ~3)
        for kind, payload in parse_attrs(msg.body[skip:]):
            if kind == NLMSGERR_ATTR_MSG:
                text = payload.split(b"\0", 1)[0].decode(errors="replace")
    return -err, text


def error_message(err: int, extack: str) -> str:
    """``EPROTONOSUPPORT (93): Requested type not found`` style text for a KernelError."""
    name = errno.errorcode.get(err, "E?")
    text = f"{name} ({err}): {extack or os.strerror(err)}"
    if err == errno.EPROTONOSUPPORT:
        text += " (this kernel lacks the IPsec protocol: no ESP/AH/IPComp support)"
    return text


def _addr(raw: bytes, family: int) -> Address:
    if family == socket.AF_INET6:
        return ipaddress.IPv6Address(raw[:16])
    return ipaddress.IPv4Address(raw[:4])


def decode_selector(data: bytes, offset: int = 0) -> TrafficSelector:
    """An ``xfrm_selector`` as a TrafficSelector (AF_UNSPEC is read as IPv4 any)."""
    if len(data) < offset + SELECTOR.size:
        raise NetlinkDecodeError("xfrm_selector too short")
    daddr, saddr, dport, _dm, sport, _sm, family, plen_d, plen_s, proto, _if, _u = (
        SELECTOR.unpack_from(data, offset))
    dst, src = _addr(daddr, family), _addr(saddr, family)
    try:
        return TrafficSelector(
            ipaddress.ip_network(f"{src}/{plen_s}", strict=False),
            ipaddress.ip_network(f"{dst}/{plen_d}", strict=False),
            proto, socket.ntohs(sport), socket.ntohs(dport),
        )
    except ValueError as e:  # a prefix longer than the address, as /33 on IPv4
        raise NetlinkDecodeError(f"xfrm_selector: {e}") from None


@dataclass(frozen=True)
class SAInfo:
    """The parts of an ``xfrm_usersa_info`` the daemon uses."""

    dst: Address
    src: Address
    spi: int
    proto: int  # DOI protocol
    reqid: int
    mode: int
    seq: int
    stats: SAStats


def decode_usersa_info(data: bytes, offset: int = 0) -> SAInfo:
    """An ``xfrm_usersa_info`` (NEWSA reply to GETSA/ALLOCSPI, inside EXPIRE)."""
    if len(data) < offset + USERSA_INFO_SIZE:
        raise NetlinkDecodeError("xfrm_usersa_info too short")
    daddr, spi, proto = XFRM_ID.unpack_from(data, offset + 56)
    saddr = data[offset + 80: offset + 96]
    nbytes, packets, add_time, use_time = LIFETIME_CUR.unpack_from(data, offset + 160)
    *_stats, seq, reqid, family, mode, _replay, _flags = USERSA_TAIL.unpack_from(
        data, offset + 192)
    return SAInfo(
        _addr(daddr, family), _addr(saddr, family), struct.unpack(">I", spi)[0],
        DOI_PROTO.get(proto, proto), reqid, mode, seq,
        SAStats(nbytes, packets, add_time, use_time),
    )


def _first_tmpl(attrs: list[tuple[int, bytes]]) -> tuple[int, int] | None:
    for kind, payload in attrs:
        if kind == XfrmAttr.TMPL and len(payload) >= USER_TMPL.size:
            _id, _fam, _saddr, reqid, mode, _share, _opt, *_algs = USER_TMPL.unpack_from(payload)
            return reqid, mode
    return None


def decode_event(msg: NlMsg) -> KernelEvent | None:
    """ACQUIRE, EXPIRE and POLEXPIRE as interface events; None for other message types."""
    try:
        return _decode_event(msg)
    except NetlinkDecodeError:
        raise
    except (ValueError, struct.error) as e:
        raise NetlinkDecodeError(f"bad XFRM message type {msg.kind}: {e}") from None


def _decode_event(msg: NlMsg) -> KernelEvent | None:
    body = msg.body
    if msg.kind == XfrmMsg.ACQUIRE:
        if len(body) < 280:
            raise NetlinkDecodeError("ACQUIRE too short")
        daddr, _spi, proto = XFRM_ID.unpack_from(body, 0)
        packet = decode_selector(body, 40)
        policy_sel = decode_selector(body, 96)
        _prio, index, _dir, _act, _fl, _sh = USERPOLICY_TAIL.unpack_from(body, 96 + 152)
        (seq,) = struct.unpack_from("=I", body, 276)
        family = packet.family
        tmpl = _first_tmpl(parse_attrs(body[280:]))
        reqid, mode = tmpl if tmpl is not None else (0, XFRM_MODE_TRANSPORT)
        return Acquire(
            seq=seq, selector=policy_sel, packet=packet, src=_addr(body[24:40], family),
            dst=_addr(daddr, family), proto=DOI_PROTO.get(proto, proto), reqid=reqid,
            tunnel=mode == XFRM_MODE_TUNNEL, policy_index=index,
        )
    if msg.kind == XfrmMsg.EXPIRE:
        if len(body) < USERSA_INFO_SIZE + 8:
            raise NetlinkDecodeError("EXPIRE too short")
        sa = decode_usersa_info(body)
        return Expire(sa.proto, sa.spi, sa.src, sa.dst, hard=body[USERSA_INFO_SIZE] != 0,
                      reqid=sa.reqid)
    if msg.kind == XfrmMsg.POLEXPIRE:
        if len(body) < USERPOLICY_INFO_SIZE + 8:
            raise NetlinkDecodeError("POLEXPIRE too short")
        _prio, index, direction, _act, _fl, _sh = USERPOLICY_TAIL.unpack_from(body, 152)
        return PolicyExpire(decode_selector(body), Direction(direction),
                            hard=body[USERPOLICY_INFO_SIZE] != 0, policy_index=index)
    if msg.kind == XfrmMsg.MAPPING:
        if len(body) < USERSA_ID.size + 4 + 32 + 4:
            raise NetlinkDecodeError("MAPPING too short")
        daddr, spi, family, proto = USERSA_ID.unpack_from(body)
        (reqid,) = struct.unpack_from("=I", body, 24)
        old_sport, new_sport = struct.unpack_from(">HH", body, 60)
        return NatMapping(DOI_PROTO.get(proto, proto), struct.unpack(">I", spi)[0],
                          _addr(daddr, family), reqid, _addr(body[28:44], family),
                          _addr(body[44:60], family), old_sport, new_sport)
    return None

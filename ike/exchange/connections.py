"""Connections and selectors: which configured connection a peer's Quick Mode IDs name (isakmpd's
``connection_passive_lookup_by_ids``), and the kernel selector a negotiated bundle stands for.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import TYPE_CHECKING, Any, cast

from ike.doi.constants import IdType
from ike.exchange.errors import ExchangeError
from ike.exchange.quick import client_id
from ike.kernel import interface as k
from ike.policy import IdentityData
from ike.sa import IsakmpSA
from ike.wire import Identification, NotifyType

if TYPE_CHECKING:
    from ike.engine import Engine

__all__ = ["address", "for_acquire", "implied_id", "network", "passive_lookup", "selectors"]


@functools.lru_cache(maxsize=1024)
def address(text: str) -> k.Address:
    """An address object for a text address (memoised: the same few peers recur)."""
    return ipaddress.ip_address(text)


@functools.lru_cache(maxsize=1024)
def network(data: bytes, id_type: int, host: str) -> k.Network:
    """The network an ID payload's data (or, without one, the host) stands for."""
    width = 4 if id_type in (1, 4, 7) else 16
    try:
        if id_type in (1, 5):
            return ipaddress.ip_network(ipaddress.ip_address(data[:width]))
        low = ipaddress.ip_address(data[:width])
        high = ipaddress.ip_address(data[width:2 * width])
        if id_type in (4, 6):
            bits = 8 * width
            mask = int(high)
            prefix = bin(mask).count("1")
            if mask == ((1 << bits) - 1) ^ ((1 << (bits - prefix)) - 1):
                return ipaddress.ip_network((low, prefix), strict=False)
        if id_type in (7, 8):
            # a range: the smallest network holding it (XFRM selectors are prefixes)
            net = ipaddress.ip_network(low)
            while high not in net:
                net = net.supernet()
            return net
    except ValueError:
        pass
    return ipaddress.ip_network(host)  # names (FQDN, DN, ...) and malformed data: the host



def implied_id(host: str) -> Identification:
    """The client ID RFC 2409 5.5 implies when Quick Mode carries none: the ISAKMP peer's
    address, any protocol and port (isakmpd fakes the same IPV4_ADDR/IPV6_ADDR IDs)."""
    ip = address(host)
    return Identification(IdType.IPV4_ADDR if ip.version == 4 else IdType.IPV6_ADDR, ip.packed)


def passive_lookup(engine: Engine, sa: IsakmpSA, idci: Identification | None,
                   idcr: Identification | None) -> str:
    """The passive connection whose IDs match the peer's (isakmpd.md 6.3 responder).

    Without client IDs (pluto in transport mode sends none) the IDs are the ISAKMP peers'
    addresses (RFC 2409 5.5): a connection whose Local-ID/Remote-ID name exactly those
    addresses matches, as in isakmpd; failing that, a connection to this peer that has no
    Local-ID."""
    memo = getattr(engine.conf, "derived", None)
    key: tuple[object, ...] = ()
    if idci is not None and idcr is not None:
        # With both IDs the answer depends on them and the configuration alone: remembered
        # for as long as the configuration's other derived answers (the same peer's Quick
        # Modes offer the same IDs every time).
        key = ("passive", idci.id_type, idci.protocol, idci.port, bytes(idci.data),
               idcr.id_type, idcr.protocol, idcr.port, bytes(idcr.data))
        if memo is not None and (found := memo.get(key)) is not None:
            return cast(str, found)
    names = engine.conf.get_list("Phase 2", "Connections") + engine.conf.get_list(
        "Phase 2", "Passive-Connections")

    def built(section: str | None) -> Identification | None:
        if section is None:
            return None
        if section not in engine.client_ids:
            try:
                engine.client_ids[section] = client_id(engine, section)
            except (ExchangeError, ValueError):
                engine.client_ids[section] = None
        return engine.client_ids[section]

    def same(a: Identification | None, b: Identification | None) -> bool:
        return (a is not None and b is not None and a.data == b.data and a.id_type == b.id_type
                and a.protocol == b.protocol and a.port == b.port)

    if key:
        for name in names:
            local = built(engine.conf.get_str(name, "Local-ID"))
            remote = built(engine.conf.get_str(name, "Remote-ID"))
            if (same(local, idci) and same(remote, idcr)) or (
                    same(local, idcr) and same(remote, idci)):
                return _remember(memo, key, name)
        for name in names:
            if engine.conf.get_str(name, "Remote-ID") is None:
                continue
            local = built(engine.conf.get_str(name, "Local-ID"))
            if same(local, idci) or same(local, idcr):
                return _remember(memo, key, name)
    else:
        implied_i, implied_r = implied_id(sa.peer[0]), implied_id(sa.local[0])
        for name in names:
            local = built(engine.conf.get_str(name, "Local-ID"))
            remote = built(engine.conf.get_str(name, "Remote-ID"))
            if same(local, implied_r) and same(remote, implied_i):
                return name
        for name in names:
            peer = engine.conf.get_str(name, "ISAKMP-peer")
            if peer is not None and engine.conf.get_str(peer, "Address") == sa.peer[0] and \
                    engine.conf.get_str(name, "Local-ID") is None:
                return name
    if not engine.use_keynote:
        raise ExchangeError(NotifyType.INVALID_ID_INFORMATION,
                            "peer proposed invalid phase 2 IDs")
    return f"peer-{sa.peer[0]}"


def _remember(memo: dict[object, Any] | None, key: tuple[object, ...], name: str) -> str:
    """Note a passive connection found for these IDs (bounded: the peer chooses the IDs)."""
    if memo is not None and len(memo) < _MEMO_MAX:
        memo[key] = name
    return name


_MEMO_MAX = 1024


@functools.lru_cache(maxsize=1024)
def selectors(local_ids: IdentityData | None, remote_ids: IdentityData | None, local: str,
              peer: str) -> tuple[k.TrafficSelector, k.TrafficSelector]:
    """A bundle's outbound traffic selector (from its client IDs, else its hosts) and the
    inbound one (memoised: selectors are frozen, and a peer's bundles recur)."""
    def net(ident: IdentityData | None, host: str) -> tuple[k.Network, int, int]:
        if ident is None:
            return network(b"", 0, host), 0, 0
        return network(ident.data, ident.id_type, host), ident.protocol, ident.port

    local_net, proto, lport = net(local_ids, local)
    remote_net, rproto, rport = net(remote_ids, peer)
    out = k.TrafficSelector(local_net, remote_net, proto or rproto, lport, rport)
    return out, out.reversed()


def for_acquire(engine: Engine, event: k.Acquire) -> str | None:
    """The connection an ACQUIRE asks for: to the flow's peer, Local-ID/Remote-ID covering the
    flow's selector when they are configured; else the first connection to that peer."""
    conf = engine.conf
    fallback: str | None = None
    for name in conf.get_list("Phase 2", "Connections") + conf.get_list(
            "Phase 2", "Passive-Connections"):
        peer = conf.get_str(name, "ISAKMP-peer")
        if peer is None or conf.get_str(peer, "Address") != str(event.dst):
            continue
        fallback = fallback or name
        ids = [conf.get_str(name, "Local-ID"), conf.get_str(name, "Remote-ID")]
        if None in ids:
            continue
        try:
            local, remote = (client_id(engine, section) for section in ids if section)
        except (ExchangeError, ValueError):
            continue
        local_net = network(bytes(local.data), int(local.id_type), str(event.src))
        remote_net = network(bytes(remote.data), int(remote.id_type), str(event.dst))
        if _within(event.selector.src, local_net) and _within(event.selector.dst, remote_net):
            return name
    return fallback


def _within(inner: k.Network, outer: k.Network) -> bool:
    """Whether network ``inner`` lies inside ``outer`` (False across address families)."""
    return (inner.version == outer.version
            and outer.network_address <= inner.network_address  # type: ignore[operator]
            and inner.broadcast_address <= outer.broadcast_address)  # type: ignore[operator]

"""The Transaction exchange between two engines in memory: mode-config (SET/ACK and
REQUEST/REPLY from IKECFG-ID sections) and XAUTH (good and bad credentials)."""

from __future__ import annotations

from typing import Any

from ike.events import ExchangeFailed, ModeConfigDone, Phase1Done, SADeleted, XauthDone
from ike.wire import Message, SecurityAssociation
from ike.wire.constants import ExchangeType

# b's Phase 1 ID is its address: a hands out from [ipv4/10.0.0.2], b from [ipv4/10.0.0.1]
CFG_FOR_B = """
[ipv4/10.0.0.2]
Address=                172.16.5.10
Netmask=                255.255.255.0
Nameserver=             172.16.5.1
WINS-server=            172.16.5.2
Mode=                   {mode}
Attributes=             Address,Netmask,Nameserver
"""
CFG_FOR_A = """
[ipv4/10.0.0.1]
Address=                172.16.9.7
Netmask=                255.255.0.0
Nameserver=             172.16.9.1
"""


def _only(events: list[Any], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def _transactions(pair: Any) -> list[tuple[str, Message]]:
    return [(side, Message.decode(d)) for side, d in pair.wire
            if Message.decode(d).exchange_type == ExchangeType.TRANSACTION]


def test_mode_config_set_pushes_the_section_of_the_peer_id(h: Any) -> None:
    conf_a = h.make_conf("a", extra_peer="Flags=                  ikecfg",
                         more=CFG_FOR_B.format(mode="SET"))
    conf_b = h.make_conf("b")
    pair = h.make_pair(conf_a, conf_b, use_keynote=False)
    pair.a.connect("peer", pair.now)
    pair.flush()
    [done] = _only(pair.events("b"), ModeConfigDone)
    assert done.attributes == {
        "INTERNAL_IP4_ADDRESS": ["172.16.5.10"], "INTERNAL_IP4_NETMASK": ["255.255.255.0"],
        "INTERNAL_IP4_DNS": ["172.16.5.1"], "INTERNAL_IP4_NBNS": ["172.16.5.2"],
        "INTERNAL_ADDRESS_EXPIRY": ["1200"]}
    assert not _only(pair.events("a"), ModeConfigDone)
    msgs = _transactions(pair)
    assert [s for s, _m in msgs] == ["a", "b"] and all(m.ciphertext for _s, m in msgs)
    [sa_b] = pair.b.sas.isakmp.values()
    assert pair.b.cfg_states[sa_b.cookies].mode_cfg == done.attributes


def test_mode_config_request_gets_a_reply_and_the_hook_runs(h: Any) -> None:
    conf_a = h.make_conf("a", extra_peer="Flags=                  ikecfg",
                         more=CFG_FOR_B.format(mode="REQ"))
    conf_b = h.make_conf("b", more=CFG_FOR_A)
    pair = h.make_pair(conf_a, conf_b, use_keynote=False)
    applied: list[ModeConfigDone] = []
    pair.a.cfg_hook = applied.append
    pair.a.connect("peer", pair.now)
    pair.flush()
    [done] = _only(pair.events("a"), ModeConfigDone)
    assert done.attributes == {"INTERNAL_IP4_ADDRESS": ["172.16.9.7"],
                               "INTERNAL_IP4_NETMASK": ["255.255.0.0"],
                               "INTERNAL_IP4_DNS": ["172.16.9.1"]}
    assert applied == [done]
    # a retransmitted REQUEST is answered with the same REPLY, not a second exchange
    [(_s, req), _reply] = _transactions(pair)
    first = next(d for s, d in pair.wire if Message.decode(d).message_id == req.message_id)
    before = len(pair.wire)
    pair.b.receive_datagram(first, (h.A, 500), (h.B, 500), pair.now)
    out = pair.b.datagrams_to_send(pair.now)
    assert len(out) == 1 and out[0][0] == pair.wire[-1][1] and len(pair.wire) == before


XAUTH_SERVER = """XAUTH-Users=            users"""
USERS = """
[users]
alice=                  wonderland
"""


def _xauth_pair(h: Any, password: str, *, ikecfg: bool = False) -> Any:
    flags = "\nFlags=                  ikecfg" if ikecfg else ""
    # b (the responder) is the XAUTH server; a answers as the client
    conf_a = h.make_conf("a", extra_peer="XAUTH-User=             alice\n"
                                         f"XAUTH-Password=         {password}{flags}",
                         more=CFG_FOR_B.format(mode="REQ"))
    conf_b = h.make_conf("b", extra_peer=XAUTH_SERVER, more=USERS + CFG_FOR_A)
    return h.make_pair(conf_a, conf_b, use_keynote=False)


def test_xauth_accepts_good_credentials_then_mode_config(h: Any) -> None:
    pair = _xauth_pair(h, "wonderland", ikecfg=True)
    pair.a.connect("peer", pair.now)
    pair.flush()
    ev_a, ev_b = pair.events("a"), pair.events("b")
    assert _only(ev_b, XauthDone) == [XauthDone("peer", _only(ev_b, Phase1Done)[0].cookies,
                                                "alice", True, True)]
    [client] = _only(ev_a, XauthDone)
    assert client.success and not client.server and client.user == "alice"
    [cfg] = _only(ev_a, ModeConfigDone)
    assert cfg.attributes["INTERNAL_IP4_ADDRESS"] == ["172.16.9.7"]
    assert len(pair.a.sas.isakmp) == len(pair.b.sas.isakmp) == 1
    [sa_b] = pair.b.sas.isakmp.values()
    state = pair.b.cfg_states[sa_b.cookies]
    assert (state.xauth, state.xauth_user) == ("ok", "alice")
    # request, reply, set, ack; then a's mode-config request and b's reply
    assert [s for s, _m in _transactions(pair)] == ["b", "a", "b", "a", "a", "b"]


def test_xauth_refuses_a_wrong_password_and_drops_the_sa(h: Any) -> None:
    pair = _xauth_pair(h, "guess")
    pair.a.connect("peer", pair.now)
    pair.flush()
    ev_a, ev_b = pair.events("a"), pair.events("b")
    assert [e.success for e in _only(ev_b, XauthDone)] == [False]
    assert [e.success for e in _only(ev_a, XauthDone)] == [False]
    assert any(isinstance(e, SADeleted) and e.kind == "isakmp" for e in ev_b)
    assert not pair.a.sas.isakmp and not pair.b.sas.isakmp


def test_xauth_request_without_credentials_fails_the_exchange_only(h: Any) -> None:
    conf_a = h.make_conf("a")
    conf_b = h.make_conf("b", extra_peer=XAUTH_SERVER, more=USERS)
    pair = h.make_pair(conf_a, conf_b, use_keynote=False)
    pair.a.connect("peer", pair.now)
    pair.flush()
    assert not _only(pair.events("a"), XauthDone)
    assert len(pair.a.sas.isakmp) == 1


XAUTH_PSK = """
[xauth-psk]
ENCRYPTION_ALGORITHM=   AES_CBC
KEY_LENGTH=             128,128:128
HASH_ALGORITHM=         SHA
AUTHENTICATION_METHOD=  XAUTH_INIT_PRESHARED
GROUP_DESCRIPTION=      MODP_2048
Life=                   LIFE_MAIN_MODE
"""


def test_xauth_init_preshared_is_keyed_as_psk(h: Any) -> None:
    """Phase 1 with authentication method 65001 (what charon proposes before XAUTH)."""
    conf_a = h.make_conf("a", p1="xauth-psk", more=XAUTH_PSK,
                         extra_peer="XAUTH-User=             alice\n"
                                    "XAUTH-Password=         wonderland")
    conf_b = h.make_conf("b", p1="xauth-psk", more=XAUTH_PSK + USERS, extra_peer=XAUTH_SERVER)
    pair = h.make_pair(conf_a, conf_b, use_keynote=False)
    pair.a.connect("peer", pair.now)
    pair.flush()
    assert [e.success for e in _only(pair.events("b"), XauthDone)] == [True]
    offer = Message.decode(pair.wire[0][1]).get(SecurityAssociation)
    assert offer is not None
    assert (3, 65001) in [(a.type, a.value) for a in offer.proposals[0].transforms[0].attributes]
    [sa_a] = pair.a.sas.isakmp.values()
    assert sa_a.auth_method == 1  # keyed and authenticated as pre-shared


def test_quick_mode_waits_for_xauth(h: Any) -> None:
    pair = _xauth_pair(h, "wonderland")
    pair.a.start(pair.now)  # connection "conn": Phase 1, then Quick Mode once XAUTH says yes
    pair.flush()
    kinds = [Message.decode(d).exchange_type for _s, d in pair.wire]
    first_qm = kinds.index(ExchangeType.QUICK_MODE)
    assert kinds[:first_qm].count(ExchangeType.TRANSACTION) == 4  # REQUEST REPLY SET ACK
    assert len(pair.a.sas.ipsec) == len(pair.b.sas.ipsec) == 1


def test_no_quick_mode_after_a_refused_xauth(h: Any) -> None:
    pair = _xauth_pair(h, "guess")
    pair.a.start(pair.now)
    pair.flush()
    kinds = [Message.decode(d).exchange_type for _s, d in pair.wire]
    assert ExchangeType.QUICK_MODE not in kinds
    assert not pair.a.sas.ipsec and not pair.b.sas.ipsec


def test_xauth_server_ignores_quick_mode_before_the_user_is_checked(h: Any) -> None:
    conf_a = h.make_conf("a")  # not configured for XAUTH: starts Quick Mode at once
    conf_b = h.make_conf("b", extra_peer=XAUTH_SERVER, more=USERS)
    pair = h.make_pair(conf_a, conf_b, use_keynote=False)
    pair.a.start(pair.now)
    pair.flush()
    assert any(Message.decode(d).exchange_type == ExchangeType.QUICK_MODE
               for s, d in pair.wire if s == "a")
    assert not pair.b.sas.ipsec and not pair.a.sas.ipsec


def test_xauth_init_rsa_is_authenticated_with_signatures(h: Any) -> None:
    """Authentication method 65005 (RSA signatures, then XAUTH), raw RSA keys on both sides."""
    transform = XAUTH_PSK.replace("[xauth-psk]", "[xauth-rsa]").replace(
        "XAUTH_INIT_PRESHARED", "XAUTH_INIT_RSA")
    conf_a = h.make_conf("a", p1="xauth-rsa", more=transform,
                         extra_peer="XAUTH-User=             alice\n"
                                    "XAUTH-Password=         wonderland")
    conf_b = h.make_conf("b", p1="xauth-rsa", more=transform + USERS, extra_peer=XAUTH_SERVER)
    auth_a, auth_b = h.rsa_auth_pair()
    pair = h.make_pair(conf_a, conf_b, use_keynote=False)
    pair.a.auth, pair.b.auth = auth_a, auth_b
    pair.a.start(pair.now)
    pair.flush()
    assert [e.success for e in _only(pair.events("b"), XauthDone)] == [True]
    [sa_b] = pair.b.sas.isakmp.values()
    assert sa_b.auth_method == 3  # RSA_SIG
    assert len(pair.a.sas.ipsec) == len(pair.b.sas.ipsec) == 1


def test_xauth_server_gives_up_a_silent_client(h: Any) -> None:
    pair = _xauth_pair(h, "wonderland")
    pair.drop = lambda side, _n, data: (
        side == "a" and Message.decode(data).exchange_type == ExchangeType.TRANSACTION)
    pair.a.connect("peer", pair.now)
    pair.flush()
    assert len(pair.b.sas.isakmp) == 1
    pair.advance(130)  # past Exchange-max-time (120 s)
    assert not pair.b.sas.isakmp
    assert any(isinstance(e, SADeleted) and e.reason == "XAUTH did not complete"
               for e in pair.events("b"))


def test_xauth_client_gives_up_a_server_that_never_starts_xauth(h: Any) -> None:
    conf_a = h.make_conf("a", extra_peer="XAUTH-User=             alice\n"
                                         "XAUTH-Password=         wonderland")
    conf_b = h.make_conf("b")  # no XAUTH-Users: the "server" never sends the REQUEST
    pair = h.make_pair(conf_a, conf_b, use_keynote=False)
    pair.a.start(pair.now)
    pair.flush()
    assert len(pair.a.sas.isakmp) == 1 and pair.a.pending
    pair.events("a")
    pair.advance(130)  # past Exchange-max-time (120 s)
    events = pair.events("a")
    assert [(e.name, e.exchange) for e in _only(events, ExchangeFailed)] == [("conn", "quick")]
    assert any(isinstance(e, SADeleted) and e.reason == "XAUTH not completed by the server"
               for e in events)
    assert not pair.a.sas.isakmp and not pair.a.pending and not pair.a.sas.ipsec
    assert not pair.b.sas.isakmp  # our DELETE reached the peer


def test_ipv6_attributes_follow_the_mode_config_draft(h: Any) -> None:
    """Bare 16-octet IPv6 addresses; INTERNAL_IP6_SUBNET is the address plus a prefix octet."""
    from ike.exchange.transaction import values_from
    from ike.wire.constants import CfgAttr

    more = ("[ipv4/10.0.0.2]\nAddress=                2001:db8::5\n"
            "Nameserver=             2001:db8::53\nNetwork=                2001:db8:1::/48\n")
    conf_a = h.make_conf("a", extra_peer="Flags=                  ikecfg", more=more)
    pair = h.make_pair(conf_a, h.make_conf("b"), use_keynote=False)
    wire = {a.type: a.value for a in values_from(pair.a, "ipv4/10.0.0.2")}
    assert len(wire[CfgAttr.INTERNAL_IP6_ADDRESS]) == 16
    assert wire[CfgAttr.INTERNAL_IP6_SUBNET] == bytes.fromhex("20010db8000100000000000000000000") \
        + bytes([48])
    assert CfgAttr.INTERNAL_IP4_SUBNET not in wire
    pair.a.connect("peer", pair.now)
    pair.flush()
    [done] = _only(pair.events("b"), ModeConfigDone)
    assert done.attributes["INTERNAL_IP6_ADDRESS"] == ["2001:db8::5"]
    assert done.attributes["INTERNAL_IP6_DNS"] == ["2001:db8::53"]
    assert done.attributes["INTERNAL_IP6_SUBNET"] == ["2001:db8:1::/48"]

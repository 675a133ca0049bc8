"""Two engines authenticate by RSA signatures with pki behind them (PKIAuth), and a DN: policy
decides their Quick Mode both ways."""

from __future__ import annotations

import pytest

from ike.conf import Conf
from ike.crypto.rand import RandomSource
from ike.engine import Engine
from ike.events import Phase1Done, Phase2Done
from ike.kernel.fake import FakeKernel
from keynote import Session
from pki import Store
from pki.auth import PKIAuth

ADDR = {"a": "10.0.0.1", "b": "10.0.0.2"}
START = 1_000_000.0

CONF = """\
[Phase 1]
{peer}=         peer
[Phase 2]
{role}=         conn
[peer]
Phase=          1
Address=        {peer}
Local-address=  {me}
Configuration=  rsa-main-mode
{id_line}
[rsa-main-mode]
EXCHANGE_TYPE=  ID_PROT
Transforms=     AES-128-SHA-GRP14-RSA_SIG
[conn]
Phase=          2
ISAKMP-peer=    peer
Configuration=  qm
Local-ID=       net-{side}
Remote-ID=      net-{other}
[qm]
EXCHANGE_TYPE=  QUICK_MODE
Suites=         QM-ESP-AES-128-SHA-SUITE
[net-a]
ID-type=        IPV4_ADDR_SUBNET
Network=        192.168.1.0
Netmask=        255.255.255.0
[net-b]
ID-type=        IPV4_ADDR_SUBNET
Network=        192.168.2.0
Netmask=        255.255.255.0
{id_section}
"""


def conf(side: str, id_section: str = "") -> Conf:
    """Side a (initiator) or b; id_section, when given, is our Phase 1 ID section's body."""
    other = "b" if side == "a" else "a"
    role = "Connections" if side == "a" else "Passive-Connections"
    text = CONF.format(
        peer=ADDR[other],
        me=ADDR[side],
        role=role,
        side=side,
        other=other,
        id_line="ID=            my-id" if id_section else "",
        id_section=f"[my-id]\n{id_section}" if id_section else "",
    )
    return Conf.from_text(text, source=f"pki-engine-{side}")


def policy_for(licensee: str):
    text = (
        'Authorizer: "POLICY"\n'
        f'Licensees: "{licensee}"\n'
        'Conditions: app_domain == "IPsec policy" && esp_present == "yes" -> "true";\n'
    )

    def factory() -> Session:
        s = Session()
        s.add_assertions(text, trusted=True, source="isakmpd.policy")
        return s

    return factory


@pytest.fixture
def trees(kit, tmp_path):
    """One CA; each side has it in ca/, its own certificate in certs/ and its key."""
    root = kit.cert(kit.name("Example CA"), kit.key(0), None, ca=True)
    out = {}
    for n, side in enumerate(("a", "b")):
        d = kit.Dirs(tmp_path / side)
        mine = kit.cert(kit.name(ADDR[side]), kit.key(3 + n), root, san=[kit.ip_san(ADDR[side])])
        d.ca(root)
        d.put("certs", "local.crt", mine.pem)
        d.private_key(mine.key)
        out[side] = d
    return out


def run(
    kit,
    trees,
    licensee: str | dict[str, str],
    ids: dict[str, str] | None = None,
    wall_offset: float = 0.0,
) -> tuple[list[object], list[object], Engine, Engine]:
    """Both engines; each side's policy names the other side by `licensee` ({peer} filled in
    with the other side's address) or by licensee[side]. wall_offset is the engines' (START is
    their monotonic time at the start)."""
    if isinstance(licensee, str):
        template = licensee
        licensee = {s: template.format(peer=ADDR["b" if s == "a" else "a"]) for s in ADDR}
    clock = kit.NOW.timestamp
    engines = {
        side: Engine(
            conf(side, (ids or {}).get(side, "")),
            rand=RandomSource.seeded(7 + n),
            kernel=FakeKernel(first_spi=0x1000 * (n + 1)),
            auth=PKIAuth(Store.load(trees[side].config), clock),
            use_keynote=True,
            policy_factory=policy_for(licensee[side]),
            tag=side.upper(),
            wall_offset=wall_offset,
        )
        for n, side in enumerate(("a", "b"))
    }
    a, b = engines["a"], engines["b"]
    now = START
    a.start(now)
    for _ in range(30):
        moved = False
        for src, dst in ((a, b), (b, a)):
            for data, local, peer in src.datagrams_to_send(now):
                moved = True
                dst.receive_datagram(data, local, peer, now)
        if not moved:
            break

    def events(e: Engine) -> list[object]:
        out = []
        while (ev := e.next_event()) is not None:
            out.append(ev)
        return out

    return events(a), events(b), a, b


def test_certificates_authenticate_and_dn_policy_accepts(kit, trees):
    ev_a, ev_b, a, b = run(kit, trees, "DN:/C=SE/O=Example/CN={peer}")
    assert [type(e) for e in ev_a] == [Phase1Done, Phase2Done]
    assert [type(e) for e in ev_b] == [Phase1Done, Phase2Done]
    [sa_a], [sa_b] = a.sas.isakmp.values(), b.sas.isakmp.values()
    assert "DN:/C=SE/O=Example/CN=10.0.0.2" in sa_a.principals
    assert "DN:/C=SE/O=Example/CN=10.0.0.1" in sa_b.principals
    assert any(p.startswith("rsa-hex:30") for p in sa_b.principals)


def test_dn_policy_refuses_another_subject(kit, trees):
    ev_a, ev_b, _a, _b = run(kit, trees, "DN:/C=SE/O=Example/CN=10.0.0.9")
    assert Phase1Done in [type(e) for e in ev_b]  # the certificates are fine
    assert Phase2Done not in [type(e) for e in ev_a + ev_b]  # the policy says no


def test_revoked_peer_gets_no_phase_1(kit, trees, caplog):
    a_cert = trees["a"].store().certs[0].cert
    root = trees["b"].store().cas[0].cert
    crl = kit.crl(kit.Issued(root, kit.key(0)), revoked=[a_cert.serial_number])
    trees["b"].crl(crl)
    _ev_a, ev_b, _a, _b = run(kit, trees, "DN:/C=SE/O=Example/CN={peer}")
    assert Phase1Done not in [type(e) for e in ev_b]
    assert f"serial {a_cert.serial_number}" in caplog.text and "revoked by CRL" in caplog.text


def test_auth_source_text_ids(kit, trees):
    from pki import Identity, IdType
    from pki.ids import identity_from_text

    assert identity_from_text("10.0.0.1") == Identity(IdType.IPV4_ADDR, bytes([10, 0, 0, 1]))
    assert identity_from_text("::1").id_type == IdType.IPV6_ADDR
    assert identity_from_text("ike@example.org").id_type == IdType.USER_FQDN
    assert identity_from_text("gw.example.org") == Identity(IdType.FQDN, b"gw.example.org")
    dn = kit.name("x").public_bytes()
    assert identity_from_text(dn.hex()) == Identity(IdType.DER_ASN1_DN, dn)
    auth = PKIAuth(Store.load(trees["a"].config), kit.NOW.timestamp)
    assert auth.private_key("10.0.0.1") is not None
    assert len(auth.certificates("10.0.0.1")) == 1
    assert auth.certificates("10.0.0.7") == []
    assert auth.certreq_authorities() == [kit.name("Example CA").public_bytes()]
    assert auth.peer_key("10.0.0.2", []) is None  # no certificate, no raw key: refused
    trees["a"].private_key(kit.key(3), mode=0o644)
    assert auth.private_key("10.0.0.1") is None  # insecure key file: logged, no key


RAW_IDS = {
    "ipv4": ({}, {"a": "ipv4/10.0.0.1", "b": "ipv4/10.0.0.2"}),
    "ipv6": (
        {
            "a": "ID-type= IPV6_ADDR\nAddress= 2001:db8::a",
            "b": "ID-type= IPV6_ADDR\nAddress= 2001:db8::b",
        },
        {"a": "ipv6/2001:db8::a", "b": "ipv6/2001:db8::b"},
    ),
    "fqdn": (
        {"a": "ID-type= FQDN\nName= a.example.org", "b": "ID-type= FQDN\nName= b.example.org"},
        {"a": "fqdn/a.example.org", "b": "fqdn/b.example.org"},
    ),
    "ufqdn": (
        {
            "a": "ID-type= USER_FQDN\nName= ike@a.example.org",
            "b": "ID-type= USER_FQDN\nName= ike@b.example.org",
        },
        {"a": "ufqdn/ike@a.example.org", "b": "ufqdn/ike@b.example.org"},
    ),
}


@pytest.mark.parametrize("kind", sorted(RAW_IDS))
def test_raw_public_keys_for_each_id_type(kit, tmp_path, kind):
    """No certificates: each side knows the other's key from Pubkey-directory/<type>/<id>."""
    from cryptography.hazmat.primitives import serialization

    from pki import rsa_hex

    ids, files = RAW_IDS[kind]
    keys = {"a": kit.key(3), "b": kit.key(4)}
    trees = {}
    for side, other in (("a", "b"), ("b", "a")):
        d = kit.Dirs(tmp_path / side)
        d.private_key(keys[side])
        pem = (
            keys[other]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        d.put("pubkeys", files[other], pem)
        trees[side] = d
    principal = {s: rsa_hex(k.public_key()) for s, k in keys.items()}
    ev_a, ev_b, a, _b = run(kit, trees, {"a": principal["b"], "b": principal["a"]}, ids)
    assert [type(e) for e in ev_a] == [Phase1Done, Phase2Done], kind
    assert [type(e) for e in ev_b] == [Phase1Done, Phase2Done], kind
    [sa_a] = a.sas.isakmp.values()
    assert sa_a.principals == (principal["b"],)

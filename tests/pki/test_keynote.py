"""KeyNote: credentials checked by signature, and policies deciding on DN: and CA-key licensees."""

from __future__ import annotations

import pytest
from cryptography import x509

from keynote import Session
from keynote import keys as kn_keys
from keynote.sign import sign_assertion
from pki import CertEncoding, Identity, IdType, PKIError, Reason, authenticate_peer
from pki.credentials import credential_key, rsa_hex, split_assertions, verify_credentials

PEER = Identity(IdType.FQDN, b"peer.example.org")


def private_text(k) -> str:
    n = k.private_numbers()
    pub = n.public_numbers
    return kn_keys.encode_private_key(
        kn_keys.RSAPrivateKey(pub.n, pub.e, n.d, n.p, n.q, n.dmp1, n.dmq1, n.iqmp)
    )


def credential(authority, licensee, conditions='app_domain == "IPsec policy" -> "true";') -> str:
    body = (
        "KeyNote-Version: 2\n"
        f'Authorizer: "{rsa_hex(authority.public_key())}"\n'
        f'Licensees: "{rsa_hex(licensee.public_key())}"\n'
        f"Conditions: {conditions}\n"
        "Signature: "
    )
    sig = sign_assertion(body + "\n", "sig-rsa-sha1-hex:", private_text(authority))
    return f'{body}"{sig}"\n'


def session_for(peer, policy: str) -> Session:
    s = Session()
    s.add_assertions(policy, trusted=True, source="isakmpd.policy")
    peer.prime(s)
    s.set_attribute("app_domain", "IPsec policy")
    s.set_attribute("GMTTimeOfDay", "20260601120000")
    return s


def policy(licensee: str) -> str:
    return (
        'Authorizer: "POLICY"\n'
        f'Licensees: "{licensee}"\n'
        'Conditions: app_domain == "IPsec policy" -> "true";\n'
    )


def test_signed_credentials_accepted_and_give_the_peer_key(kit, dirs):
    authority, peer_key = kit.key(0), kit.key(3)
    creds = credential(authority, kit.key(1)) + "\n" + credential(authority, peer_key)
    payload = creds.encode() + b"\0"  # isakmpd sends the terminating NUL
    assert len(verify_credentials(payload, "test")) == 2
    found = authenticate_peer(dirs.store(), PEER, [(CertEncoding.KEYNOTE, payload)], now=kit.NOW)
    assert found.encoding is CertEncoding.KEYNOTE
    assert found.public_key.public_numbers() == peer_key.public_key().public_numbers()
    assert found.principals == (rsa_hex(peer_key.public_key()),)
    assert len(found.credentials) == 2
    # the credentials delegate POLICY's trust in the authority to the peer
    assert (
        session_for(found, policy(rsa_hex(authority.public_key()))).query(["false", "true"]).value
        == "true"
    )
    assert (
        session_for(found, policy(rsa_hex(kit.key(4).public_key()))).query(["false", "true"]).value
        == "false"
    )


@pytest.mark.parametrize("damage", ["tamper", "unsigned", "wrong signer", "not text", "empty"])
def test_bad_credentials_refused(kit, dirs, damage):
    good = credential(kit.key(0), kit.key(3))
    data = {
        "tamper": good.replace('"IPsec policy"', '"IPsec  policy"').encode(),
        "unsigned": good.split("Signature:")[0].encode(),
        "wrong signer": good.replace(
            rsa_hex(kit.key(0).public_key()), rsa_hex(kit.key(4).public_key())
        ).encode(),
        "not text": b"\xff\xfe",
        "empty": b"\n\n\0",
    }[damage]
    with pytest.raises(PKIError) as info:
        verify_credentials(data, "CERT payload 1")
    assert info.value.reason is Reason.BAD_CREDENTIAL
    with pytest.raises(PKIError) as info:
        authenticate_peer(dirs.store(), PEER, [(CertEncoding.KEYNOTE, data)], now=kit.NOW)
    assert info.value.reason is Reason.BAD_CREDENTIAL


def test_one_bad_assertion_refuses_the_payload(kit):
    good = credential(kit.key(0), kit.key(3))
    bad = credential(kit.key(0), kit.key(1)).replace("true", "TRUE")
    with pytest.raises(PKIError, match="assertion 2 signature"):
        verify_credentials((good + "\n" + bad).encode(), "CERT payload")


def test_credential_key_reads_local_constants():
    key_text = rsa_hex_of_numbers(65537, 0xC0FFEE << 2000 | 1)
    text = f'Local-Constants: PEER = "{key_text}"\nAuthorizer: "POLICY"\nLicensees: PEER\n'
    found = credential_key(split_assertions(text))
    assert found is not None and found.public_numbers().n == 0xC0FFEE << 2000 | 1
    assert credential_key(['Authorizer: "POLICY"\nLicensees: "DN:/CN=x"\n']) is None
    assert credential_key([]) is None


def rsa_hex_of_numbers(e: int, n: int) -> str:
    return kn_keys.encode_key(kn_keys.RSAPublicKey(n, e))


def test_local_credentials_file(kit, dirs):
    text = credential(kit.key(0), kit.key(3))
    dirs.put("keynote", "gw.example.org/credentials", text.encode())
    store = dirs.store()
    assert store.local_credentials(Identity(IdType.FQDN, b"gw.example.org")) == text.encode()
    assert store.local_credentials(Identity(IdType.FQDN, b"other.example.org")) is None
    assert store.local_credentials(Identity(IdType.KEY_ID, b"x")) is None
    from pki.auth import PKIAuth

    auth = PKIAuth(store, kit.NOW.timestamp)
    payload = auth.keynote_payload(Identity(IdType.FQDN, b"gw.example.org"))
    assert payload == text.encode() + b"\0"
    assert verify_credentials(payload, "round trip") == [text]
    assert auth.keynote_payload(Identity(IdType.FQDN, b"other.example.org")) is None


@pytest.fixture
def two_level(kit, dirs):
    root = kit.cert(kit.name("Root"), kit.key(0), None, ca=True)
    inter = kit.cert(kit.name("Intermediate"), kit.key(1), root, ca=True)
    leaf = kit.cert(
        kit.name("peer.example.org"),
        kit.key(3),
        inter,
        san=[x509.DNSName("peer.example.org")],
    )
    dirs.ca(root)
    payloads = [(CertEncoding.X509_SIG, leaf.der), (CertEncoding.X509_SIG, inter.der)]
    return root, authenticate_peer(dirs.store(), PEER, payloads, now=kit.NOW)


@pytest.mark.parametrize(
    ("licensee", "decision"),
    [
        ("DN:/C=SE/O=Example/CN=Root", "true"),  # a CA's DN, through the chain
        ("DN:/C=SE/O=Example/CN=Intermediate", "true"),
        ("DN:/C=SE/O=Example/CN=peer.example.org", "true"),  # the peer itself
        ("DN:/C=SE/O=Example/CN=Someone Else", "false"),
        ("DN:/CN=Root", "false"),  # the whole DN counts
    ],
)
def test_dn_licensee_decides(two_level, licensee, decision):
    _root, peer = two_level
    assert session_for(peer, policy(licensee)).query(["false", "true"]).value == decision


def test_ca_key_licensee_decides(kit, two_level):
    root, peer = two_level
    by_ca = session_for(peer, policy(rsa_hex(root.key.public_key())))
    assert by_ca.query(["false", "true"]).value == "true"
    by_other = session_for(peer, policy(rsa_hex(kit.key(4).public_key())))
    assert by_other.query(["false", "true"]).value == "false"


def test_chain_assertions_limit_time(two_level):
    """The issuer-to-subject assertions hold only within the certificate's validity."""
    _root, peer = two_level
    s = session_for(peer, policy("DN:/C=SE/O=Example/CN=Root"))
    s.set_attribute("GMTTimeOfDay", "20990101000000")
    assert s.query(["false", "true"]).value == "false"


def test_credentials_verified_by_pki_are_not_verified_again_by_the_session(
    kit, dirs, monkeypatch
):
    import keynote.sign as kn_sign

    monkeypatch.setattr(kn_sign, "_verified", {})  # a cold process-wide cache
    checked: list[str] = []
    real = kn_sign.check_assertion

    def counting(raw_text: str, source: str = "<assertion>") -> kn_sign.SigResult:
        checked.append(raw_text)
        return real(raw_text, source)

    monkeypatch.setattr(kn_sign, "check_assertion", counting)
    authority, peer_key = kit.key(0), kit.key(3)
    payload = credential(authority, peer_key).encode()
    found = authenticate_peer(dirs.store(), PEER, [(CertEncoding.KEYNOTE, payload)], now=kit.NOW)
    assert len(checked) == 1
    s = session_for(found, policy(rsa_hex(authority.public_key())))
    assert s.query(["false", "true"]).value == "true"
    assert len(checked) == 1  # the session's check was a cache hit
    # a copy altered by one byte is verified afresh, fails, and grants nothing
    forged = found.credentials[0].replace('"true"', '"trUe"')
    s2 = session_for(found.__class__(found.public_key, found.source, found.encoding,
                                     principals=found.principals, credentials=(forged,)),
                     policy(rsa_hex(authority.public_key())))
    assert s2.query(["false", "true"]).value == "false"
    assert checked[1:] == [forged]
